"""From crystal structures to invariant features: ``featurize``.

>>> import basisdb
>>> r = basisdb.featurize("NaCl.cif")              # or (lattice, positions, numbers), ase.Atoms, pymatgen Structure
>>> r.hall_number, r.international                 # detected setting (spglib's default setting of the group)
>>> r.features                                      # (n_atoms, n_basis), invariant and presentation-independent
>>> r.positions                                     # canonical standardised coordinates of every input atom

spglib (``pip install basisdb[structures]``) detects the space group; the
canonical presentation is described in docs/STRUCTURES.md.
"""
from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._basis import Basis
from ._canonical import NDEN, canonical_choice, group_data, symmetrize
from ._cif import atomic_number, read_cif

__all__ = ["Featurized", "featurize", "as_cell", "read_cif"]

_DB = None
_DB_LOCK = threading.Lock()


def _default_db():
    global _DB
    with _DB_LOCK:
        if _DB is None:
            from ._database import open as _open

            _DB = _open()
        return _DB


def _require_spglib():
    try:
        import spglib
    except ImportError as exc:
        raise ImportError(
            "basisdb.featurize needs spglib to detect space groups; install it with "
            "`pip install basisdb[structures]` (or `pip install spglib`)"
        ) from exc
    return spglib


def _readonly(a) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Featurized:
    """Result of ``featurize``: the detected setting, canonical coordinates and features.

    basis:            the Basis of the detected setting (spglib's default setting of the group).
    hall_number:      1..530; number: space-group number 1..230.
    international:    short Hermann-Mauguin symbol ('Fm-3m'); hall_symbol: Hall symbol.
    numbers:          (n,) int64 atomic numbers (species labels) of the input atoms, input order.
    positions:        (n, 3) float64 canonical standardised coordinates in [0, 1) of every input atom:
                      in the basis's setting and origin, symmetrised, canonical over the normaliser.
    features:         (n, n_basis) invariant features ``basis.evaluate(positions)`` (real, or complex
                      with ``real=False``).
    orbit:            (n,) int64 crystallographic orbit of each atom, numbered 0, 1, ... in canonical
                      order: the same for every presentation of the crystal (use it to match atoms).
    site:             (n,) int64 row of ``cell_positions`` each atom sits on (equal across
                      presentations up to an operation of the group).
    cell_positions:   (m, 3) canonical conventional-cell content (centring images included), sorted.
    cell_numbers:     (m,) atomic numbers of those rows.
    transformation_matrix, origin_shift: (3, 3), (3,): positions ~= T x + s (mod 1) for input
                      fractional coordinates x (equal up to the symmetrisation displacement).
    lattice:          (3, 3) rows = the canonical cell's vectors in the input's Cartesian frame.
    max_displacement: largest Cartesian shift made by the symmetrisation (Angstrom).
    symprec:          the tolerance used (Angstrom).
    """

    basis: Basis
    hall_number: int
    number: int
    international: str
    hall_symbol: str
    numbers: np.ndarray
    positions: np.ndarray
    features: np.ndarray
    orbit: np.ndarray
    site: np.ndarray
    cell_positions: np.ndarray
    cell_numbers: np.ndarray
    transformation_matrix: np.ndarray
    origin_shift: np.ndarray
    lattice: np.ndarray
    max_displacement: float
    symprec: float

    def __repr__(self) -> str:
        return (
            f"Featurized(hall_number={self.hall_number}, international={self.international!r}, "
            f"n_atoms={len(self.numbers)}, n_basis={self.features.shape[1]}, kmax={self.basis.kmax})"
        )

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    def to_setting(self, points) -> np.ndarray:
        """Map input-frame fractional coordinates (N, 3) into the canonical setting, in [0, 1)."""
        p = np.asarray(points, dtype=np.float64)
        y = p @ self.transformation_matrix.T + self.origin_shift
        return y - np.floor(y)

    def evaluate(self, points, real: bool = True) -> np.ndarray:
        """Invariant features at arbitrary input-frame fractional points (N, 3)."""
        return self.basis.evaluate(self.to_setting(points), real=real)

    def operations(self) -> tuple[np.ndarray, np.ndarray]:
        """The crystal's symmetry operations in the input frame: x -> R x + t (float arrays).

        Exact conjugates of the setting's operations by the canonical map
        (R_in = T^-1 R T, t_in = T^-1 (R s + t - s)).
        """
        rots, trans = self.basis.operations()
        T, s = self.transformation_matrix, self.origin_shift
        Tinv = np.linalg.inv(T)
        r_in = np.einsum("ij,gjk,kl->gil", Tinv, rots, T)
        t_in = (np.einsum("gij,j->gi", rots, s) + trans - s) @ Tinv.T
        return r_in, t_in


# ------------------------------------------------------------------ input
def _numbers_of(values) -> np.ndarray:
    vals = list(values) if not isinstance(values, np.ndarray) else values
    arr = np.asarray(vals)
    if arr.dtype.kind in "US" or arr.dtype == object:
        out = []
        for v in arr.ravel().tolist():
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                out.append(int(v))
            else:
                out.append(atomic_number(v.decode() if isinstance(v, bytes) else str(v)))
        return np.array(out, dtype=np.int64)
    if arr.dtype.kind == "b":
        raise TypeError("atomic numbers must be integers or element symbols, got booleans")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)):
            raise ValueError("atomic numbers must be integers")
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"atomic numbers must be integers or element symbols, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def as_cell(structure, reader: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn any supported structure into ``(lattice (3,3) rows, fractional positions (n,3), numbers (n,))``.

    Accepts a (lattice, positions, numbers) triple (positions fractional, numbers
    atomic numbers or element symbols), an ASE ``Atoms``, a pymatgen
    ``Structure`` (duck-typed: neither is imported), a gemmi ``SmallStructure``,
    a CIF path, or CIF text.  No validation beyond shapes and types.
    """
    if isinstance(structure, (str, os.PathLike)):
        return read_cif(structure, reader=reader)
    if isinstance(structure, dict) and {"lattice", "positions", "numbers"} <= set(structure):
        structure = (structure["lattice"], structure["positions"], structure["numbers"])
    if isinstance(structure, (tuple, list)):
        if len(structure) != 3:
            raise ValueError("a structure tuple must be (lattice, fractional positions, numbers)")
        lattice, positions, numbers = structure
        return _arrays(lattice, positions, _numbers_of(numbers))
    # ASE Atoms
    if hasattr(structure, "get_scaled_positions") and hasattr(structure, "get_atomic_numbers") and hasattr(structure, "cell"):
        pbc = np.asarray(getattr(structure, "pbc", True))
        if not np.all(pbc):
            raise ValueError(f"the ASE Atoms is not periodic in all three directions (pbc={pbc.tolist()})")
        return _arrays(np.asarray(structure.cell[:]), structure.get_scaled_positions(wrap=False),
                       _numbers_of(structure.get_atomic_numbers()))
    # pymatgen Structure
    if hasattr(structure, "frac_coords") and hasattr(getattr(structure, "lattice", None), "matrix"):
        if getattr(structure, "is_ordered", True) is False:
            raise ValueError("the pymatgen Structure is disordered (partial occupancies); featurize needs an ordered one")
        if hasattr(structure, "atomic_numbers"):
            numbers = structure.atomic_numbers
        else:
            numbers = [getattr(getattr(s, "specie", s), "Z", None) or atomic_number(str(s)) for s in structure.species]
        return _arrays(np.asarray(structure.lattice.matrix), structure.frac_coords, _numbers_of(numbers))
    # gemmi SmallStructure
    if hasattr(structure, "get_all_unit_cell_sites") and hasattr(structure, "cell"):
        sites = structure.get_all_unit_cell_sites()
        return _arrays(np.array(structure.cell.orth.mat, dtype=np.float64).T,
                       [[s.fract.x, s.fract.y, s.fract.z] for s in sites],
                       _numbers_of([s.element.atomic_number for s in sites]))
    raise TypeError(
        "structure must be (lattice, positions, numbers), an ASE Atoms, a pymatgen Structure, "
        f"a gemmi SmallStructure, a CIF path or CIF text; got {type(structure).__name__}"
    )


def _arrays(lattice, positions, numbers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def real(a, what):
        arr = np.asarray(a)
        if arr.dtype == object or arr.dtype.kind not in "fiu":
            raise TypeError(f"{what} must be a real numeric array, got dtype {arr.dtype}")
        return arr.astype(np.float64)

    lat = real(lattice, "lattice")
    if lat.shape != (3, 3):
        raise ValueError(f"lattice must have shape (3, 3) (rows a, b, c), got {lat.shape}")
    pos = real(positions, "positions")
    if pos.size == 0:
        pos = pos.reshape(0, 3)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions must have shape (n, 3), got {pos.shape}")
    num = np.asarray(numbers, dtype=np.int64).ravel()
    if len(num) != len(pos):
        raise ValueError(f"{len(pos)} positions but {len(num)} atomic numbers")
    return lat, pos, num


def _validate(lattice: np.ndarray, positions: np.ndarray, numbers: np.ndarray, min_distance: float) -> None:
    if len(positions) == 0:
        raise ValueError("the structure has no atoms")
    if not np.all(np.isfinite(lattice)):
        raise ValueError("the lattice contains NaN or inf")
    if not np.all(np.isfinite(positions)):
        raise ValueError("the positions contain NaN or inf")
    lengths = np.linalg.norm(lattice, axis=1)
    vol = float(np.linalg.det(lattice))
    if np.any(lengths <= 1e-8) or abs(vol) <= 1e-9 * float(np.prod(lengths)):
        raise ValueError(f"the lattice is singular (volume {vol:.3g} A^3 for vector lengths {np.round(lengths, 6).tolist()})")
    if np.any(numbers < 0):
        raise ValueError("atomic numbers (species labels) must be non-negative")
    if min_distance > 0:
        d, pair = _closest_pair(lattice, positions)
        if d < min_distance:
            i, j = pair
            what = f"atoms {i} and {j} are" if i != j else f"atom {i} is"
            raise ValueError(
                f"{what} {d:.3g} A apart (periodic images included), closer than min_distance={min_distance} A: "
                "overlapping or duplicated atoms"
            )


_SHIFTS = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T.astype(np.float64)


def _closest_pair(lattice: np.ndarray, positions: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Smallest periodic distance between two atoms (or an atom and its own image)."""
    red = _reduce_lattice(lattice)
    M = lattice @ np.linalg.inv(red)  # fractional coords in the reduced basis: x_red = x M
    x = positions @ M
    x = x - np.floor(x)
    images = _SHIFTS @ red  # (27, 3) Cartesian lattice vectors
    self_d = float(np.sqrt(np.sort((images**2).sum(axis=1))[1]))
    best, pair = self_d, (0, 0)
    n = len(x)
    chunk = max(1, 100_000 // max(n, 1))
    for lo in range(0, n, chunk):
        d = x[lo : lo + chunk, None, :] - x[None, :, :]
        d -= np.rint(d)
        cart = (d @ red)[:, :, None, :] + images  # (c, n, 27, 3)
        dist2 = np.einsum("ijkl,ijkl->ijk", cart, cart).min(axis=-1)
        rows = np.arange(lo, min(lo + chunk, n))
        dist2[rows - lo, rows] = np.inf
        k = np.unravel_index(np.argmin(dist2), dist2.shape)
        if dist2[k] < best * best:
            best, pair = float(np.sqrt(dist2[k])), (int(rows[k[0]]), int(k[1]))
    return best, pair


def _reduce_lattice(lattice: np.ndarray) -> np.ndarray:
    """A reduced basis (rows) of the same lattice (LLL-style pairwise reduction, to a fixed point)."""
    b = lattice.copy()
    for _ in range(100):
        changed = False
        for i in range(3):
            for j in range(3):
                if i != j:
                    mu = np.rint(b[i] @ b[j] / (b[j] @ b[j]))
                    if mu != 0:
                        b[i] = b[i] - mu * b[j]
                        changed = True
        if not changed:
            break
    return b


# ------------------------------------------------------------------ featurize
def featurize(
    structure: Any,
    kmax: int | None = None,
    symprec: float = 1e-5,
    db=None,
    *,
    real: bool = True,
    min_distance: float = 0.1,
    reader: str | None = None,
) -> Featurized:
    """Detect the space group of a crystal and compute canonical, invariant per-atom features.

    structure: (lattice (3,3) rows a,b,c in Angstrom, fractional positions (n,3), atomic numbers or
        symbols (n,)), an ASE Atoms, a pymatgen Structure, a gemmi SmallStructure, a CIF path or CIF text.
    kmax: cut-off of the basis (default: the database's); symprec: spglib's tolerance (Angstrom).
    db: a Database (default: ``basisdb.open()``, opened once).  real: real or complex features.
    min_distance: atoms closer than this (Angstrom) are refused as overlapping.
    reader: CIF reader ('gemmi', 'ase', 'builtin'; default: the first available).

    The symmetry is found with spglib in its default setting of the group; the
    coordinates are symmetrised and put into the canonical presentation of
    docs/STRUCTURES.md, so that every presentation of the same crystal (origin,
    cell choice, supercell, atom order, Cartesian rotation, setting) gives the
    same features atom by atom.  Left-handed cells are accepted (the crystal is
    the same; spglib maps it onto a right-handed standard cell).
    """
    if isinstance(symprec, bool) or not isinstance(symprec, (int, float, np.floating, np.integer)) or not np.isfinite(symprec) or symprec <= 0:
        raise ValueError(f"symprec must be a positive number of Angstrom, got {symprec!r}")
    lattice, positions, numbers = as_cell(structure, reader=reader)
    _validate(lattice, positions, numbers, float(min_distance))
    db = _default_db() if db is None else db
    ds = _detect(lattice, positions, numbers, float(symprec))
    basis = db.get(hall=int(ds.hall_number), kmax=kmax)
    canon = _canonicalize(basis, ds, lattice, positions, numbers, float(symprec))
    feats = basis.evaluate(canon["positions"], real=bool(real))
    setting = basis.setting
    return Featurized(
        basis=basis,
        hall_number=setting.hall_number,
        number=setting.number,
        international=setting.hm_short,
        hall_symbol=setting.hall_symbol,
        numbers=_readonly(numbers),
        features=_readonly(feats),
        symprec=float(symprec),
        **canon,
    )


def _detect(lattice, positions, numbers, symprec: float):
    """spglib's symmetry dataset (default setting of the group); ValueError when it finds none."""
    spglib = _require_spglib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ds = spglib.get_symmetry_dataset((lattice, positions, numbers), symprec=float(symprec))
        except Exception as exc:  # spglib.SpglibError with the new error handling
            raise ValueError(f"spglib could not determine the symmetry (symprec={symprec}): {exc}") from None
    if ds is None:
        raise ValueError(f"spglib could not determine the symmetry (symprec={symprec})")
    return ds


def _canonicalize(basis: Basis, ds, lattice, positions, numbers, symprec: float) -> dict:
    """Symmetrised canonical coordinates and the matching data (the Featurized fields but features)."""
    gd = group_data(basis)
    P = np.asarray(ds.transformation_matrix, dtype=np.float64)
    p = np.asarray(ds.origin_shift, dtype=np.float64)
    x_std = positions @ P.T + p
    Ls = lattice.T @ np.linalg.inv(P)  # columns: the standard cell's vectors (not idealised)
    metric = Ls.T @ Ls
    tol = max(4.0 * symprec, 1e-8)
    mapping = np.asarray(ds.mapping_to_primitive, dtype=np.int64)
    # spglib numbers the primitive sites 0..n_sites-1; rep: the first input atom on each
    n_sites = int(mapping.max()) + 1
    if len(np.unique(mapping)) != n_sites:  # not numbered 0..n-1 (never seen): renumber
        mapping = np.unique(mapping, return_inverse=True)[1].ravel()
        n_sites = int(mapping.max()) + 1
    cls = mapping
    rep = np.empty(n_sites, dtype=np.int64)
    rep[mapping[::-1]] = np.arange(len(mapping) - 1, -1, -1)
    chol = np.linalg.cholesky(metric)
    if n_sites == len(x_std):  # a primitive input: every atom is its own site
        ell = np.zeros_like(x_std)
        site_x = x_std[rep]
    else:
        # every input atom = its primitive site + an exact lattice vector (integer + centring)
        e = x_std - x_std[rep][cls]
        cen = gd.centrings / NDEN
        f = e[None, :, :] - cen[:, None, :]  # (c, n, 3)
        shift = np.rint(f)
        d2 = (((f - shift) @ chol) ** 2).sum(axis=-1)  # (c, n)
        k = np.argmin(d2, axis=0)
        idx = np.arange(len(e))
        if np.sqrt(d2[k, idx].max()) > tol:
            raise ValueError("spglib's primitive mapping does not match the positions; try another symprec")
        ell = shift[k, idx] + cen[k]
        # a site's position: the mean over all its copies (independent of atom order and supercell)
        u = x_std - ell
        counts = np.bincount(cls, minlength=n_sites).astype(np.float64)
        site_x = np.stack([np.bincount(cls, weights=u[:, i], minlength=n_sites) for i in range(3)], axis=1) / counts[:, None]
    xbar_p, orbit_p, disp = symmetrize(gd, site_x, numbers[rep], metric, tol)
    xbar = xbar_p[cls] + ell
    disp = float(np.sqrt(((((xbar - x_std) @ chol) ** 2).sum(axis=1)).max()))

    S = np.asarray(ds.std_lattice, dtype=np.float64)
    g_ideal = S @ S.T
    choice = canonical_choice(gd, xbar_p, numbers[rep], g_ideal, symprec)
    A = choice.A.astype(np.float64)
    y = xbar @ A.T + choice.shift
    x_can = y - np.floor(y)
    x_can[x_can >= 1.0] = 0.0

    # canonical orbit numbering: order of first appearance in the canonical cell
    src_orbit = orbit_p[choice.cell_source]
    first = np.full(len(orbit_p), len(src_orbit))
    first[src_orbit[::-1]] = np.arange(len(src_orbit) - 1, -1, -1)  # first row of each orbit
    labels = np.flatnonzero(first < len(src_orbit))
    rank = np.empty(len(orbit_p), dtype=np.int64)
    rank[labels[np.argsort(first[labels])]] = np.arange(len(labels))
    orbit = rank[orbit_p[cls]]
    # the cell row of every atom: same primitive site, nearest position
    d = x_can[:, None, :] - choice.cell_positions[None, :, :]
    d -= np.rint(d)
    d2 = (d * d).sum(axis=-1)
    d2[cls[:, None] != choice.cell_source[None, :]] = np.inf
    site = np.argmin(d2, axis=1)

    T = choice.A @ P
    return dict(
        positions=_readonly(x_can),
        orbit=_readonly(orbit),
        site=_readonly(site),
        cell_positions=_readonly(choice.cell_positions),
        cell_numbers=_readonly(choice.cell_numbers),
        transformation_matrix=_readonly(T),
        origin_shift=_readonly(p @ A.T + choice.shift),
        lattice=_readonly(np.linalg.inv(T).T @ lattice),
        max_displacement=disp,
    )
