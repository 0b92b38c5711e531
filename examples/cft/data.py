"""Data for the reference model: CSV of CIFs -> featurised records, cached as a basisdb Parquet dataset.

Per structure we keep (no encoding is stored here: the invariant encoding is computed by
the library layer ``basisdb.torch.InvariantEncoder`` from these arrays, see model.py):

  numbers       (n,) int64 atomic numbers
  positions     (n, 3) float64 basisdb's canonical standardised coordinates (``Featurized.positions``)
  hall_number, number: the detected setting and space group
  cell          (3, 3) the canonical cell's vectors (rows, Angstrom; ``Featurized.lattice``)
  lattice       (7,) Niggli-reduced primitive cell: a, b, c (A), alpha, beta, gamma (deg), volume
                per atom (A^3) -- unique for the lattice, so independent of how the cell was written
  raw_positions (n, 3), raw_cell (3, 3): the crystal exactly as written in the CIF (the
                non-invariant baseline's input)
  lattice_raw   (7,) the parameters of the cell as written
  max_displacement: the largest shift (A) made by basisdb's symmetrisation
  index         the structure's position in the input list

A dataset is featurised by the library (``basisdb.featurize_many``: Dask workers, Parquet
output, failures table, restartable) into a folder keyed by the content of the inputs and every
option (``featurize_structures``).  The fields the library does not compute (raw_*, lattice,
lattice_raw) are computed on the library's workers from the crystal as read (``add_columns``) and
stored as columns of its rows.  Structures that cannot be read or featurised are recorded
(index, material_id, error) and skipped; they do not stop the run.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import basisdb
from basisdb.structures import as_cell, featurize

csv.field_size_limit(sys.maxsize)

# Part of the cache key; bump when the record layout or the options passed to the library change.
CACHE_LAYOUT = "cft-records-v4"
# Fields computed from the crystal as read (the library's add_columns, flattened) and their shapes.
RAW_SHAPES = {"raw_cell": (3, 3), "raw_positions": (-1, 3), "lattice": (7,), "lattice_raw": (7,)}
COLUMN_PREFIX = "cft_"  # their columns in the library's dataset
PARTITION_SIZE = 256  # structures per task and Parquet file of the library's dataset
READ_COLUMNS = ("index", "id", "hall_number", "number", "lattice", "positions", "numbers", "max_displacement")


@dataclass
class Structure:
    material_id: str
    cif: str
    targets: dict[str, float]


def load_csv(path: str | os.PathLike, targets: list[str], limit: int | None = None) -> list[Structure]:
    """Rows of a CDVAE-style CSV (material_id, cif, target columns)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append(Structure(row["material_id"], row["cif"], {t: float(row[t]) for t in targets}))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def cell_parameters(lattice: np.ndarray, n_atoms: int) -> np.ndarray:
    """(7,) a, b, c, alpha, beta, gamma (degrees), volume per atom of a lattice (rows = vectors)."""
    lattice = np.asarray(lattice, dtype=float)
    lengths = np.linalg.norm(lattice, axis=1)
    ang = []
    for i, j in ((1, 2), (0, 2), (0, 1)):
        c = lattice[i] @ lattice[j] / (lengths[i] * lengths[j])
        ang.append(np.degrees(np.arccos(np.clip(c, -1, 1))))
    vol = abs(np.linalg.det(lattice)) / n_atoms
    return np.concatenate([lengths, ang, [vol]])


def niggli_parameters(
    lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, symprec: float
) -> np.ndarray:
    """(7,) cell parameters of the Niggli-reduced primitive cell (presentation independent)."""
    import spglib

    prim = spglib.standardize_cell(
        (lattice, positions, numbers), to_primitive=True, no_idealize=True, symprec=symprec
    )
    if prim is None:
        raise ValueError("spglib could not find the primitive cell")
    reduced = spglib.niggli_reduce(prim[0])
    return cell_parameters(reduced, len(prim[2]))


def raw_fields(lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, symprec: float) -> dict:
    """The fields of a crystal as given (lattice rows in A, fractional positions (n, 3), Z (n,)) that
    basisdb does not compute: raw_positions, raw_cell, lattice (Niggli parameters) and lattice_raw."""
    lattice, positions = np.asarray(lattice, dtype=np.float64), np.asarray(positions, dtype=np.float64)
    return {
        "raw_positions": positions,
        "raw_cell": lattice,
        "lattice": niggli_parameters(lattice, positions, numbers, symprec),
        "lattice_raw": cell_parameters(lattice, len(numbers)),
    }


def featurize_cell(
    lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, kmax: int, symprec: float
) -> dict:
    """Model inputs of one crystal given as arrays (lattice rows in A, fractional positions, Z)."""
    numbers = np.asarray(numbers)
    with warnings.catch_warnings():  # low-symmetry detections are expected in these DFT sets
        warnings.simplefilter("ignore", basisdb.LowSymmetryWarning)
        f = featurize(
            (np.asarray(lattice, float), np.asarray(positions, float), numbers), kmax=kmax, symprec=symprec
        )
    return {
        "numbers": f.numbers.astype(np.int64),
        "positions": np.asarray(f.positions, dtype=np.float64),
        "cell": np.asarray(f.lattice, dtype=np.float64),
        "number": int(f.number),
        "hall_number": int(f.hall_number),
        "max_displacement": float(f.max_displacement),
        **raw_fields(lattice, positions, numbers, symprec),
    }


def featurize_text(cif: str, kmax: int, symprec: float) -> dict:
    """Featurise one CIF text; raises on unreadable or unfeaturisable input."""
    return featurize_cell(*as_cell(cif), kmax=kmax, symprec=symprec)


def artifact_digest() -> str:
    """SHA-256 of the basisdb artifact in use (its bytes), part of the feature-cache key."""
    db = basisdb.open()
    h = hashlib.sha256()
    with open(db.path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def featurize_code_digest() -> str:
    """SHA-256 of the code that turns a crystal into canonical coordinates (basisdb.structures and
    basisdb._canonical), the library's dataset layout and spglib's version: a change of featurize's
    defaults or of the canonicalisation must not reuse features computed before it."""
    import spglib

    import basisdb._canonical
    import basisdb._dataset_io
    import basisdb.structures

    h = hashlib.sha256(f"spglib={spglib.__version__};dataset={basisdb._dataset_io.LAYOUT};".encode())
    for mod in (basisdb.structures, basisdb._canonical):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()


def cache_key(structures: list[Structure], symprec: float, partition_size: int = PARTITION_SIZE) -> str:
    """Hex SHA-256 of everything that produced the cached records: every structure's material_id and
    CIF text in order, symprec, the partition size (the library's layout), the artifact's digest, the
    featurising code and CACHE_LAYOUT (not the package version, not K: the records do not depend on K)."""
    h = hashlib.sha256()
    for s in structures:
        h.update(f"{len(s.material_id)}:{s.material_id};{len(s.cif)}:".encode())
        h.update(s.cif.encode())
    h.update(
        f";symprec={float(symprec)!r};partition_size={int(partition_size)};artifact={artifact_digest()};"
        f"code={featurize_code_digest()};{CACHE_LAYOUT}".encode()
    )
    return h.hexdigest()


def raw_columns(cell: tuple, result, symprec: float) -> dict:
    """``add_columns`` for the library: the RAW_SHAPES fields of the crystal as read (computed on the
    library's workers, next to its rows; the library stores each flattened as list<float64>)."""
    raw = raw_fields(*cell, symprec)
    return {COLUMN_PREFIX + k: raw[k] for k in RAW_SHAPES}  # prefixed: the library has its own "lattice"


def featurize_structures(
    structures: list[Structure],
    symprec: float,
    cache_dir: str | os.PathLike | None = None,
    jobs: int = 1,
    partition_size: int = PARTITION_SIZE,
) -> tuple[list[dict], float, list[dict]]:
    """Featurise every structure with ``basisdb.featurize_many`` (or read the cached result).

    The run's folder is ``cache_dir/features-<cache_key>/``: the library's Parquet dataset in
    dataset/, with the RAW_SHAPES columns computed on its workers (``add_columns=raw_columns``).  A changed input or option
    gets another folder; a run that was killed resumes there (the library keeps its done partitions).
    ``jobs > 1``: a Dask LocalCluster of that many worker processes when there is more than one
    partition of ``partition_size`` structures to share out; otherwise this process.
    ``cache_dir=None``: a temporary folder, removed afterwards.

    Returns (records, seconds spent featurising (0.0 when read from the cache), failures):
    ``records`` (dicts, see the module docstring) in input order, each with ``index`` = its position
    in ``structures``; ``failures`` lists {index, material_id, error} of the others, by index (the
    library's error; a structure whose raw fields fail is one of them, its error starting 'add_columns:').
    """

    run_dir = (
        None
        if cache_dir is None
        else Path(cache_dir) / f"features-{cache_key(structures, symprec, partition_size)[:20]}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="cft-features-")
        if run_dir is None
        else contextlib.nullcontext(run_dir)
    ) as d:
        d, seconds = Path(d), 0.0
        out = d / "dataset"
        if not (out.is_dir() and basisdb.dataset.read_summary(out)["structures"] == len(structures)):
            t0 = time.perf_counter()
            d.mkdir(parents=True, exist_ok=True)
            basisdb.featurize_many(
                [s.cif for s in structures],  # read by the library's workers
                out,
                ids=[s.material_id for s in structures],
                symprec=symprec,
                features=False,  # the model needs positions, group and cells only; they do not depend on K
                partition_size=partition_size,
                workers=max(int(jobs), 1),
                scheduler=None if jobs > 1 and len(structures) > partition_size else "sync",
                add_columns=functools.partial(raw_columns, symprec=symprec),
            )
            seconds = time.perf_counter() - t0
        table = basisdb.read_features(out, columns=[*READ_COLUMNS, *(COLUMN_PREFIX + k for k in RAW_SHAPES)])
        lib_failures = basisdb.read_failures(out).to_pylist()
    failures = [
        {"index": f["index"], "material_id": f["id"], "error": f"{f['error_type']}: {f['error']}"}
        for f in lib_failures
    ]
    records = []
    for r in basisdb.dataset.records(table):  # the library's rows, input order
        records.append(
            {
                "numbers": r.numbers,
                "positions": r.positions,
                "cell": r.lattice,
                "number": r.number,
                "hall_number": r.hall_number,
                "max_displacement": float(r.extra["max_displacement"]),
                **{
                    k: np.asarray(r.extra[COLUMN_PREFIX + k], dtype=np.float64).reshape(shape)
                    for k, shape in RAW_SHAPES.items()
                },
                "index": r.index,
            }
        )
    failures.sort(key=lambda f: f["index"])
    return records, seconds, failures


def load_dataset(
    data_dir: Path,
    dataset: str,
    target: str,
    symprec: float,
    cache,
    jobs: int = 1,
    limit: int | None = None,
):
    """(structures, records, y aligned with records, featurise seconds, failures) of one dataset CSV."""
    structures = load_csv(Path(data_dir) / dataset / f"{dataset}.csv", [target], limit=limit)
    records, secs, failures = featurize_structures(structures, symprec, cache, jobs)
    y = np.array([structures[r["index"]].targets[target] for r in records])
    return structures, records, y, secs, failures
