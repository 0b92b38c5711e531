"""Data for the reference model: CSV of CIFs -> cached, featurised arrays.

Per structure we keep (no encoding is stored here: the invariant encoding is computed by
the library layer ``basisdb.torch.InvariantEncoder`` from these arrays, see model.py):

  numbers       (n,) atomic numbers
  positions     (n, 3) basisdb's canonical standardised coordinates (``Featurized.positions``)
  hall_number, number: the detected setting and space group
  cell          (3, 3) the canonical cell's vectors (rows, Angstrom; ``Featurized.lattice``)
  lattice       (7,) Niggli-reduced primitive cell: a, b, c (A), alpha, beta, gamma (deg), volume
                per atom (A^3) -- unique for the lattice, so independent of how the cell was written
  raw_positions (n, 3), raw_cell (3, 3): the crystal exactly as written in the CIF (the
                non-invariant baseline's input)
  lattice_raw   (7,) the parameters of the cell as written
  max_displacement: the largest shift (A) made by basisdb's symmetrisation

Structures that cannot be read or featurised are recorded (index, material_id, error) and
skipped; they do not stop the run.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import basisdb
from basisdb.structures import as_cell, featurize

csv.field_size_limit(sys.maxsize)

# Layout of the cached arrays; bump when the record layout below changes.
CACHE_LAYOUT = "cft-records-v2"
RECORD_KEYS = ("numbers", "positions", "raw_positions")  # per-atom (ragged) arrays
STRUCT_KEYS = (
    "cell",
    "raw_cell",
    "lattice",
    "lattice_raw",
    "number",
    "hall_number",
    "max_displacement",
    "index",
)


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


def featurize_cell(
    lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, kmax: int, symprec: float
) -> dict:
    """Model inputs of one crystal given as arrays (lattice rows in A, fractional positions, Z)."""
    lattice, positions, numbers = (
        np.asarray(lattice, float),
        np.asarray(positions, float),
        np.asarray(numbers),
    )
    with warnings.catch_warnings():  # low-symmetry detections are expected in these DFT sets
        warnings.simplefilter("ignore", basisdb.LowSymmetryWarning)
        f = featurize((lattice, positions, numbers), kmax=kmax, symprec=symprec)
    return {
        "numbers": f.numbers.astype(np.int64),
        "positions": np.asarray(f.positions, dtype=np.float64),
        "raw_positions": np.asarray(positions, dtype=np.float64),
        "cell": np.asarray(f.lattice, dtype=np.float64),
        "raw_cell": lattice.astype(np.float64),
        "lattice": niggli_parameters(lattice, positions, numbers, symprec),
        "lattice_raw": cell_parameters(lattice, len(numbers)),
        "number": int(f.number),
        "hall_number": int(f.hall_number),
        "max_displacement": float(f.max_displacement),
    }


def featurize_text(cif: str, kmax: int, symprec: float) -> dict:
    """Featurise one CIF text; raises on unreadable or unfeaturisable input."""
    return featurize_cell(*as_cell(cif), kmax=kmax, symprec=symprec)


def _featurize_safe(item: tuple[str, int, float]):
    """(record, None) or (None, error message); run in worker processes."""
    cif, kmax, symprec = item
    try:
        return featurize_text(cif, kmax, symprec), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


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
    basisdb._canonical) and spglib's version: a change of featurize's defaults or of the
    canonicalisation must not reuse features computed before it."""
    import spglib

    import basisdb._canonical
    import basisdb.structures

    h = hashlib.sha256(f"spglib={spglib.__version__};".encode())
    for mod in (basisdb.structures, basisdb._canonical):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()


def cache_key(source: bytes | str, kmax: int, symprec: float, limit: int | None = None) -> str:
    """Hash of everything that produced the cached features: the input bytes, limit, kmax,
    symprec, the artifact's digest, the featurising code and the record layout (not the
    package version)."""
    h = hashlib.sha256()
    h.update(source if isinstance(source, bytes) else source.encode())
    h.update(
        f";limit={limit};kmax={int(kmax)};symprec={float(symprec)!r};artifact={artifact_digest()};"
        f"code={featurize_code_digest()};{CACHE_LAYOUT}".encode()
    )
    return h.hexdigest()


def featurize_dataset(
    structures: list[Structure],
    kmax: int,
    symprec: float,
    cache_dir: str | os.PathLike | None,
    jobs: int = 1,
    source: bytes | None = None,
) -> tuple[list[dict], float, list[dict]]:
    """Featurise (or load from the cache) every structure.

    Returns (records, seconds spent featurising, failures).  ``records`` holds the
    structures that featurised, each with ``index`` = its position in ``structures``;
    ``failures`` lists {index, material_id, error} of those that did not.
    ``source``: the bytes the structures were read from (e.g. the CSV file) for the cache
    key; by default the CIF texts themselves.
    """
    if source is None:
        source = "\x00".join(s.cif for s in structures).encode()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"features-{cache_key(source, kmax, symprec, len(structures))[:20]}.npz"
        if cache.is_file():
            records, failures = _load_cache(cache)
            return records, 0.0, failures
    t0 = time.perf_counter()
    items = [(s.cif, kmax, symprec) for s in structures]
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            results = pool.map(_featurize_safe, items, chunksize=16)
    else:
        results = [_featurize_safe(it) for it in items]
    records, failures = [], []
    for i, (rec, err) in enumerate(results):
        if rec is None:
            failures.append({"index": i, "material_id": structures[i].material_id, "error": err})
        else:
            rec["index"] = i
            records.append(rec)
    seconds = time.perf_counter() - t0
    if cache is not None:
        _save_cache(cache, records, failures)
    return records, seconds, failures


def _save_cache(path: Path, records: list[dict], failures: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "sizes": np.array([len(r["numbers"]) for r in records], dtype=np.int64),
        "failures": np.array(json.dumps(failures)),
    }
    for k in RECORD_KEYS:
        arrays[k] = (
            np.concatenate([r[k] for r in records])
            if records
            else np.zeros((0,) if k == "numbers" else (0, 3))
        )
    for k in STRUCT_KEYS:
        arrays[k] = np.array([r[k] for r in records])
    tmp = path.with_name(path.name + f".{os.getpid()}.partial.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_cache(path: Path) -> tuple[list[dict], list[dict]]:
    with np.load(path) as z:
        a = {k: z[k] for k in z.files}
    bounds = np.concatenate([[0], np.cumsum(a["sizes"])])
    records = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        r = {k: a[k][lo:hi] for k in RECORD_KEYS}
        for k in STRUCT_KEYS:
            v = a[k][i]
            r[k] = v if v.ndim else v.item()
        records.append(r)
    return records, json.loads(str(a["failures"]))


def load_dataset(
    data_dir: Path,
    dataset: str,
    target: str,
    kmax: int,
    symprec: float,
    cache,
    jobs: int = 1,
    limit: int | None = None,
):
    """(structures, records, y aligned with records, featurise seconds, failures) of one dataset CSV."""
    path = Path(data_dir) / dataset / f"{dataset}.csv"
    structures = load_csv(path, [target], limit=limit)
    source = path.read_bytes()
    records, secs, failures = featurize_dataset(structures, kmax, symprec, cache, jobs, source=source)
    y = np.array([structures[r["index"]].targets[target] for r in records])
    return structures, records, y, secs, failures
