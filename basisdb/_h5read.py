"""Defensive reads of a possibly hostile HDF5 file: root attributes, child objects, tables, datasets.

Every function declares what it expects (type class, shape, dtype, length) and checks it
before any data is read; links that leave the file, external and virtual datasets, and
damaged objects become ``ArtifactError`` with the path and the object named.  Nothing here
knows what a setting or a plane group is (that is ``_index``), nor keeps a file open
(that is ``_database``); callers that share a file between threads hold its lock.
See docs/ROBUSTNESS.md.
"""

from __future__ import annotations

import h5py
import numpy as np

from ._errors import ArtifactError
from ._format import COLUMNS, INDEX

__all__ = [
    "MAX_ROWS",
    "MAX_STRING",
    "attr_int",
    "attr_str",
    "child",
    "h5_message",
    "read_datasets",
    "read_table",
]

#: no index table of a valid file has more rows (a guard against absurd declared sizes)
MAX_ROWS = 100_000
#: no fixed-length string column of a valid file is wider
MAX_STRING = 256


def _attr_declared(f: h5py.File, name: str, kind: str):
    """The attribute's low-level id, after refusing a wrong declared shape or type (nothing read yet)."""
    aid = f.attrs.get_id(name)
    shape, tclass = aid.shape, aid.get_type().get_class()
    want = h5py.h5t.INTEGER if kind == "an integer" else h5py.h5t.STRING
    if shape != () or tclass != want:
        names = {h5py.h5t.INTEGER: "integer", h5py.h5t.FLOAT: "float", h5py.h5t.STRING: "string"}
        got = f"{names.get(tclass, f'HDF5 type class {tclass}')} of shape {shape}"
        raise ArtifactError(f"{f.filename}: root attribute {name!r} must be {kind} scalar, got {got}")
    return aid


def attr_int(f: h5py.File, name: str, lo: int, hi: int) -> int:
    """The integer root attribute ``name``, in ``lo..hi``."""
    try:
        aid = _attr_declared(f, name, "an integer")
    except KeyError:
        if name in f.attrs:  # it exists but cannot be opened
            raise
        raise ArtifactError(
            f"{f.filename}: missing root attribute {name!r}; not a basisdb artifact"
        ) from None
    value = np.zeros((), dtype=np.int64)  # any stored integer width is converted by HDF5
    try:
        aid.read(value)
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. an unsigned value beyond int64
        raise ArtifactError(
            f"{f.filename}: root attribute {name!r} cannot be read as an integer: {exc}"
        ) from None
    if not lo <= int(value) <= hi:
        raise ArtifactError(f"{f.filename}: root attribute {name!r} = {int(value)} is outside {lo}..{hi}")
    return int(value)


def attr_str(f: h5py.File, name: str) -> str:
    """The string root attribute ``name`` (bytes decoded as UTF-8)."""
    if name in f.attrs:
        _attr_declared(f, name, "a string")
    value = f.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ArtifactError(f"{f.filename}: root attribute {name!r} must be a string")
    return value


def h5_message(exc: BaseException) -> str:
    """h5py's KeyError repr()s its message; show the text."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def child(path, parent: h5py.Group, name: str):
    """``parent[name]``; None if there is no such link; ArtifactError if it exists but cannot be opened,
    if it is a soft or external link (never followed out of the file), or if it keeps its data elsewhere."""

    def full() -> str:  # only for messages: h5py's .name costs a library call
        return f"{parent.name.rstrip('/')}/{name.lstrip('/')}"

    try:
        kind = parent.id.links.get_info(name.encode()).type  # no object is opened
    except (KeyError, RuntimeError, ValueError) as exc:
        try:
            missing = parent.get(name, getlink=True) is None
        except (KeyError, RuntimeError, ValueError, OSError):
            missing = False
        if missing:
            return None
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {h5_message(exc)}") from None
    if kind != h5py.h5l.TYPE_HARD:
        what = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}.get(
            kind, "a user-defined link"
        )
        raise ArtifactError(f"{path}: {full()} is {what}, not an object of the file")
    try:
        obj = parent[name]
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {h5_message(exc)}") from None
    except OSError as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {exc}") from None
    # chunked data cannot live in other files
    if (
        isinstance(obj, h5py.Dataset)
        and obj.chunks is None
        and (obj.is_virtual or obj.id.get_create_plist().get_external_count() > 0)
    ):
        raise ArtifactError(f"{path}: {full()} keeps its data outside the file (external or virtual dataset)")
    return obj


def read_table(
    path, f: h5py.File, name: str, columns: tuple[str, ...], kinds: str, index: str = INDEX
) -> np.ndarray:
    """The 2-D table ``/<index>/<name>`` with the named ``columns`` (its ``columns`` attribute) and a
    dtype of kind ``kinds`` ('iu': any integer, returned as int64; 'S': fixed-length ASCII)."""
    ds = child(path, f, f"{index}/{name}")
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[1] != len(columns):
        raise ArtifactError(f"{path}: /{index}/{name} is missing or not an (n, {len(columns)}) table")
    if not 0 < ds.shape[0] <= MAX_ROWS:
        raise ArtifactError(f"{path}: /{index}/{name} has an absurd number of rows {ds.shape[0]}")
    if ds.dtype.kind not in kinds or ds.dtype.itemsize > MAX_STRING:
        raise ArtifactError(f"{path}: /{index}/{name} has unexpected dtype {ds.dtype}")
    found = ds.attrs.get(COLUMNS)
    if isinstance(found, bytes):
        found = found.decode("ascii", "replace")
    if not isinstance(found, str) or found != ",".join(columns):
        raise ArtifactError(
            f"{path}: /{index}/{name} has columns {found!r:.200}, expected {','.join(columns)!r}"
        )
    try:
        data = ds[()]
    except OSError as exc:
        raise ArtifactError(f"{path}: /{index}/{name} is damaged: {exc}") from None
    return data.astype(np.int64) if kinds == "iu" else data


def read_datasets(
    path, f: h5py.File, name: str, fields: dict, limit: int, *, what: str | None = None, limit_note: str = ""
) -> dict[str, np.ndarray]:
    """The datasets ``fields`` ({field: (dtype, trailing shape)}) of the HDF5 group ``name``, each
    checked for dtype, shape and a length of at most ``limit`` before it is read; ArtifactError on
    any mismatch, a missing or linked object, or damaged data.  The caller holds the file's lock."""
    group = child(path, f, name)
    if not isinstance(group, h5py.Group):
        listed = f"{what} is listed but {name} is missing" if what else f"{name} is listed but missing"
        raise ArtifactError(f"{path}: {listed}")
    out = {}
    for field, (dtype, tail) in fields.items():
        ds = child(path, group, field)
        if not isinstance(ds, h5py.Dataset):
            raise ArtifactError(f"{path}: {name}/{field} is missing")
        if ds.dtype != np.dtype(dtype) or ds.shape[1:] != tail or ds.ndim != 1 + len(tail):
            raise ArtifactError(f"{path}: {name}/{field} has shape {ds.shape} dtype {ds.dtype}")
        if ds.shape[0] > limit:
            raise ArtifactError(f"{path}: {name}/{field} has an absurd length {ds.shape[0]}{limit_note}")
        try:
            out[field] = ds[()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise ArtifactError(f"{path}: {name}/{field} is damaged: {exc}") from None
    return out
