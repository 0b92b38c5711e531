"""Data for the reference model: CSV of CIFs -> cached, featurised arrays.

Per structure we keep:
  numbers   (n,) atomic numbers
  routed    (n, 2 * n_box) float32: the invariant encoding of each atom in the box
            index space shared by all groups, u = conj(B) phi(x) = P_G^T e(x), as [Re u, Im u]
            (x = basisdb's canonical standardised coordinates)
  plain     (n, 2 * n_box) float32: plain plane waves [cos 2 pi k.x, sin 2 pi k.x] of the
            coordinates exactly as written in the CIF (not invariant: the baseline)
  lattice   (7,) Niggli-reduced primitive cell: a, b, c (A), alpha, beta, gamma (deg), volume per
            atom (A^3) -- unique for the lattice, so independent of how the cell was written
  lattice_raw (7,) the same numbers for the cell as written in the CIF (the baseline's input)
  number, hall_number: detected space group
"""
from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import basisdb
from basisdb.structures import as_cell, featurize

csv.field_size_limit(sys.maxsize)


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
    lengths = np.linalg.norm(lattice, axis=1)
    ang = []
    for i, j in ((1, 2), (0, 2), (0, 1)):
        c = lattice[i] @ lattice[j] / (lengths[i] * lengths[j])
        ang.append(np.degrees(np.arccos(np.clip(c, -1, 1))))
    vol = abs(np.linalg.det(lattice)) / n_atoms
    return np.concatenate([lengths, ang, [vol]])


def niggli_parameters(lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, symprec: float) -> np.ndarray:
    """(7,) cell parameters of the Niggli-reduced primitive cell (presentation independent)."""
    import spglib

    prim = spglib.standardize_cell((lattice, positions, numbers), to_primitive=True, no_idealize=True, symprec=symprec)
    reduced = spglib.niggli_reduce(prim[0])
    return cell_parameters(reduced, len(prim[2]))


def routed_encoding(basis: basisdb.Basis, x: np.ndarray) -> np.ndarray:
    """[Re u, Im u] with u = conj(B) phi(x): (n, 2 * n_box) float32, invariant under the group."""
    phi = basis.evaluate(x, real=False)  # (n, n_orbits)
    u = np.zeros((len(x), basis.n_box), dtype=np.complex128)
    u[:, basis.box_indices] = np.conj(basis.coefficients) * phi[:, basis.orbit_of]
    return np.concatenate([u.real, u.imag], axis=1).astype(np.float32)


def plain_encoding(x: np.ndarray, kmax: int) -> np.ndarray:
    """[cos 2 pi k.x, sin 2 pi k.x] over the box: (n, 2 * n_box) float32 (not invariant)."""
    ang = 2 * np.pi * np.asarray(x, dtype=np.float64) @ basisdb.box_frequencies(kmax).T
    return np.concatenate([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)


def featurize_one(item: tuple[str, int, float]) -> dict:
    """Featurise one CIF text (run in worker processes)."""
    cif, kmax, symprec = item
    return featurize_cell(*as_cell(cif), kmax=kmax, symprec=symprec)


def featurize_cell(lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, kmax: int, symprec: float) -> dict:
    """Model inputs of one crystal given as arrays (lattice rows in A, fractional positions, Z)."""
    f = featurize((lattice, positions, numbers), kmax=kmax, symprec=symprec)
    return {
        "numbers": f.numbers.astype(np.int64),
        "routed": routed_encoding(f.basis, f.positions),
        "plain": plain_encoding(positions, kmax),
        "lattice": niggli_parameters(lattice, positions, numbers, symprec),
        "lattice_raw": cell_parameters(lattice, len(numbers)),
        "number": f.number,
        "hall_number": f.hall_number,
    }


def featurize_dataset(
    structures: list[Structure], kmax: int, symprec: float, cache_dir: str | os.PathLike | None, jobs: int = 1
) -> tuple[list[dict], float]:
    """Featurise (or load from the cache) every structure; returns (records, seconds spent featurising)."""
    key = hashlib.sha256()
    for s in structures:
        key.update(s.cif.encode())
    key.update(f"{kmax}:{symprec}:{basisdb.__version__}".encode())
    cache = None if cache_dir is None else Path(cache_dir) / f"features-{key.hexdigest()[:16]}.npz"
    if cache is not None and cache.is_file():
        return _load_cache(cache), 0.0
    t0 = time.perf_counter()
    items = [(s.cif, kmax, symprec) for s in structures]
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            records = pool.map(featurize_one, items, chunksize=16)
    else:
        records = [featurize_one(it) for it in items]
    seconds = time.perf_counter() - t0
    if cache is not None:
        _save_cache(cache, records)
    return records, seconds


def _save_cache(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sizes = np.array([len(r["numbers"]) for r in records])
    arrays = {
        "sizes": sizes,
        "numbers": np.concatenate([r["numbers"] for r in records]),
        "routed": np.concatenate([r["routed"] for r in records]),
        "plain": np.concatenate([r["plain"] for r in records]),
        "lattice": np.stack([r["lattice"] for r in records]),
        "lattice_raw": np.stack([r["lattice_raw"] for r in records]),
        "number": np.array([r["number"] for r in records]),
        "hall_number": np.array([r["hall_number"] for r in records]),
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.partial.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _load_cache(path: Path) -> list[dict]:
    with np.load(path) as z:
        a = {k: z[k] for k in z.files}
    bounds = np.concatenate([[0], np.cumsum(a["sizes"])])
    return [
        {
            "numbers": a["numbers"][lo:hi],
            "routed": a["routed"][lo:hi],
            "plain": a["plain"][lo:hi],
            "lattice": a["lattice"][i],
            "lattice_raw": a["lattice_raw"][i],
            "number": int(a["number"][i]),
            "hall_number": int(a["hall_number"][i]),
        }
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
