"""Dataset featurization: inputs, the Parquet layout, atomic partition files (see docs/DATASETS.md).

pyarrow is imported inside the functions that need it, so importing this module is cheap.

Output folder::

    OUT/_dataset.json               options and inputs of the run (checked when a run resumes)
    OUT/features/part-000000.parquet    one row per featurized structure, input order
    OUT/failures/part-000000.parquet    one row per structure that failed, with its error

A partition is *done* when its features file exists: the failures file is written first, then
the features file, each to a temporary name in the same folder and renamed into place
(``os.replace``, atomic on POSIX and Windows).  The features file's schema metadata holds the
partition's statistics.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._cif import CIFText

LAYOUT = "basisdb-features-1"
META_NAME = "_dataset.json"
FEATURES_DIR = "features"
FAILURES_DIR = "failures"
_TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CIF_SUFFIXES = (".cif", ".mcif")  # .mcif: magnetic CIF, read by featurize (gemmi) like any CIF


def require_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ImportError(
            "dataset featurization writes and reads Parquet with pyarrow; install it with "
            "`pip install 'basisdb[dataset]'` (or `pip install pyarrow`)"
        ) from exc
    import pyarrow

    return pyarrow


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Item:
    """One structure of the input: its position in the whole input, an id, where it came from, and
    what ``featurize`` is given (a CIF path, CIF text, an ASE Atoms, any featurize input)."""

    index: int
    id: str
    source: str
    structure: Any


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand_inputs(inputs) -> list[tuple[str, Path]]:
    """Resolve paths, folders and globs into an ordered list of (kind, path), kind in
    'cif', 'csv', 'parquet', 'ase'.  Folders give their *.cif and *.mcif files (recursively), globs their
    matches, both sorted; inputs keep the order given.  Errors name the input."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out: list[tuple[str, Path]] = []
    for raw in inputs:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            files = sorted(
                (f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _CIF_SUFFIXES),
                key=lambda f: f.as_posix(),
            )
            if not files:
                raise FileNotFoundError(f"{text}: the folder holds no .cif or .mcif files")
            out.extend(("cif", f) for f in files)
        elif p.is_file():
            out.append((_kind(p), p))
        elif _is_glob(text):
            matches = sorted(glob.glob(text, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise FileNotFoundError(f"{text}: no file matches this pattern")
            out.extend((_kind(f), f) for f in files)
        else:
            raise FileNotFoundError(f"{text}: no such file or folder")
    return out


def _kind(p: Path) -> str:
    suffix = p.suffix.lower()
    if suffix in _CIF_SUFFIXES:
        return "cif"
    if p.name.lower().endswith((".csv.gz", ".csv.bz2")):  # pyarrow decompresses by the extension
        return "csv"
    return _TABLE_SUFFIXES.get(suffix, "ase")


def fingerprint(files: list[tuple[str, Path]]) -> list[dict]:
    """What identifies the inputs for a resumed run: path, size, modification time."""
    out = []
    for kind, p in files:
        st = p.stat()
        out.append({"kind": kind, "path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def count_items(files: list[tuple[str, Path]], cif_column: str) -> int | None:
    """Number of structures, when it is cheap to know (None for ASE files)."""
    total = 0
    for kind, p in files:
        if kind == "cif":
            total += 1
        elif kind == "parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(p).metadata.num_rows
        elif kind == "csv":
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(
                p,
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    include_columns=[cif_column], column_types={cif_column: "string"}
                ),
            )
            total += sum(b.num_rows for b in reader)
        else:
            return None
    return total


def _table_head(kind: str, p: Path) -> tuple[list[str], Any]:
    """(column names, the Parquet file's arrow schema or None for CSV) of a table input."""
    if kind == "csv":
        import pyarrow.csv as pcsv

        try:
            names = pcsv.open_csv(p, parse_options=pcsv.ParseOptions(newlines_in_values=True)).schema.names
        except Exception as exc:  # pyarrow.ArrowInvalid and friends: name the file
            raise ValueError(f"{p}: cannot read it as CSV: {exc}") from None
        return names, None
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(p).schema_arrow
    except Exception as exc:
        raise ValueError(f"{p}: cannot read it as Parquet: {exc}") from None
    return schema.names, schema


def _table_columns(kind: str, p: Path, cif_column: str, id_column: str | None, carry: tuple[str, ...]):
    """(column names, arrow schema or None, the id column to use or None) of a table input, after checking
    that it has the CIF column, the id column (when named) and every carried column."""
    head, schema = _table_head(kind, p)
    cols = ", ".join(map(repr, head))
    if cif_column not in head:
        raise ValueError(
            f"{p}: no column {cif_column!r} (columns: {cols}); name the CIF column with --cif-column"
        )
    if id_column is None:
        id_column = next((c for c in ("material_id", "id") if c in head), None)
    elif id_column not in head:
        raise ValueError(f"{p}: no id column {id_column!r} (columns: {cols})")
    missing = [c for c in carry if c not in head]
    if missing:
        raise ValueError(f"{p}: no column {missing[0]!r} to carry (columns: {cols})")
    return head, schema, id_column


def _table_batches(
    kind: str,
    p: Path,
    cif_column: str,
    id_column: str | None,
    carry_schema,
    batch_rows: int,
):
    """(cif texts, ids or None, carried columns as a pyarrow Table of ``carry_schema`` or None) per record
    batch.  CSV cells are read as text (ids and CIF text exactly as written) and carried columns converted
    to the schema's types (``carry_schema`` decided them from the whole input: a type guessed from the
    first block could not hold later rows)."""
    import pyarrow as pa

    carry = tuple(carry_schema.names) if carry_schema is not None else ()
    _, _, id_column = _table_columns(kind, p, cif_column, id_column, carry)
    cols = list(dict.fromkeys([cif_column] + ([id_column] if id_column else []) + list(carry)))
    if kind == "csv":
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(
            p,
            read_options=pcsv.ReadOptions(block_size=1 << 22),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=cols, column_types={c: pa.string() for c in cols}
            ),
        )
        batches = iter(reader)
    else:
        import pyarrow.parquet as pq

        batches = pq.ParquetFile(p).iter_batches(batch_size=batch_rows, columns=cols)
    for b in batches:
        t = pa.Table.from_batches([b])
        cifs = [
            v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v
            for v in t.column(cif_column).to_pylist()
        ]  # a binary column (Parquet) holds the CIF text as bytes
        ids = (
            None
            if id_column is None
            else [None if v is None else str(v) for v in t.column(id_column).to_pylist()]
        )
        extra = None
        if carry:
            extra = pa.table(
                {
                    f.name: _carry_cast(t.column(f.name), f.type, p, f.name, kind == "csv")
                    for f in carry_schema
                },
                schema=carry_schema,
            )
        yield cifs, ids, extra


#: CSV cells that mean "no value" in a numeric or true/false column (pyarrow's own list); a text column
#: keeps them as text, and only its empty cells are missing
_CSV_NULLS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
)  # fmt: skip


def _csv_cells(col, to):
    """A CSV column's text cells prepared for ``to``: blanks around a cell removed and, for numbers and
    bools, the null spellings as nulls; for text, empty cells as nulls."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.utf8_trim_whitespace(col)
    missing = pa.array([""]) if pa.types.is_string(to) else pa.array(list(_CSV_NULLS))
    return pc.if_else(pc.is_in(col, value_set=missing), pa.scalar(None, pa.string()), col)


def _carry_cast(col, to, p: Path, name: str, text: bool):
    """A carried column converted to its dataset-wide type (CSV text '1.5' -> 1.5, int64 -> float64 when
    the column is float64 in another input, a categorical -> string, ...).  ValueError naming the file and
    the column when a value does not fit."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if text:
            col = _csv_cells(col, to)
            if pa.types.is_boolean(to):
                return pc.equal(pc.utf8_lower(col), "true")
        if col.type == to:
            return col
        if pa.types.is_dictionary(col.type):
            col = pc.cast(col, col.type.value_type)
        if pa.types.is_integer(col.type) and pa.types.is_floating(to):
            return pc.cast(col, to, safe=False)  # beyond 2**53 the nearest float64, as numpy does
        return pc.cast(col, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ValueError(f"{p}: carried column {name!r} cannot be read as {to} ({exc})") from None


# ------------------------------------------------------------------ carried columns
def _carry_type(t):
    """A carried column's dataset type from a Parquet column's arrow type (None: only nulls): integers as
    int64, other numbers as float64, text and categoricals as string, lists of numbers as
    list<float64>, anything else (timestamps, nested lists, ...) as it is."""
    import pyarrow as pa

    if pa.types.is_null(t):
        return None
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.string()
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
        pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)
    ):
        return pa.list_(pa.float64())
    return t


def _csv_types(p: Path, carry: tuple[str, ...]) -> dict:
    """Each carried column's type in a CSV file, from all its cells (read as text, blanks around a cell
    ignored): int64 when every present cell is an integer, float64 when every one is a number, bool when
    every one is true/false, else string; None when every cell is empty or a null spelling."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        p,
        read_options=pcsv.ReadOptions(block_size=1 << 22),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            include_columns=list(carry), column_types={c: pa.string() for c in carry}
        ),
    )
    ok = {c: {"int": True, "float": True, "bool": True, "seen": False} for c in carry}
    for b in reader:
        for c in carry:
            col = _csv_cells(b.column(c), pa.float64()).drop_null()
            if not len(col):
                continue
            st = ok[c]
            st["seen"] = True
            for kind, to in (("int", pa.int64()), ("float", pa.float64())):
                if st[kind]:
                    try:
                        pc.cast(col, to)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        st[kind] = False
            if st["bool"] and not pc.all(pc.is_in(pc.utf8_lower(col), pa.array(["true", "false"]))).as_py():
                st["bool"] = False
    out: dict[str, Any] = {}
    for c, st in ok.items():
        if not st["seen"]:
            out[c] = None
        elif st["int"]:
            out[c] = pa.int64()
        elif st["float"]:
            out[c] = pa.float64()
        elif st["bool"]:
            out[c] = pa.bool_()
        else:
            out[c] = pa.string()
    return out


def _unify(types: list):
    """One type for several inputs' types of a column (None: no value anywhere): equal types, or int64
    and float64 (float64); None when they cannot be one."""
    import pyarrow as pa

    found = [t for t in types if t is not None]
    if not found:
        return pa.float64()
    if all(t == found[0] for t in found):
        return found[0]
    if all(t in (pa.int64(), pa.float64()) for t in found):
        return pa.float64()
    return None


def carry_schema(files: list[tuple[str, Path]], carry, cif_column: str, id_column: str | None):
    """Check every table input's columns (the CIF column, the id column when named, the carried ones),
    before anything is written, and return the carried columns' arrow schema for the whole dataset (None
    without ``carry``).  Each column's type comes from every input that has it: a Parquet file's types
    (``_carry_type``), all the cells of the CSV inputs together (``_csv_types``: CSV cells are text), the
    first structure of an ASE file; integers and floats together are float64; CIF files have none
    (nulls).  ValueError: a name the features table already has, a repeated name, no input with
    columns, a column whose types differ between inputs."""
    import pyarrow as pa

    carry = tuple(carry or ())
    reserved = set(features_schema().names)
    taken = [c for c in carry if c in reserved]
    if taken:
        raise ValueError(
            f"--carry {taken[0]!r}: the features table already has a column {taken[0]!r}; rename the input's "
            "column (or carry another one)"
        )
    twice = sorted({c for c in carry if carry.count(c) > 1})
    if twice:
        raise ValueError(f"--carry {twice[0]!r} is given more than once")
    found: dict[str, list[tuple[Any, str]]] = {c: [] for c in carry}
    csv_types: dict[str, list[Any]] = {c: [] for c in carry}
    csv_files: list[str] = []
    carrying = False
    for kind, p in files:
        if kind in ("csv", "parquet"):
            _, schema, _ = _table_columns(kind, p, cif_column, id_column, carry)
            if not carry:
                continue
            carrying = True
            if kind == "parquet":
                for c in carry:
                    found[c].append((_carry_type(schema.field(c).type), str(p)))
            else:  # CSV cells are text: their type is decided over all CSV inputs together (below)
                csv_files.append(str(p))
                for c, t in _csv_types(p, carry).items():
                    csv_types[c].append(t)
        elif kind == "ase" and carry:
            carrying = True
            first = _ase_first(p)
            if first is not None:
                for f in _ase_carry_schema(first, carry, p):
                    found[f.name].append((_carry_type(f.type), f"{p} (first structure)"))
    if not carry:
        return None
    if not carrying:
        raise ValueError(
            "--carry copies columns of CSV/Parquet tables or properties of ASE files; none of the inputs is "
            "one (CIF files have no columns to carry)"
        )
    where = "the CSV input(s) " + ", ".join(csv_files)
    fields = []
    for c in carry:
        present = [t for t in csv_types[c] if t is not None]
        if present:  # numbers in every CSV cell (ints, or ints and floats), true/false, else text
            t = _unify(present)
            found[c].append((t if t is not None else pa.string(), where))
        t = _unify([t for t, _ in found[c]])
        if t is None:
            (t0, src0), (t1, src1) = next(
                (a, b)
                for a in found[c]
                for b in found[c]
                if a[0] is not None and b[0] is not None and _unify([a[0], b[0]]) is None
            )
            raise ValueError(
                f"--carry {c!r} holds {t0} in {src0} but {t1} in {src1}; one column must hold one kind of "
                "value in every input"
            )
        fields.append(pa.field(c, t))
    return pa.schema(fields)


def _ase_first(p: Path):
    """The first structure of an ASE file (None when it has none); errors name the file."""
    try:
        import ase.io  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"{p}: reading this file needs ASE (`pip install ase`); CIF, CSV and Parquet inputs do not"
        ) from exc
    from ase.io.formats import UnknownFileTypeError

    try:
        return next(_ase_frames(p), None)
    except UnknownFileTypeError as exc:
        raise ValueError(
            f"{p}: not a file type basisdb or ASE reads ({exc}); inputs are CIF (.cif, .mcif), "
            "CSV/Parquet tables of CIFs, or a format ASE reads (extxyz, ...)"
        ) from None


def _ase_frames(p: Path):
    """The structures of an ASE file in order.  An ASE database (.db) is read row by row through
    ``ase.db`` so that each row's key-value pairs (where a database keeps its targets and ids) are in
    ``atoms.info``, where ``--carry`` and the id look; other files through ``ase.io.iread``."""
    import ase.io

    if p.suffix.lower() == ".db":
        import ase.db

        for row in ase.db.connect(str(p)).select():
            atoms = row.toatoms()
            atoms.info.update(row.key_value_pairs)
            yield atoms
        return
    yield from ase.io.iread(str(p), index=":")


@dataclass(frozen=True)
class CarryMismatch:
    """In place of a structure whose carried value cannot take its column's type: the worker records
    the structure as a failure (ValueError with ``message``) instead of stopping the run."""

    message: str


def iter_file_items(
    files, *, cif_column: str = "cif", id_column: str | None = None, carry_schema=None, batch_rows: int = 4096
):
    """Items of every input in order; tables and ASE files also yield their carried columns (``carry_schema``,
    from ``carry_schema()``): yields (Item, carried row as a 1-row pyarrow Table or None)."""
    index = 0
    for kind, p in files:
        if kind == "cif":
            # the source as given; the path the worker opens absolute (it may run in another directory)
            yield Item(index, p.stem, str(p), str(p.absolute())), None
            index += 1
        elif kind in ("csv", "parquet"):
            row = 0
            for cifs, ids, extra in _table_batches(kind, p, cif_column, id_column, carry_schema, batch_rows):
                for j, text in enumerate(cifs):
                    ident = ids[j] if ids is not None and ids[j] is not None else f"{p.stem}:{row}"
                    yield (
                        # a cell of the CIF column is CIF text even without a newline (never a path)
                        Item(index, ident, f"{p}:{row}", CIFText(text if text is not None else "")),
                        (None if extra is None else extra.slice(j, 1)),
                    )
                    index += 1
                    row += 1
        else:
            if _ase_first(p) is None:  # checks the file type with a clear error
                continue
            for i, atoms in enumerate(_ase_frames(p)):
                ident = (
                    atoms.info.get("id", atoms.info.get("material_id")) if hasattr(atoms, "info") else None
                )
                carried, structure = None, atoms
                if carry_schema is not None:
                    try:
                        carried = _ase_carry_row(atoms, carry_schema, f"{p}:{i}")
                    except ValueError as exc:
                        structure = CarryMismatch(str(exc))
                yield (
                    Item(index, str(ident) if ident is not None else f"{p.stem}:{i}", f"{p}:{i}", structure),
                    carried,
                )
                index += 1


def _ase_value(atoms, name: str):
    """A per-structure property of an ASE Atoms: ``atoms.info[name]``, else the calculator's result
    (extxyz files put energy, stress, ... there); None when it has neither."""
    info = getattr(atoms, "info", None) or {}
    if name in info:
        return info[name]
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    return results.get(name)


def _ase_arrow_value(value):
    """A property as a value pyarrow types the same way in every row: numbers as float64 (ints too),
    arrays as flat lists of float64, strings and bools as they are."""
    if isinstance(value, (bool, np.bool_, str)) or value is None:
        return value.item() if isinstance(value, np.bool_) else value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return np.asarray(value, dtype=np.float64).ravel().tolist()


def _ase_carry_schema(first, carry, path):
    """The carried columns' types, from the first structure of an ASE file (it must have each of them)."""
    import pyarrow as pa

    fields = []
    for name in carry:
        value = _ase_value(first, name)
        if value is None:
            raise ValueError(
                f"{path}: --carry {name!r} is neither in atoms.info nor in the calculator results of the "
                "first structure"
            )
        fields.append(pa.field(name, pa.array([_ase_arrow_value(value)]).type))
    return pa.schema(fields)


def _ase_carry_row(atoms, schema, where: str):
    """The carried values of one structure as a 1-row table of ``schema`` (null where it lacks one)."""
    import pyarrow as pa

    cols = {}
    for f in schema:
        value = _ase_value(atoms, f.name)
        try:
            cols[f.name] = pa.array([None if value is None else _ase_arrow_value(value)], type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            raise ValueError(
                f"--carry {f.name!r} is {value!r} here, not a {f.type} as the column holds ({where})"
            ) from None
    return pa.table(cols, schema=schema)


# ------------------------------------------------------------------ the Parquet layout
def features_schema(carry_schema=None):
    import pyarrow as pa

    fields = [
        pa.field("index", pa.int64(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("source", pa.string()),
        pa.field("n_atoms", pa.int32()),
        pa.field("hall_number", pa.int16()),
        pa.field("number", pa.int16()),
        pa.field("international", pa.string()),
        pa.field("hall_symbol", pa.string()),
        pa.field("declared_number", pa.int16()),
        pa.field("declared_hall_number", pa.int16()),
        pa.field("declared", pa.string()),
        pa.field("symprec", pa.float64()),
        pa.field("angle_tolerance", pa.float64()),
        pa.field("kmax", pa.int16()),
        pa.field("lattice", pa.list_(pa.list_(pa.float64(), 3), 3)),
        pa.field("positions", pa.list_(pa.list_(pa.float64(), 3))),
        pa.field("numbers", pa.list_(pa.int32())),
        pa.field("orbit", pa.list_(pa.int32())),
        pa.field("max_displacement", pa.float64()),
        pa.field("n_basis", pa.int32()),
        pa.field("features", pa.list_(pa.float32())),
        pa.field("encoding", pa.list_(pa.float32())),
        pa.field("warnings", pa.list_(pa.string())),
    ]
    if carry_schema is not None:
        fields.extend(carry_schema)
    return pa.schema(fields)


def failures_schema():
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("index", pa.int64(), nullable=False),
            pa.field("id", pa.string()),
            pa.field("source", pa.string()),
            pa.field("error_type", pa.string()),
            pa.field("error", pa.string()),
        ]
    )


def _list_array(values: np.ndarray, counts, value_type=None):
    import pyarrow as pa

    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), values if value_type is None else pa.array(values, type=value_type)
    )


def build_features_table(rows: list[dict], carry_table=None, carry_schema=None):
    """A features table from per-structure dicts (the fields of the schema; arrays as numpy)."""
    import pyarrow as pa

    schema = features_schema(carry_schema)
    n = len(rows)
    counts = np.array([r["n_atoms"] for r in rows], dtype=np.int64)

    def cat(key, dtype, shape_tail=()):
        parts = [np.asarray(r[key], dtype=dtype).reshape((-1,) + shape_tail) for r in rows]
        return np.concatenate(parts) if parts else np.zeros((0,) + shape_tail, dtype=dtype)

    def optional_flat(key):
        present = [r[key] is not None for r in rows]
        lens = np.array([0 if r[key] is None else np.asarray(r[key]).size for r in rows], dtype=np.int64)
        flat = (
            np.concatenate([np.asarray(r[key], dtype=np.float32).ravel() for r in rows if r[key] is not None])
            if any(present)
            else np.zeros(0, np.float32)
        )
        arr = _list_array(pa.array(flat, type=pa.float32()), lens)
        if not all(present):
            mask = pa.array([not p for p in present])
            arr = pa.ListArray.from_arrays(arr.offsets, arr.values, mask=mask)
        return arr

    pos = cat("positions", np.float64, (3,))
    lat = cat("lattice", np.float64, (3,)).ravel()
    lattice = pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(pa.array(lat), 3), 3)
    cols = {
        "index": pa.array([r["index"] for r in rows], pa.int64()),
        "id": pa.array([r["id"] for r in rows], pa.string()),
        "source": pa.array([r["source"] for r in rows], pa.string()),
        "n_atoms": pa.array(counts, pa.int32()),
        "hall_number": pa.array([r["hall_number"] for r in rows], pa.int16()),
        "number": pa.array([r["number"] for r in rows], pa.int16()),
        "international": pa.array([r["international"] for r in rows], pa.string()),
        "hall_symbol": pa.array([r["hall_symbol"] for r in rows], pa.string()),
        "declared_number": pa.array([r["declared_number"] for r in rows], pa.int16()),
        "declared_hall_number": pa.array([r["declared_hall_number"] for r in rows], pa.int16()),
        "declared": pa.array([r["declared"] for r in rows], pa.string()),
        "symprec": pa.array([r["symprec"] for r in rows], pa.float64()),
        "angle_tolerance": pa.array([r["angle_tolerance"] for r in rows], pa.float64()),
        "kmax": pa.array([r["kmax"] for r in rows], pa.int16()),
        "lattice": lattice,
        "positions": _list_array(pa.FixedSizeListArray.from_arrays(pa.array(pos.ravel()), 3), counts),
        "numbers": _list_array(pa.array(cat("numbers", np.int32), pa.int32()), counts),
        "orbit": _list_array(pa.array(cat("orbit", np.int32), pa.int32()), counts),
        "max_displacement": pa.array([r["max_displacement"] for r in rows], pa.float64()),
        "n_basis": pa.array([r["n_basis"] for r in rows], pa.int32()),
        "features": optional_flat("features"),
        "encoding": optional_flat("encoding"),
        "warnings": pa.array([r["warnings"] for r in rows], pa.list_(pa.string())),
    }
    arrays = [cols[f.name].cast(f.type) if f.name in cols else None for f in schema]
    if carry_schema is not None:
        for i, f in enumerate(schema):
            if f.name not in cols:
                arrays[i] = carry_table.column(f.name).combine_chunks() if n else pa.array([], f.type)
    return pa.Table.from_arrays(arrays, schema=schema)


def build_failures_table(rows: list[dict]):
    import pyarrow as pa

    schema = failures_schema()
    return pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()


# ------------------------------------------------------------------ partition files
def part_name(part: int) -> str:
    return f"part-{part:06d}.parquet"


def write_atomic(table, path: Path, metadata: dict | None = None) -> None:
    """Write a Parquet file under a temporary name in the same folder, then rename it into place."""
    import pyarrow.parquet as pq

    if metadata is not None:
        meta = dict(table.schema.metadata or {})
        meta[b"basisdb"] = json.dumps(metadata, sort_keys=True).encode()
        table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        names = table.column_names
        floats = [c for c in ("features", "encoding") if c in names]
        # zstd level 1: within 5 % of level 3's size at a third of its time; float32 arrays byte-split
        # (3/4 of the size of plain zstd on features), strings dictionary-encoded
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=1,
            use_dictionary=[c for c in names if c not in floats],
            column_encoding={c: "BYTE_STREAM_SPLIT" for c in floats} or None,
        )
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_partition(out: Path, part: int, features_table, failures_table, stats: dict) -> None:
    """Failures first, then the features file (its existence marks the partition done)."""
    write_atomic(failures_table, out / FAILURES_DIR / part_name(part))
    write_atomic(features_table, out / FEATURES_DIR / part_name(part), metadata=stats)


def done_parts(out: Path) -> dict[int, Path]:
    folder = Path(out) / FEATURES_DIR
    found = {}
    if folder.is_dir():
        for f in folder.iterdir():
            name = f.name
            if name.startswith("part-") and name.endswith(".parquet"):
                try:
                    found[int(name[5:-8])] = f
                except ValueError:
                    continue
    return dict(sorted(found.items()))


def part_stats(path: Path) -> dict:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"basisdb", b"{}"))


def remove_temporaries(out: Path) -> int:
    n = 0
    for sub in (FEATURES_DIR, FAILURES_DIR):
        folder = Path(out) / sub
        if folder.is_dir():
            for f in folder.iterdir():
                if f.name.startswith(".") and f.name.endswith(".tmp"):
                    f.unlink(missing_ok=True)
                    n += 1
    return n


def options_digest(meta: dict) -> str:
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def prepare_output(out: Path, meta: dict, overwrite: bool) -> None:
    """Create OUT (or check that it holds a run of the same inputs and options); write _dataset.json."""
    import shutil

    out = Path(out)
    meta_path = out / META_NAME
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if overwrite and out.is_dir():
        if meta_path.exists() or not any(out.iterdir()):
            for sub in (FEATURES_DIR, FAILURES_DIR):
                shutil.rmtree(out / sub, ignore_errors=True)
            meta_path.unlink(missing_ok=True)
        else:
            raise FileExistsError(
                f"{out}: not a basisdb dataset folder (no {META_NAME}); refusing to overwrite it"
            )
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("digest") != options_digest(meta):
            diffs = [
                k
                for k in sorted(set(old.get("run", {})) | set(meta))
                if old.get("run", {}).get(k) != meta.get(k)
            ]
            if diffs == ["carry_types"] and "carry_types" not in old.get("run", {}):
                raise FileExistsError(
                    f"{out}: holds a dataset with carried columns written by an older basisdb, which typed them "
                    "partition by partition (they now have one type fixed before the run); pass --overwrite "
                    "(overwrite=True) to start again, or choose another folder"
                )
            raise FileExistsError(
                f"{out}: holds a dataset made from other inputs or options (differs in: {', '.join(diffs) or 'layout'}); "
                "pass --overwrite (overwrite=True) to start again, or choose another folder"
            )
    elif out.is_dir() and any(p.name != META_NAME for p in out.iterdir()):
        raise FileExistsError(
            f"{out}: the folder is not empty and holds no {META_NAME}; choose a new or empty folder"
        )
    (out / FEATURES_DIR).mkdir(parents=True, exist_ok=True)
    (out / FAILURES_DIR).mkdir(parents=True, exist_ok=True)
    if not meta_path.exists():
        tmp = meta_path.with_name(f".{META_NAME}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(
            json.dumps(
                {"layout": LAYOUT, "digest": options_digest(meta), "run": meta}, indent=1, sort_keys=True
            )
        )
        os.replace(tmp, meta_path)
    remove_temporaries(out)


def dataset_files(path, which: str = FEATURES_DIR) -> list[Path]:
    """Partition files of a dataset folder in partition order (failures: only of done partitions)."""
    path = Path(path)
    if not (path / META_NAME).exists() and not (path / FEATURES_DIR).is_dir():
        raise FileNotFoundError(f"{path}: not a basisdb features dataset (no {META_NAME})")
    done = done_parts(path)
    if which == FEATURES_DIR:
        return list(done.values())
    return [path / FAILURES_DIR / part_name(k) for k in done if (path / FAILURES_DIR / part_name(k)).exists()]


def iter_chunks(items: Iterator, size: int):
    chunk = []
    for it in items:
        chunk.append(it)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
