"""The 1,651 magnetic space-group types from spglib: exact operations, metadata and bases.

A magnetic operation is ``(R, t, theta)`` with ``theta = 1`` when it reverses time.
For a *time-odd* scalar field f (a collinear spin density) invariance reads
``f(R x + t) = (-1)**theta f(x)``, i.e. in Fourier coefficients
``c_{R^T k} = (-1)**theta exp(2 pi i k.t) c_k``: the edge phase of the dual frequency
graph gains ``DEN // 2`` for primed operations (``solve_orbits(..., phase_offsets=)``).
A *time-even* field ignores theta: its basis is that of the family space group
F = {(R, t)} in the same (BNS) setting.

Types (spglib's ``type``): 1 no primed operation (time-odd = time-even basis),
2 grey group containing 1' (time-odd basis empty), 3 half of the operations primed,
4 anti-translations (1, t', 1') in the BNS cell.  Types 1 and 2 store no time-odd basis:
the reader derives it (docs/FORMAT.md section 15).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from basisdb._constants import N_MAGNETIC_TYPES
from basisdb._format import DEN
from basisdb._ops import as_exact_operations

from .orbits import OrbitSolution, solve_orbits
from .settings import _spglib

__all__ = [
    "MagneticRecord",
    "magnetic_record",
    "magnetic_generators",
    "check_magnetic_group",
    "solve_magnetic",
]


@dataclass(frozen=True)
class MagneticRecord:
    """Metadata and exact operations of one magnetic space-group type in its BNS setting.

    rotations (order, 3, 3), translations (order, 3) numerators over DEN, time_reversals (order,)
    0/1: spglib's ``get_magnetic_symmetry_from_database(uni_number)``, in spglib's order.
    family_*: the family space group F = {(R, t)} (time reversal ignored) as spglib's symmetry
    dataset of a generic F-invariant crystal in this setting reports it: ``hall_number``,
    ``number`` and ``x_std = P x + p`` (``transformation`` P and ``origin_shift`` p, exact
    numerators over DEN).  even_hall_number: the hall_number whose operation set equals F's
    (its /settings basis is then the time-even basis), or 0.
    """

    uni_number: int
    litvin_number: int
    bns_number: str
    og_number: str
    number: int
    type: int
    rotations: np.ndarray
    translations: np.ndarray
    time_reversals: np.ndarray
    family_hall_number: int
    family_number: int
    transformation: np.ndarray  # (3, 3) int64 numerators over DEN
    origin_shift: np.ndarray  # (3,) int64 numerators over DEN, in 0..DEN-1
    even_hall_number: int

    @property
    def family_operations(self) -> tuple[np.ndarray, np.ndarray]:
        """(rotations, translations) of F: the distinct (R, t), in first-occurrence order."""
        return family_operations(self.rotations, self.translations)


def family_operations(rotations: np.ndarray, translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.concatenate([rotations.reshape(len(rotations), 9), translations % DEN], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    first = np.sort(first)
    return rotations[first], translations[first] % DEN


def _op_keys(rot: np.ndarray, tra: np.ndarray, tr: np.ndarray) -> np.ndarray:
    """One int64 row key per operation (R, t mod DEN, theta), for set membership."""
    return np.concatenate([rot.reshape(len(rot), 9), tra % DEN, tr[:, None] % 2], axis=1).astype(np.int64)


def check_magnetic_group(rotations: np.ndarray, translations: np.ndarray, time_reversals: np.ndarray) -> None:
    """Raise ValueError unless the (R, t, theta) form a group modulo lattice translations (vectorised)."""
    keys = _op_keys(rotations, translations, time_reversals)
    if len(np.unique(keys, axis=0)) != len(keys):
        raise ValueError("duplicate magnetic operations")
    rr = np.einsum("aij,bjk->abik", rotations, rotations).reshape(-1, 3, 3)
    tt = (np.einsum("aij,bj->abi", rotations, translations) + translations[:, None, :]).reshape(-1, 3)
    th = (time_reversals[:, None] + time_reversals[None, :]).reshape(-1)
    products = _op_keys(rr, tt, th)
    known = {row.tobytes() for row in keys}
    if any(row.tobytes() not in known for row in np.unique(products, axis=0)):
        raise ValueError("magnetic operations are not closed under composition")


def magnetic_generators(
    rotations: np.ndarray, translations: np.ndarray, time_reversals: np.ndarray
) -> list[int]:
    """Indices of a generating set of the magnetic group (theta included), greedy in list order."""
    ops = [
        (r, t % DEN, int(th) % 2)
        for r, t, th in zip(rotations.astype(np.int64), translations.astype(np.int64), time_reversals)
    ]

    def key(op):
        r, t, th = op
        return r.tobytes() + (t % DEN).tobytes() + bytes([th])

    ident = (np.eye(3, dtype=np.int64), np.zeros(3, dtype=np.int64), 0)
    generated = {key(ident): ident}
    chosen: list[int] = []
    for i, op in enumerate(ops):
        if key(op) in generated:
            continue
        chosen.append(i)
        frontier = list(generated.values())
        while frontier:
            new = []
            for a in frontier:
                for j in chosen:
                    g = ops[j]
                    c = (g[0] @ a[0], (g[0] @ a[1] + g[1]) % DEN, (g[2] + a[2]) % 2)
                    kc = key(c)
                    if kc not in generated:
                        generated[kc] = c
                        new.append(c)
            frontier = new
        if len(generated) == len(ops):
            break
    return chosen


def _exact(values: np.ndarray, what: str) -> np.ndarray:
    scaled = np.asarray(values, dtype=float) * DEN
    out = np.rint(scaled).astype(np.int64)
    if np.any(np.abs(scaled - out) > 1e-6):
        raise RuntimeError(f"{what} is not a multiple of 1/{DEN}: {values}")
    return out


def _family_dataset(rotations: np.ndarray, translations: np.ndarray, seed: int):
    """spglib's symmetry dataset of a generic crystal invariant under F (invariant metric, 3 general orbits)."""
    spglib = _spglib()
    rng = np.random.default_rng(seed)
    rots = rotations.astype(float)
    metric = sum(r.T @ np.diag([1.0, 1.3, 1.7]) @ r for r in rots)
    lattice = np.linalg.cholesky(metric)
    positions, types = [], []
    for kind in (1, 2, 3):
        orbit = np.mod(rots @ rng.random(3) + translations / DEN, 1.0)
        keep = np.unique(np.round(orbit * 1e6).astype(np.int64) % 1000000, axis=0, return_index=True)[1]
        positions.append(orbit[np.sort(keep)])
        types += [kind] * len(keep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spglib.get_symmetry_dataset((lattice, np.concatenate(positions), types), symprec=1e-5)


def _hall_of_operation_sets() -> dict[bytes, int]:
    """Sorted operation set (R, t mod DEN) -> the first hall_number with exactly that set."""
    spglib = _spglib()
    from basisdb._constants import N_SETTINGS

    out: dict[bytes, int] = {}
    for hall in range(1, N_SETTINGS + 1):
        sym = spglib.get_symmetry_from_database(hall)
        rot, tra = as_exact_operations(sym["rotations"], sym["translations"])
        out.setdefault(_set_key(rot, tra), hall)
    return out


def _set_key(rot: np.ndarray, tra: np.ndarray) -> bytes:
    keys = np.concatenate([rot.reshape(len(rot), 9), tra % DEN], axis=1).astype(np.int64)
    return np.unique(keys, axis=0).tobytes()


_HALL_SETS: dict[bytes, int] | None = None


def prepare() -> None:
    """Compute the hall_number table once (before forking workers)."""
    global _HALL_SETS
    if _HALL_SETS is None:
        _HALL_SETS = _hall_of_operation_sets()


def magnetic_record(uni_number: int) -> MagneticRecord:
    """Exact operations (checked to form a magnetic group) and metadata of one UNI type."""
    if not 1 <= uni_number <= N_MAGNETIC_TYPES:
        raise ValueError(f"uni_number must be in 1..{N_MAGNETIC_TYPES}, got {uni_number}")
    spglib = _spglib()
    prepare()
    info = spglib.get_magnetic_spacegroup_type(uni_number)
    sym = spglib.get_magnetic_symmetry_from_database(uni_number)
    rot, tra = as_exact_operations(sym["rotations"], sym["translations"])
    tr = np.asarray(sym["time_reversals"], dtype=np.int64)
    check_magnetic_group(rot, tra, tr)
    frot, ftra = family_operations(rot, tra)
    ds = _family_dataset(frot, ftra, seed=20261130 + uni_number)
    if ds is None:
        raise RuntimeError(f"spglib found no symmetry for the family group of UNI {uni_number}")
    P = np.asarray(ds.transformation_matrix, dtype=float)
    p = np.asarray(ds.origin_shift, dtype=float)
    return MagneticRecord(
        uni_number=int(uni_number),
        litvin_number=int(info.litvin_number),
        bns_number=str(info.bns_number),
        og_number=str(info.og_number),
        number=int(info.number),
        type=int(info.type),
        rotations=rot,
        translations=tra,
        time_reversals=tr,
        family_hall_number=int(ds.hall_number),
        family_number=int(ds.number),
        transformation=_exact(P, f"UNI {uni_number}: transformation matrix"),
        origin_shift=_exact(p, f"UNI {uni_number}: origin shift") % DEN,
        even_hall_number=int(_HALL_SETS.get(_set_key(frot, ftra), 0)),  # type: ignore[union-attr]
    )


def solve_magnetic(rec: MagneticRecord, kmax: int, parity: str) -> OrbitSolution | None:
    """The exact basis of ``rec`` for a time-``parity`` ('even' or 'odd') scalar field.

    'even': the family group's basis.  'odd': primed operations carry an extra phase
    DEN // 2; None for type 2 (empty), the same as 'even' for type 1.
    """
    if parity == "even" or (parity == "odd" and rec.type == 1):
        frot, ftra = rec.family_operations
        return solve_orbits(frot, ftra, kmax)
    if parity != "odd":
        raise ValueError(f"parity must be 'even' or 'odd', got {parity!r}")
    if rec.type == 2:
        return None
    gens = magnetic_generators(rec.rotations, rec.translations, rec.time_reversals)
    return solve_orbits(
        rec.rotations, rec.translations, kmax, phase_offsets=(DEN // 2) * rec.time_reversals, generators=gens
    )
