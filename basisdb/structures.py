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

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ._basis import Basis
from ._basis import readonly_copy as _readonly
from ._canonical import canonical_choice, group_data, symmetrize
from ._cif import CIFCrystal, DeclaredSymmetry, crystal_from_small_structure, group_type, load_cif, read_cif
from ._database import default_database
from ._detectors import SymmetryNotFoundError, check_detector, moyopy_dataset
from ._errors import CartesianPositionsWarning, SymmetryMismatchError, SymmetryMismatchWarning, warn
from ._evaluate import evaluate_plan
from ._species import atomic_number, is_dummy_species
from ._symmetry_screen import lattice_may_have_more_symmetry, may_have_more_symmetry

__all__ = ["Featurized", "LowSymmetryWarning", "featurize", "as_cell", "read_cif"]


def _require_spglib():
    try:
        import spglib
    except ImportError as exc:
        raise ImportError(
            "basisdb.featurize needs spglib to detect space groups; install it with "
            "`pip install basisdb[structures]` (or `pip install spglib`)"
        ) from exc
    return spglib


@dataclass(frozen=True, eq=False)
class Featurized:
    """Result of ``featurize``: the detected setting, canonical coordinates and features.

    Fields:
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
        angle_tolerance:  the angle tolerance passed to spglib (degrees); None: spglib's own.
        declared_number:  space-group number the input declares (a CIF's operations, Hall or H-M symbol or
                          number; a gemmi SmallStructure's symmetry); None when it declares none.
        declared_hall_number: the spglib setting whose operations are exactly the declared ones (None when
                          nothing is declared or the declared operations are in no tabulated setting).
        declared:         where the declaration came from ('_symmetry_space_group_name_H-M ...'), or None.
        merged_images:    symmetry images merged into an image of the same site while expanding the declared
                          symmetry (special positions; CIF and SmallStructure inputs), 0 otherwise.
        magnetic:         with ``magmoms=``: a ``MagneticFeaturized`` (detected magnetic group: uni_number,
                          bns_number, og_number, type; canonical BNS positions; time_even_features and
                          signed time_odd_features), else None (docs/STRUCTURES.md section 10).
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
    angle_tolerance: float | None = None
    declared_number: int | None = None
    declared_hall_number: int | None = None
    declared: str | None = None
    merged_images: int = 0
    magnetic: Any = None

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
        """Every symmetry operation of the crystal in the input frame, modulo the input's lattice, once
        each: x -> R x + t with R (g, 3, 3) float64 and t (g, 3) float64 in [0, 1).  R is an integer matrix
        when the input cell is a primitive or conventional cell of the crystal; for a supercell some are
        not (they map the crystal's lattice, not the supercell's, onto itself).

        The setting's operations conjugated by the canonical map (R_in = T^-1 R T,
        t_in = T^-1 (R s + t - s)), combined with the crystal's pure translations that are not
        vectors of the input's lattice (a supercell's: T^-1 n for integer n, plus the centrings),
        and reduced modulo the input lattice: so g is the order of G modulo that lattice, e.g. 12 for corundum given as its
        rhombohedral primitive cell (not the 36 of the hexagonal setting), 2 x 192 for a 2 x 1 x 1
        supercell of rock salt.  The identity comes first.
        """
        rots, trans = self.basis.operations()
        T, s = self.transformation_matrix, self.origin_shift
        Tinv = np.linalg.inv(T)
        r_in = np.einsum("ij,gjk,kl->gil", Tinv, rots, T)
        t_in = (np.einsum("gij,j->gi", rots, s) + trans - s) @ Tinv.T

        def mod1(w: np.ndarray) -> tuple[np.ndarray, tuple]:
            """w mod 1 in [0, 1) (within 1e-9 of 1 is 0) and its key on a 1e-8 grid."""
            w = w % 1.0
            w[np.abs(w - 1.0) < 1e-9] = 0.0
            return w, tuple(np.rint(w * 1e8).astype(np.int64).tolist())

        # the crystal's translations modulo the input lattice: the group generated by the setting's
        # lattice vectors (columns of T^-1) mod 1 (its centrings are among the operations already)
        pure = [np.zeros(3)]
        seen = {(0, 0, 0)}
        frontier = [np.zeros(3)]
        while frontier:
            nxt = []
            for v in frontier:
                for col in Tinv.T:
                    w, key = mod1(v + col)
                    if key not in seen:
                        seen.add(key)
                        pure.append(w)
                        nxt.append(w)
            frontier = nxt
        out_r, out_t, keys = [], [], set()
        for R, t in zip(r_in, t_in):
            rkey = tuple(np.rint(R * 1e8).astype(np.int64).ravel().tolist())
            for v in pure:
                w, key = mod1(t + v)
                if rkey + key not in keys:
                    keys.add(rkey + key)
                    out_r.append(R)
                    out_t.append(w)
        return np.array(out_r), np.array(out_t)

    def vector_features(
        self, kind: str = "polar", real: bool = True, points=None, idealize: bool = True
    ) -> np.ndarray:
        """Equivariant per-atom features (n_atoms, n_basis_vec, 3): the setting's ``kind`` ('polar' or
        'axial') vector basis at every atom (or at input-frame fractional ``points``), Cartesian
        components in the input's frame: they rotate with the input and do not depend on its
        presentation (``basisdb._vector_structures``, docs/STRUCTURES.md)."""
        from ._vector_structures import vector_features

        return vector_features(self, kind, real=real, points=points, idealize=idealize)


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
    cell = _read_structure(structure, reader=reader)
    return cell.lattice, cell.positions, cell.numbers


@dataclass(frozen=True)
class _Input:
    """A structure as arrays, with what its source declares (CIF, gemmi SmallStructure)."""

    lattice: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    declared: DeclaredSymmetry | None = None
    merged: int = 0
    arrays: bool = False  # given as plain arrays: the positions might be Cartesian by mistake
    moments: np.ndarray | None = None  # (n, 3) Cartesian moments of a magnetic CIF (muB), for magmoms="cif"
    moment_error: str | None = None  # why there are none (a CIF source)


def _from_crystal(c: CIFCrystal) -> _Input:
    return _Input(
        *_arrays(c.lattice, c.positions, c.numbers),
        declared=c.declared,
        merged=c.merged,
        moments=c.moments,
        moment_error=c.moment_error,
    )


def _read_structure(structure, reader: str | None = None) -> _Input:
    if isinstance(structure, _Input):  # read already (the dataset engine reads once for its user columns)
        return structure
    if isinstance(structure, (str, os.PathLike)):
        return _from_crystal(load_cif(structure, reader=reader))
    if isinstance(structure, dict) and {"lattice", "positions", "numbers"} <= set(structure):
        structure = (structure["lattice"], structure["positions"], structure["numbers"])
    if isinstance(structure, (tuple, list)):
        if _is_many_structures(structure):
            raise TypeError(
                f"featurize takes one structure, got a {type(structure).__name__} of {len(structure)} structures; "
                "use basisdb.featurize_many(structures) for many (workers, progress, failures recorded), "
                "or basisdb.featurize_dataset(paths, output) for files, folders and CSV/Parquet tables"
            )
        if len(structure) != 3:
            raise ValueError("a structure tuple must be (lattice, fractional positions, numbers)")
        lattice, positions, numbers = structure
        return _Input(*_arrays(lattice, positions, _numbers_of(numbers)), arrays=True)
    # ASE Atoms
    if (
        hasattr(structure, "get_scaled_positions")
        and hasattr(structure, "get_atomic_numbers")
        and hasattr(structure, "cell")
    ):
        pbc = np.asarray(getattr(structure, "pbc", True))
        if not np.all(pbc):
            raise ValueError(f"the ASE Atoms is not periodic in all three directions (pbc={pbc.tolist()})")
        _refuse_ase_disorder(getattr(structure, "info", None) or {})
        try:
            scaled = structure.get_scaled_positions(wrap=False)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"the ASE Atoms' cell is singular (volume {abs(float(np.linalg.det(np.asarray(structure.cell[:])))):.3g} "
                "A^3): fractional positions are undefined"
            ) from None
        # ASE's dummy atom 'X' has atomic number 0: the dummy species of every route
        return _Input(
            *_arrays(np.asarray(structure.cell[:]), scaled, _numbers_of(structure.get_atomic_numbers()))
        )
    # pymatgen Structure
    if hasattr(structure, "frac_coords") and hasattr(getattr(structure, "lattice", None), "matrix"):
        if getattr(structure, "is_ordered", True) is False:
            raise ValueError(
                "the pymatgen Structure is disordered (partial occupancies); featurize needs an ordered one"
            )
        if hasattr(structure, "species"):
            # a DummySpecies' own Z is a string hash that changes between processes: it is species 0
            numbers = [0 if is_dummy_species(sp) else _species_z(sp) for sp in structure.species]
        else:
            numbers = structure.atomic_numbers
        return _Input(
            *_arrays(np.asarray(structure.lattice.matrix), structure.frac_coords, _numbers_of(numbers))
        )
    # gemmi SmallStructure: its asymmetric unit, expanded by the same rules as a CIF
    if hasattr(structure, "get_all_unit_cell_sites") and hasattr(structure, "cell"):
        return _from_crystal(crystal_from_small_structure(structure))
    raise TypeError(
        "structure must be (lattice, positions, numbers), an ASE Atoms, a pymatgen Structure, "
        f"a gemmi SmallStructure, a CIF path or CIF text; got {type(structure).__name__}"
    )


def _refuse_ase_disorder(info: dict) -> None:
    """ValueError when an ASE Atoms carries partial occupancies: ``ase.io.read`` of a disordered CIF keeps
    one species per site and the occupancies in ``atoms.info["occupancy"]`` ({site tag: {symbol:
    occupancy}}); the same threshold as the CIF reader (below 0.999, or two species on one site)."""
    occ = info.get("occupancy")
    if not isinstance(occ, dict):
        return
    for tag, site in occ.items():
        if not isinstance(site, dict):
            continue
        shares = {str(k): float(v) for k, v in site.items()}
        if len(shares) > 1 or any(v < 1.0 - 1e-3 for v in shares.values()):
            listed = ", ".join(f"{k} {v:g}" for k, v in shares.items())
            raise ValueError(
                f"the ASE Atoms is a disordered structure (atoms.info['occupancy'] of site {tag}: {listed}; "
                "ASE keeps one species per site): partial occupancies are not supported, as in a CIF. If you "
                "ordered the structure yourself, delete atoms.info['occupancy'] first"
            )


def _is_many_structures(seq) -> bool:
    """A list/tuple of structures (not one (lattice, positions, numbers) triple): an element that is a
    structure by itself (path or CIF text, dict, ASE Atoms, pymatgen Structure, gemmi SmallStructure), or
    an element that is a triple whose first item is a 3x3 lattice."""
    for s in seq:
        if (
            isinstance(s, (str, os.PathLike, dict))
            or hasattr(s, "get_scaled_positions")
            or hasattr(s, "frac_coords")
            or hasattr(s, "get_all_unit_cell_sites")
        ):
            return True
        if isinstance(s, (tuple, list)) and len(s) == 3:
            try:
                if np.shape(s[0]) == (3, 3) and np.ndim(s[1]) == 2:
                    return True
            except (ValueError, TypeError):
                pass
    return False


def _species_z(species) -> int:
    z = getattr(species, "Z", None)
    if isinstance(z, (int, np.integer)) and not isinstance(z, bool):
        return int(z)
    return atomic_number(getattr(species, "symbol", None) or str(species))


#: plain-array positions are suspected of being Cartesian when some |x| exceeds this (in cells) while
#: every atom, read as Cartesian Angstrom, lies inside the cell (fractional -0.05..1.05)
CARTESIAN_BOUND = 1.1
_CARTESIAN_HINT = (
    "featurize expects fractional coordinates: convert Cartesian ones with "
    "np.linalg.solve(lattice.T, cartesian.T).T, or pass an ASE Atoms"
)


def _as_cartesian_reading(lattice: np.ndarray, positions: np.ndarray) -> np.ndarray | None:
    """The fractional coordinates the positions would have if they were Cartesian, when that reading is
    plausible (some |x| > CARTESIAN_BOUND, every atom inside the cell); else None."""
    if len(positions) == 0:
        return None
    amax = float(np.abs(positions).max())  # NaN propagates through max
    if not (math.isfinite(amax) and amax > CARTESIAN_BOUND):
        return None
    try:
        frac = np.linalg.solve(lattice.T, positions.T).T
    except np.linalg.LinAlgError:
        return None
    return frac if np.all(frac >= -0.05) and np.all(frac <= 1.05) else None


def _warn_if_cartesian(lattice, positions, numbers, cart_reading, ds, symprec: float) -> None:
    """CartesianPositionsWarning when the Cartesian reading has more symmetry than the fractional one."""
    spglib = _require_spglib()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            other = spglib.get_symmetry_dataset((lattice, cart_reading, numbers), symprec=float(symprec))
        except Exception:  # spglib.SpglibError with the new error handling
            other = None
    if other is None or int(other.number) <= int(ds.number):
        return
    warn(
        CartesianPositionsWarning(
            f"the positions look Cartesian (Angstrom): read as fractional coordinates they reach "
            f"{np.abs(positions).max():.3g} cells from the origin and the crystal is {ds.international} "
            f"(No. {int(ds.number)}), but read as Cartesian every atom lies inside the cell and the crystal is "
            f"{other.international} (No. {int(other.number)}). {_CARTESIAN_HINT}"
        )
    )


def _declared_fields(declared: DeclaredSymmetry | None, merged: int) -> dict:
    if declared is None:
        return dict(declared_number=None, declared_hall_number=None, declared=None, merged_images=int(merged))
    number, hall = group_type(declared.rotations, declared.translations)
    return dict(
        declared_number=number,
        declared_hall_number=hall,
        declared=declared.describe(),
        merged_images=int(merged),
    )


_ON_MISMATCH = ("warn", "raise", "ignore")


def _compare_declared(fields: dict, ds, symprec: float, on_mismatch: str) -> None:
    """Declared versus detected space group: SymmetryMismatchWarning / SymmetryMismatchError.

    Groups are compared by their International Tables number (the setting does not matter).
    A declared P 1 (only the identity) is no claim about the symmetry and is never a mismatch.
    """
    declared = fields["declared_number"]
    if on_mismatch == "ignore" or declared in (None, 1) or declared == int(ds.number):
        return
    message = (
        f"the input declares space group No. {declared} ({fields['declared']}), but spglib detects "
        f"{ds.international} (No. {int(ds.number)}) at symprec={symprec:g} A; the features are those of the "
        "detected group (a looser symprec may find the declared one)"
    )
    if on_mismatch == "raise":
        raise SymmetryMismatchError(message)
    warn(SymmetryMismatchWarning(message))


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
    """Refuse what featurize cannot work on (ValueError): no atoms, NaN/inf, a singular lattice, negative
    species labels, atoms closer than ``min_distance`` Angstrom (periodic images included).

    lattice (3, 3) float64 rows a, b, c (Angstrom); positions (n, 3) float64 fractional; numbers (n,) int64.
    The 3x3 quantities (row lengths, volume, reciprocal-vector lengths) are written out in Python floats;
    the singularity test falls back to ``np.linalg.det`` near its threshold (so it decides exactly as
    before), and the reciprocal lengths only choose between the vectorised screen and the exact search.
    """
    if len(positions) == 0:
        raise ValueError("the structure has no atoms")
    flat = lattice.ravel().tolist()
    if not all(map(math.isfinite, flat)):
        raise ValueError("the lattice contains NaN or inf")
    amax = float(np.abs(positions).max())  # NaN propagates through max
    if not math.isfinite(amax):
        raise ValueError("the positions contain NaN or inf")
    a0, a1, a2, b0, b1, b2, c0, c1, c2 = flat
    # np.linalg.norm(lattice, axis=1): the same three-term sums, in the same order
    la, lb, lc = (
        math.sqrt(a0 * a0 + a1 * a1 + a2 * a2),
        math.sqrt(b0 * b0 + b1 * b1 + b2 * b2),
        math.sqrt(c0 * c0 + c1 * c1 + c2 * c2),
    )
    bc = (
        b1 * c2 - b2 * c1,
        b2 * c0 - b0 * c2,
        b0 * c1 - b1 * c0,
    )  # b x c, c x a, a x b: the adjugate's columns
    ca = (c1 * a2 - c2 * a1, c2 * a0 - c0 * a2, c0 * a1 - c1 * a0)
    ab = (a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0)
    vol = a0 * bc[0] + a1 * bc[1] + a2 * bc[2]
    prod = la * lb * lc
    # the closed form and LAPACK's LU differ by a few ulps of |a||b||c|: near the threshold, decide with LAPACK
    if min(la, lb, lc) <= 1e-8 or abs(vol) <= 2e-9 * prod:
        lengths = np.linalg.norm(lattice, axis=1)
        vol = float(np.linalg.det(lattice))
        if np.any(lengths <= 1e-8) or abs(vol) <= 1e-9 * float(np.prod(lengths)):
            raise ValueError(
                f"the lattice is singular (volume {vol:.3g} A^3 for vector lengths "
                f"{np.round(lengths, 6).tolist()})"
            )
    if numbers.min() < 0:
        raise ValueError("atomic numbers (species labels) must be non-negative")
    if min_distance > 0:
        # screen (vectorised): try every lattice translate that could bring two atoms (or an atom and its
        # image) within min_distance; when all are clearly farther, _closest_pair's exact search would not
        # refuse either.  Otherwise (close calls, large or far-flung inputs) run the exact search.
        n = len(positions)
        if n <= 256 and amax < 1e6:
            # |n_k| bound from the reciprocal vectors' lengths |b x c| / |V| (the columns of inv(lattice))
            w = (min_distance + 1e-6) / abs(vol)
            reach = max(math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) for v in (bc, ca, ab)) * w
            if math.floor(0.5 + 1e-9 + reach) <= 1.0:
                shifts = _SHIFTS @ lattice  # (27, 3); the zero shift is row 13
                d = positions[:, None, :] - positions[None, :, :]
                c = (d - np.rint(d)).reshape(-1, 3) @ lattice  # (n * n, 3) Cartesian
                c2 = (c * c).sum(axis=1)
                s2 = (shifts * shifts).sum(axis=1)
                dist2 = c2[:, None] + 2.0 * (c @ shifts.T) + s2[None, :]  # (n * n, 27)
                dist2[:: n + 1, 13] = np.inf  # an atom and itself
                limit = (min_distance + 1e-6) ** 2 + 1e-9 * (
                    float(c2.max()) + float(s2.max())
                )  # + rounding margin
                if float(dist2.min()) > limit:
                    return
        d, pair = _closest_pair(lattice, positions)
        if d < min_distance:
            i, j = pair
            what = f"atoms {i} and {j} are" if i != j else f"atom {i} is"
            raise ValueError(
                f"{what} {d:.3g} A apart (periodic images included), closer than min_distance={min_distance} A: "
                "overlapping or duplicated atoms"
            )


_SHIFTS = (
    np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij"))
    .reshape(3, -1)
    .T.astype(np.float64)
)


def _closest_pair(lattice: np.ndarray, positions: np.ndarray) -> tuple[float, tuple[int, int]]:
    """Smallest periodic distance between two atoms (or an atom and its own image)."""
    red = _delaunay_basis(lattice)
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


def _delaunay_basis(lattice: np.ndarray) -> np.ndarray:
    """A Delaunay-reduced basis (rows) of the same lattice, by ``spglib.delaunay_reduce``.

    Its vectors with the fourth, -(a + b + c), form an obtuse superbase, so the Delaunay cells of
    the lattice tile each unit parallelepiped with vertices in {-1, 0, 1}^3: the closest image of a
    difference reduced to [-1/2, 1/2]^3 in this basis, and the shortest lattice vector, are among the
    27 shifts that ``_closest_pair`` searches.  (spglib refuses only degenerate lattices, which are
    refused before this is reached; the input basis is then returned unchanged.)
    """
    red = _require_spglib().delaunay_reduce(lattice)
    return lattice.copy() if red is None else np.asarray(red, dtype=np.float64)


def _cif_magmoms(given: _Input, how: str, tol: float):
    """``magmoms="cif"``: (signed collinear moments (n,), their axis (3,)) from a magnetic CIF's moments."""
    from ._magnetic_structures import collinear_from_vectors

    if how != "cif":
        raise ValueError(f"magmoms must be one signed number per atom (n,) or 'cif', got {how!r}")
    if given.moments is None:
        raise ValueError(
            given.moment_error
            or "magmoms='cif' reads the moments of a magnetic CIF "
            "(_atom_site_moment.crystalaxis_x/_y/_z): pass its path or text; this structure is not a CIF"
        )
    return collinear_from_vectors(given.moments, tol)


# ------------------------------------------------------------------ featurize
def featurize(
    structure: Any,
    kmax: int | None = None,
    symprec: float = 0.1,
    db=None,
    *,
    real: bool = True,
    min_distance: float = 0.1,
    reader: str | None = None,
    angle_tolerance: float | None = 5.0,
    on_mismatch: str = "warn",
    magmoms=None,
    mag_symprec: float | None = None,
    detector: str = "spglib",
) -> Featurized:
    """Detect the space group of a crystal and compute canonical, invariant per-atom features.

    Args:
        structure: (lattice (3,3) rows a,b,c in Angstrom, fractional positions (n,3), atomic numbers or
            symbols (n,)), an ASE Atoms, a pymatgen Structure, a gemmi SmallStructure, a CIF path or CIF text.
        kmax: cut-off of the basis (default: the database's).
        symprec: spglib's distance tolerance (Angstrom); angle_tolerance: spglib's angle tolerance
            (degrees; None or negative: spglib's own choice).  The defaults, 0.1 A and 5 degrees, were
            chosen by measurement (bench/measure_symprec.py, docs/STRUCTURES.md "Default symprec"): they
            are the Materials Project's; they recover the ITA group of CIFs written with 4-5 decimals and
            are stable under re-presentation of DFT-relaxed structures, whose noise reaches ~0.05 A.
            spglib's own default is 1e-5 and -1; pymatgen's SpacegroupAnalyzer uses 0.01 and 5, so
            ``symprec=0.01`` reproduces it.  A looser symprec symmetrises more (``max_displacement``);
            for experimental CIFs with genuine distortions below 0.1 A pass ``symprec=0.01``.
            When the result is P 1 or P -1 but the lattice alone, or a looser tolerance (10 x symprec,
            at most 0.1 A), has more symmetry, a ``LowSymmetryWarning`` says so.
        db: a Database (default: ``basisdb.open()``, opened once).  real: real or complex features.
        min_distance: atoms closer than this (Angstrom) are refused as overlapping.
        reader: None or 'gemmi' (CIF files and text are read with gemmi, honouring the declared symmetry).
        on_mismatch: when the input declares a space group (a CIF) and spglib detects another:
            'warn' (SymmetryMismatchWarning), 'raise' (SymmetryMismatchError) or 'ignore'.
        magmoms: collinear magnetic moments, one signed number per input atom (n,): the magnetic space
            group is detected with spglib's magnetic dataset and ``result.magnetic`` holds the canonical
            BNS presentation and the per-atom time-even and signed time-odd features (invariant under the
            magnetic group and under reversing every moment).  Non-collinear (n, 3) moments: ValueError.
            ``magmoms="cif"``: the moments of a magnetic CIF (``_atom_site_moment.crystalaxis_x/_y/_z``,
            expanded with its magnetic operations as axial vectors), which must be collinear; they are
            read as signed scalars along their common axis (docs/STRUCTURES.md section 10).
        mag_symprec: spglib's tolerance on the moments (None: symprec); moments with ``|m|`` at most this
            tolerance count as zero.
        detector: 'spglib' (default) or 'moyopy' (``pip install basisdb[moyopy]``; a Rust
            implementation from spglib's circle, several times faster).  Both report spglib's default
            setting and give the same features wherever they detect the same group
            (tests/structures/test_detectors.py; docs/STRUCTURES.md "Detector backends").  Detection failure
            raises ``SymmetryNotFoundError`` (a ValueError) with either.  The magnetic dataset
            (``magmoms``) and the P 1 / P -1 looser-tolerance hint always use spglib.

    The symmetry is found with spglib in its default setting of the group; the
    coordinates are symmetrised and put into the canonical presentation of
    docs/STRUCTURES.md, so that every presentation of the same crystal (origin,
    cell choice, supercell, atom order, Cartesian rotation, setting) gives the
    same features atom by atom.  Left-handed cells are accepted (the crystal is
    the same; spglib maps it onto a right-handed standard cell).
    """
    return _featurize(
        structure,
        kmax,
        symprec,
        db,
        real=real,
        min_distance=min_distance,
        reader=reader,
        angle_tolerance=angle_tolerance,
        on_mismatch=on_mismatch,
        magmoms=magmoms,
        mag_symprec=mag_symprec,
        detector=detector,
    )


def _featurize(
    structure: Any,
    kmax: int | None,
    symprec: float,
    db,
    *,
    real: bool,
    min_distance: float,
    reader: str | None,
    angle_tolerance: float | None,
    on_mismatch: str,
    magmoms,
    mag_symprec: float | None,
    detector: str,
    evaluate: bool = True,
) -> Featurized:
    """``featurize``; ``evaluate=False`` leaves ``features`` None (the many-structure path evaluates the
    canonical positions of a whole partition per basis at once: ``basisdb.dataset``)."""
    if (
        isinstance(symprec, bool)
        or not isinstance(symprec, (int, float, np.floating, np.integer))
        or not np.isfinite(symprec)
        or symprec <= 0
    ):
        raise ValueError(f"symprec must be a positive number of Angstrom, got {symprec!r}")
    if angle_tolerance is not None and (
        isinstance(angle_tolerance, bool)
        or not isinstance(angle_tolerance, (int, float, np.floating, np.integer))
        or not np.isfinite(angle_tolerance)
    ):
        raise ValueError(f"angle_tolerance must be None or a number of degrees, got {angle_tolerance!r}")
    if on_mismatch not in _ON_MISMATCH:
        raise ValueError(f"on_mismatch must be 'warn', 'raise' or 'ignore', got {on_mismatch!r}")
    check_detector(detector)
    given = _read_structure(structure, reader=reader)
    lattice, positions, numbers = given.lattice, given.positions, given.numbers
    moment_axis = None
    if magmoms is not None:
        from ._magnetic_structures import collinear_magmoms

        if mag_symprec is not None and (
            isinstance(mag_symprec, bool)
            or not isinstance(mag_symprec, (int, float, np.floating, np.integer))
            or not np.isfinite(mag_symprec)
            or mag_symprec <= 0
        ):
            raise ValueError(f"mag_symprec must be None or a positive number, got {mag_symprec!r}")
        if isinstance(magmoms, str):
            magmoms, moment_axis = _cif_magmoms(
                given, magmoms, float(symprec if mag_symprec is None else mag_symprec)
            )
        magmoms = collinear_magmoms(magmoms, len(positions))
    cart_reading = _as_cartesian_reading(lattice, positions) if given.arrays else None
    try:
        _validate(lattice, positions, numbers, float(min_distance))
    except ValueError as exc:
        if cart_reading is None:
            raise
        raise ValueError(
            f"{exc}; the positions look Cartesian (read as Cartesian Angstrom, every atom lies inside "
            f"the cell): {_CARTESIAN_HINT}"
        ) from None
    db = default_database() if db is None else db
    ds = _detect(
        lattice,
        positions,
        numbers,
        float(symprec),
        None if angle_tolerance is None else float(angle_tolerance),
        detector=detector,
    )
    if cart_reading is not None:
        _warn_if_cartesian(lattice, positions, numbers, cart_reading, ds, float(symprec))
    declared = _declared_fields(given.declared, given.merged)
    _compare_declared(declared, ds, float(symprec), on_mismatch)
    basis = db.get(hall=int(ds.hall_number), kmax=kmax)
    canon = _canonicalize(basis, ds, lattice, positions, numbers, float(symprec))
    # the positions are finite float64 (n, 3): the plan is evaluated directly (Basis.evaluate's checks skipped)
    feats = evaluate_plan(basis._plan(bool(real)), canon["positions"]) if evaluate else None
    setting = basis.setting
    magnetic = None
    if magmoms is not None:
        from ._magnetic_structures import featurize_magnetic

        magnetic = featurize_magnetic(
            db,
            lattice,
            positions,
            numbers,
            magmoms,
            symprec=float(symprec),
            angle_tolerance=angle_tolerance,
            mag_symprec=mag_symprec,
            kmax=kmax,
            real=bool(real),
            moment_axis=moment_axis,
        )
    return Featurized(
        basis=basis,
        hall_number=setting.hall_number,
        number=setting.number,
        international=setting.hm_short,
        hall_symbol=setting.hall_symbol,
        numbers=_readonly(numbers),
        # evaluate=False is internal (featurize_many fills the features in per basis): None only there
        features=cast(np.ndarray, None if feats is None else _frozen(feats)),
        symprec=float(symprec),
        angle_tolerance=None if angle_tolerance is None else float(angle_tolerance),
        **declared,
        **canon,
        magnetic=magnetic,
    )


class LowSymmetryWarning(UserWarning):
    """``featurize`` found only P 1 or P -1, but a looser tolerance or the lattice alone has more symmetry.

    Attributes: ``number`` (1 or 2, what was found), ``symprec``, ``angle_tolerance`` (as
    passed), ``looser_symprec`` and ``looser_number`` (the re-detection at the looser
    tolerance; None when not tried), ``lattice_pointgroup`` (Hermann-Mauguin symbol of the
    lattice's own point group at ``symprec``; None when it is -1).
    """

    def __init__(
        self,
        message: str,
        *,
        number: int = 1,
        symprec: float = 0.0,
        angle_tolerance=None,
        looser_symprec=None,
        looser_number=None,
        lattice_pointgroup=None,
    ):
        super().__init__(message)
        self.number, self.symprec, self.angle_tolerance = number, symprec, angle_tolerance
        self.looser_symprec, self.looser_number = looser_symprec, looser_number
        self.lattice_pointgroup = lattice_pointgroup


#: the looser tolerance tried when detection gives P 1 or P -1: LOOSER_FACTOR * symprec, at most
#: max(symprec, LOOSER_CAP) Angstrom (so nothing looser is tried from symprec >= LOOSER_CAP on)
LOOSER_FACTOR = 10.0
LOOSER_CAP = 0.1


def _spglib_dataset(spglib, cell, symprec: float, angle: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return spglib.get_symmetry_dataset(cell, symprec=float(symprec), angle_tolerance=float(angle))
        except Exception as exc:  # spglib.SpglibError with the new error handling
            raise SymmetryNotFoundError(
                f"spglib could not determine the symmetry (symprec={symprec}): {exc}"
            ) from None


def _detect(
    lattice,
    positions,
    numbers,
    symprec: float,
    angle_tolerance: float | None = None,
    detector: str = "spglib",
):
    """The symmetry dataset (spglib's default setting of the group); SymmetryNotFoundError when none is found.

    ``detector``: 'spglib', or 'moyopy' (its dataset adapted to the spglib fields used here,
    basisdb/_detectors.py).  ``angle_tolerance`` (degrees) is passed to the detector; None
    means its own choice (-1 for spglib).
    When the group is P 1 or P -1, the structure is re-detected (with spglib) at a looser tolerance and its
    lattice alone at ``symprec``; if either has more symmetry, a ``LowSymmetryWarning`` says so.
    """
    if detector == "moyopy":
        ds = moyopy_dataset(lattice, positions, numbers, symprec, angle_tolerance)
        if int(ds.number) <= 2:
            _check_low_symmetry(
                _require_spglib(), ds, lattice, positions, numbers, float(symprec), angle_tolerance
            )
        return ds
    spglib = _require_spglib()
    angle = -1.0 if angle_tolerance is None else float(angle_tolerance)
    ds = _spglib_dataset(spglib, (lattice, positions, numbers), symprec, angle)
    if ds is None:
        raise SymmetryNotFoundError(f"spglib could not determine the symmetry (symprec={symprec})")
    if int(ds.number) <= 2:
        _check_low_symmetry(spglib, ds, lattice, positions, numbers, float(symprec), angle_tolerance)
    return ds


def _check_low_symmetry(spglib, ds, lattice, positions, numbers, symprec: float, angle_tolerance) -> None:
    """Warn (LowSymmetryWarning) when a P 1 / P -1 result has more symmetry at a looser tolerance or in its lattice."""
    angle = -1.0 if angle_tolerance is None else float(angle_tolerance)
    found = f"{'P1' if int(ds.number) == 1 else 'P-1'} (No. {int(ds.number)})"
    hints, looser, looser_number, lattice_pg = [], None, None, None
    loose = min(LOOSER_FACTOR * symprec, max(symprec, LOOSER_CAP))
    # spglib answers both questions only when the screen cannot rule more symmetry out (_symmetry_screen)
    if loose > symprec:
        lds = None
        if may_have_more_symmetry(
            spglib, lattice, positions, numbers, loose, angle_tolerance, int(ds.number)
        ):
            try:
                lds = _spglib_dataset(spglib, (lattice, positions, numbers), loose, angle)
            except ValueError:
                lds = None
        looser = loose
        if lds is not None and int(lds.number) > int(ds.number):
            looser_number = int(lds.number)
            hints.append(f"at symprec={loose:g} A it finds {lds.international} (No. {looser_number})")
    latds = None
    if lattice_may_have_more_symmetry(spglib, lattice, symprec, angle_tolerance):
        try:
            latds = _spglib_dataset(
                spglib, (lattice, np.zeros((1, 3)), np.ones(1, dtype=np.int64)), symprec, angle
            )
        except ValueError:
            latds = None
    if latds is not None and int(latds.number) > 2:
        lattice_pg = str(latds.pointgroup)
        hints.append(
            f"the lattice alone has point group {lattice_pg} (Bravais lattice of {latds.international})"
        )
    if not hints:
        return
    at = "spglib's own angle tolerance" if angle_tolerance is None else f"angle_tolerance={angle:g} deg"
    warnings.warn(
        LowSymmetryWarning(
            f"featurize: spglib finds only {found} at symprec={symprec:g} A ({at}), but "
            + " and ".join(hints)
            + f". The features are those of {found.split()[0]}: pass a looser symprec to use more symmetry, "
            "or silence this with warnings.simplefilter('ignore', basisdb.LowSymmetryWarning).",
            number=int(ds.number),
            symprec=symprec,
            angle_tolerance=angle_tolerance,
            looser_symprec=looser,
            looser_number=looser_number,
            lattice_pointgroup=lattice_pg,
        ),
        stacklevel=4,
    )


def _frozen(a: np.ndarray) -> np.ndarray:
    """``a`` itself, made read-only: for arrays created here that nothing else holds (no copy)."""
    a.setflags(write=False)
    return a


_INV_CACHE: dict[bytes, np.ndarray] = {}


def _inv3(M: np.ndarray) -> np.ndarray:
    """``np.linalg.inv(M)`` of a (3, 3) float64 matrix, cached by its exact bytes (read-only result).

    The transformation matrices spglib reports (and their products with the integer normaliser
    matrices) take few distinct values, so the same LAPACK call on the same bytes is reused: the
    result is bit-identical to calling ``np.linalg.inv`` each time.
    """
    key = M.tobytes()
    inv = _INV_CACHE.get(key)
    if inv is None:
        inv = np.linalg.inv(M)
        inv.setflags(write=False)
        if len(_INV_CACHE) > 4096:
            _INV_CACHE.clear()
        _INV_CACHE[key] = inv
    return inv


def _chol3(metric: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor L (metric = L L^T) of a (3, 3) float64 positive-definite metric (its lower
    triangle read), written out in Python floats (a few times cheaper than ``np.linalg.cholesky`` here).

    The same operations as LAPACK's unblocked ``potf2`` (pivot square roots, multiplication by their
    reciprocals), without fused multiply-adds: the factor can differ from OpenBLAS's in the last bit
    (docs/BENCHMARKS.md, round 3).  A non-positive pivot falls back to ``np.linalg.cholesky`` (which raises
    ``LinAlgError``).  Returns (3, 3) float64.
    """
    (g00, _, _), (g10, g11, _), (g20, g21, g22) = metric.tolist()
    if g00 > 0.0:
        l00 = math.sqrt(g00)
        r0 = 1.0 / l00
        l10, l20 = g10 * r0, g20 * r0
        p1 = g11 - l10 * l10
        if p1 > 0.0:
            l11 = math.sqrt(p1)
            l21 = (g21 - l20 * l10) * (1.0 / l11)
            p2 = g22 - (l20 * l20 + l21 * l21)
            if p2 > 0.0:
                return np.array([[l00, 0.0, 0.0], [l10, l11, 0.0], [l20, l21, math.sqrt(p2)]])
    return np.linalg.cholesky(metric)


def _canonicalize(basis: Basis, ds, lattice, positions, numbers, symprec: float) -> dict:
    """Symmetrised canonical coordinates and the matching data (the Featurized fields but features).

    Every array returned is new and read-only (none aliases the inputs).
    """
    gd = group_data(basis)
    P = np.asarray(ds.transformation_matrix, dtype=np.float64)
    p = np.asarray(ds.origin_shift, dtype=np.float64)
    x_std = positions @ P.T + p
    Ls = lattice.T @ _inv3(P)  # columns: the standard cell's vectors (not idealised)
    metric = Ls.T @ Ls
    tol = max(4.0 * symprec, 1e-8)
    mapping = np.asarray(ds.mapping_to_primitive, dtype=np.int64)
    # spglib numbers the primitive sites 0..n_sites-1; rep: the first input atom on each
    try:
        counts = np.bincount(mapping)  # ValueError for a negative label
    except ValueError:
        counts = None
    if counts is None or not counts.all():  # not numbered 0..n-1 (never seen): renumber
        mapping = np.unique(mapping, return_inverse=True)[1].ravel()
        counts = np.bincount(mapping)
    n_sites = len(counts)
    cls = mapping
    n = len(x_std)
    # the first atom of each site (a Python pass over n labels: cheaper than numpy's calls at these sizes)
    labels = mapping.tolist()
    identity = labels == list(range(n))  # atom i is site i: indexing by rep or cls is a copy
    if identity:
        rep = mapping
    else:
        first_of: dict[int, int] = {}
        for i, site_label in enumerate(labels):
            first_of.setdefault(site_label, i)
        rep = np.array([first_of[k] for k in range(n_sites)], dtype=np.int64)
    chol = _chol3(metric)
    if n_sites == n:  # a primitive input: every atom is its own site
        ell = None
        site_x = x_std if identity else x_std[rep]  # symmetrize and canonical_choice only read it
    else:
        # every input atom = its primitive site + an exact lattice vector (integer + centring)
        e = x_std - x_std[rep][cls]
        cen = gd.centrings_f
        f = e[None, :, :] - cen[:, None, :]  # (c, n, 3)
        shift = np.rint(f)
        d2 = (((f - shift) @ chol) ** 2).sum(axis=-1)  # (c, n)
        k = np.argmin(d2, axis=0)
        idx = np.arange(n)
        if np.sqrt(d2[k, idx].max()) > tol:
            raise ValueError("spglib's primitive mapping does not match the positions; try another symprec")
        ell = shift[k, idx] + cen[k]
        # a site's position: the mean over all its copies (independent of atom order and supercell)
        u = x_std - ell
        site_x = (
            np.stack([np.bincount(cls, weights=u[:, i], minlength=n_sites) for i in range(3)], axis=1)
            / counts.astype(np.float64)[:, None]
        )
    z_sites = numbers if identity else numbers[rep]
    xbar_p, orbit_p, _ = symmetrize(gd, site_x, z_sites, metric, tol, chol=chol, displacement=False)
    if ell is None:
        xbar = xbar_p if identity else xbar_p[cls]  # read only from here on
    else:
        xbar = xbar_p[cls] + ell
    w = (xbar - x_std) @ chol
    w *= w  # == w ** 2 (numpy's square)
    disp = math.sqrt(float(w.sum(axis=1).max()))  # sqrt is monotone and correctly rounded: == max of sqrt

    S = np.asarray(ds.std_lattice, dtype=np.float64)
    choice = canonical_choice(gd, xbar_p, z_sites, S @ S.T, symprec)
    A = choice.A.astype(np.float64)
    y = xbar @ A.T + choice.shift
    x_can = y - np.floor(y)
    x_can[x_can >= 1.0] = 0.0

    # canonical orbit numbering: order of first appearance in the canonical cell (every orbit appears)
    rank = [0] * len(orbit_p)
    seen: set[int] = set()
    for o in orbit_p[choice.cell_source].tolist():
        if o not in seen:
            rank[o] = len(seen)
            seen.add(o)
    orbit = np.array(rank, dtype=np.int64)[orbit_p if identity else orbit_p[cls]]
    # the cell row of every atom: same primitive site, nearest position.  Each site has one row per
    # centring; its rows in cell order (a stable sort), so argmin's first minimum is the same row as
    # over the whole masked cell
    src = choice.cell_source
    nc = len(src) // n_sites
    if nc == 1:  # one row per site
        row_of = np.empty(n_sites, dtype=np.int64)
        row_of[src] = np.arange(n_sites)
        site = row_of[cls]
    else:
        rows = np.argsort(src, kind="stable").reshape(n_sites, nc)[cls]  # (n, nc)
        d = x_can[:, None, :] - choice.cell_positions[rows]
        d -= np.rint(d)
        d2 = (d * d).sum(axis=-1)
        site = rows[np.arange(n), np.argmin(d2, axis=1)]

    T = choice.A @ P
    return dict(
        positions=_frozen(x_can),
        orbit=_frozen(orbit),
        site=_frozen(site),
        cell_positions=_frozen(choice.cell_positions),
        cell_numbers=_frozen(choice.cell_numbers),
        transformation_matrix=_frozen(T),
        origin_shift=_frozen(p @ A.T + choice.shift),
        lattice=_frozen(_inv3(T).T @ lattice),
        max_displacement=disp,
    )
