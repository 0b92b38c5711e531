"""The 530 Hall settings from spglib: exact operations and metadata."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from basisdb._constants import N_SETTINGS
from basisdb._ops import as_exact_operations, check_group
from basisdb._symbols import crystal_system_of


def _spglib():
    import spglib

    # spglib 2.x warns about OLD_ERROR_HANDLING unless told which behaviour we want
    if hasattr(spglib, "error") and hasattr(spglib.error, "OLD_ERROR_HANDLING"):
        spglib.error.OLD_ERROR_HANDLING = False
    return spglib


def spglib_version() -> str:
    return str(_spglib().__version__)


@dataclass(frozen=True)
class SettingRecord:
    """Metadata and exact operations of one spglib Hall setting."""

    hall_number: int
    number: int
    hall_symbol: str
    hm_short: str
    hm_full: str
    hm_extended: str
    choice: str
    crystal_system: str
    point_group: str
    is_default: bool
    rotations: np.ndarray  # (order, 3, 3) int64
    translations: np.ndarray  # (order, 3) int64 numerators over DEN


def extended_symbol(international: str, choice: str) -> str:
    """Setting-specific H-M symbol, e.g. ``'P 1 2_1/c 1'``, ``'F d -3 m:2'``, ``'R -3 c:H'``.

    spglib's ``international`` is ``'P 2_1/c = P 1 2_1/n 1'`` for non-standard
    monoclinic settings; the first part after ``=`` names the setting.  An origin
    choice (1/2) or the rhombohedral axes (H/R) are appended after a colon.
    """
    parts = [p.strip() for p in international.split("=")]
    symbol = parts[1] if len(parts) > 1 else parts[0]
    if choice[:1] in ("1", "2", "H", "R"):
        symbol += ":" + choice[:1]
    return symbol


@lru_cache(maxsize=1)
def default_hall_numbers() -> dict[int, int]:
    """spglib's default (standardisation) hall_number for each of the 230 numbers.

    Determined from spglib itself: a generic crystal is built from the first
    setting of each number (an invariant metric and the orbit of a general
    point) and spglib's symmetry dataset reports the hall_number it uses.
    """
    spglib = _spglib()
    rng = np.random.default_rng(20261127)
    first: dict[int, int] = {}
    for hall in range(1, N_SETTINGS + 1):
        first.setdefault(spglib.get_spacegroup_type(hall).number, hall)
    out = {}
    for number, hall in first.items():
        sym = spglib.get_symmetry_from_database(hall)
        rots, trans = sym["rotations"], sym["translations"]
        metric = sum(r.T @ np.diag([1.0, 1.3, 1.7]) @ r for r in rots.astype(float))
        lattice = np.linalg.cholesky(metric)  # rows are lattice vectors: L @ L.T == metric
        positions, types = [], []
        for kind in (1, 2, 3):  # three general orbits: no accidental extra symmetry
            orbit = np.mod(rots @ rng.random(3) + trans, 1.0)
            keep = np.unique(np.round(orbit * 1e6).astype(np.int64) % 1000000, axis=0, return_index=True)[1]
            positions.append(orbit[np.sort(keep)])
            types += [kind] * len(keep)
        ds = spglib.get_symmetry_dataset((lattice, np.concatenate(positions), types), symprec=1e-5)
        if ds is None or ds.number != number:
            raise RuntimeError(f"could not determine spglib's default setting of space group {number}")
        out[number] = int(ds.hall_number)
    return out


def setting_record(hall_number: int) -> SettingRecord:
    """Exact operations (checked to form a group) and metadata of one setting."""
    spglib = _spglib()
    if not 1 <= hall_number <= N_SETTINGS:
        raise ValueError(f"hall_number must be in 1..{N_SETTINGS}, got {hall_number}")
    info = spglib.get_spacegroup_type(hall_number)
    sym = spglib.get_symmetry_from_database(hall_number)
    rot, translations = as_exact_operations(sym["rotations"], sym["translations"])
    check_group(rot, translations)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SettingRecord(
            hall_number=hall_number,
            number=int(info.number),
            hall_symbol=str(info.hall_symbol),
            hm_short=str(info.international_short),
            hm_full=str(info.international_full),
            hm_extended=extended_symbol(str(info.international), str(info.choice)),
            choice=str(info.choice),
            crystal_system=crystal_system_of(int(info.number)),
            point_group=str(info.pointgroup_international),
            is_default=default_hall_numbers()[int(info.number)] == hall_number,
            rotations=rot,
            translations=translations,
        )
