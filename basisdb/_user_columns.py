"""Columns a user computes per structure on the workers (``add_columns=`` of the dataset functions).

A function ``fn(cell, result)`` gets the structure as read (``cell`` = (lattice (3, 3) float64 Angstrom,
fractional positions (n, 3) float64, atomic numbers (n,) int64), before any symmetrisation) and its
``Featurized`` result, and returns a mapping {column name: value}.  Each value is one of four kinds,
stored as one Arrow type whatever the Python or numpy type it came as, so that every partition of a
dataset has the same schema:

======== ==================================================== ==================
kind     values                                               Arrow type
======== ==================================================== ==================
bool     bool, numpy.bool_                                    bool
number   int, float, numpy integers and floats                float64
string   str                                                  string
list     numeric arrays, lists, tuples (any shape; flattened  list<float64>
         row-major: the shape is the user's to restore)
======== ==================================================== ==================

None is a null of the column's kind.  The names are those of the first structure of the input that
featurizes, each kind that of the first structure where the column is not None (found by the caller
before the run, so they do not depend on the workers); a later structure whose mapping has other
names or kinds fails, with the reason, in the failures table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["KINDS", "arrow_arrays", "coerce", "infer_schema"]

KINDS = ("bool", "number", "string", "list")


def _kind(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError:  # ragged
            arr = np.asarray([], dtype=object)
        if arr.dtype.kind in "biuf":
            return "list"
    raise TypeError(
        f"add_columns: column {name!r} is a {type(value).__name__}; a value must be a bool, a number, "
        "a string, a numeric array (list, tuple) or None"
    )


def _mapping(values: Any) -> Mapping:
    if not isinstance(values, Mapping):
        raise TypeError(
            f"add_columns must return a mapping {{column name: value}}, got {type(values).__name__}"
        )
    for name in values:
        if not isinstance(name, str) or not name:
            raise TypeError(f"add_columns: column names must be non-empty strings, got {name!r}")
    return values


def infer_schema(values: Any, carried: tuple = ()) -> list[tuple[str, str | None]]:
    """[(name, kind), ...] of one structure's mapping, in its order (kind None for a None value)."""
    from ._dataset_io import features_schema

    values = _mapping(values)
    reserved = {f.name for f in features_schema()}  # the names the features table already has
    taken = [n for n in values if n in reserved]
    if taken:
        raise ValueError(f"add_columns: column name(s) {taken} already used by the features table")
    taken = [n for n in values if n in carried]
    if taken:
        raise ValueError(f"add_columns: column name(s) {taken} already used by carried columns (carry=)")
    return [(name, _kind(name, v)) for name, v in values.items()]


def coerce(values: Any, schema: list[tuple[str, str]]) -> list:
    """One structure's values in schema order, as Python floats, bools, strings, float64 arrays or None;
    TypeError / ValueError when the names or kinds differ from the schema's."""
    values = _mapping(values)
    names = [n for n, _ in schema]
    if list(values) != names and set(values) != set(names):
        raise ValueError(
            f"add_columns returned columns {sorted(values)}, expected {sorted(names)} (the first structure's)"
        )
    out: list[Any] = []
    for name, kind in schema:
        v = values[name]
        k = _kind(name, v)
        if k is None:
            out.append(None)
            continue
        if k != kind:
            raise TypeError(f"add_columns: column {name!r} is a {k} here, a {kind} for the first structure")
        if kind == "bool":
            out.append(bool(v))
        elif kind == "number":
            try:
                out.append(float(v))
            except OverflowError:
                raise ValueError(f"add_columns: column {name!r}: {v} does not fit a float64") from None
        elif kind == "string":
            out.append(str(v))
        else:
            out.append(np.asarray(v, dtype=np.float64).ravel())
    return out


def arrow_arrays(rows: list[list], schema: list[tuple[str, str]]) -> list:
    """One pyarrow Array per schema column from the coerced rows."""
    import pyarrow as pa

    types = {
        "bool": pa.bool_(),
        "number": pa.float64(),
        "string": pa.string(),
        "list": pa.list_(pa.float64()),
    }
    arrays = []
    for j, (_, kind) in enumerate(schema):
        col = [r[j] for r in rows]
        if kind == "list":
            col = [None if v is None else v.tolist() for v in col]
        arrays.append(pa.array(col, type=types[kind]))
    return arrays
