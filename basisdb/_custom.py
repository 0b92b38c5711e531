"""Bases for user-supplied operation sets (e.g. the symmetry operations of a CIF)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ._basis import Basis, Setting
from ._constants import DEN, MAX_KMAX
from ._ops import as_exact_operations, check_group, parse_triplets

__all__ = ["basis_from_operations"]


def _builder():
    try:
        from basisdb.builder import check_build_request
        from basisdb.builder.orbits import solve_orbits
    except ImportError as exc:  # the builder's message names `pip install 'basisdb[build]'`
        raise ImportError(f"basis_from_operations needs the builder: {exc}") from None
    return check_build_request, solve_orbits


def basis_from_operations(
    operations: Iterable[str] | str | tuple[Sequence, Sequence],
    kmax: int = 8,
    name: str = "custom",
) -> Basis:
    """Build the exact basis of an arbitrary space group given by its operations.

    operations: CIF-style triplets (``["x,y,z", "-x,-y,-z", ...]`` or one string
    separated by ``;``/newlines) or a ``(rotations (n,3,3), translations (n,3))``
    pair with fractional translations.  The set must be a group modulo lattice
    translations (identity, closure, inverses; translations mod 1), else
    NotAGroupError says which condition fails.  The result has
    ``setting.hall_number == 0``.  Needs the builder's ``build`` extra (spglib, networkx):
    ImportError naming ``pip install 'basisdb[build]'`` without it.
    """
    if isinstance(operations, tuple) and len(operations) == 2 and not isinstance(operations[0], str):
        rot, translations = as_exact_operations(*operations)
    else:
        rot, translations = parse_triplets(operations)
    if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)) or not 1 <= kmax <= MAX_KMAX:
        raise ValueError(f"kmax must be an integer in 1..{MAX_KMAX}, got {kmax!r}")
    check_request, solve_orbits = _builder()
    check_request(int(kmax), 1)  # refuses up front what would not fit in memory
    check_group(rot, translations)
    sol = solve_orbits(rot, translations, int(kmax))
    setting = Setting(
        hall_number=0,
        number=0,
        hall_symbol="",
        hm_short=name,
        hm_full=name,
        hm_extended=name,
        choice="",
        crystal_system="",
        point_group="",
        order=len(rot),
        n_orbits=len(sol.orbit_ptr) - 1,
        n_frequencies=len(sol.frequencies),
        n_extinct=len(sol.extinct),
        is_default=False,
    )
    return Basis(
        setting=setting,
        kmax=int(kmax),
        denominator=DEN,
        frequencies=sol.frequencies,
        orbit_ptr=sol.orbit_ptr,
        phases=sol.phases,
        extinct=sol.extinct,
        rotations=rot,
        translations=translations,
    )
