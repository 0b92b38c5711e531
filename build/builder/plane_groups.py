"""The 17 plane (wallpaper) groups as data, and their exact bases.

Source: International Tables for Crystallography, Vol. A (ITA), Part 6 "The
17 plane groups (two-dimensional space groups)" (6th ed., 2016; the same
tables are in Part 6 of the 1983-2005 editions).  For each group the list
below is ITA's "Coordinates" block of the general position, written with the
2-D coordinates x, y, in ITA's order, in ITA's standard (and only tabulated)
description: origin as ITA chooses it, axes as ITA draws them, and the two
centred groups cm (c1m1) and cmm (c2mm) in their conventional c-centred
rectangular cells with the centring translation (1/2, 1/2) listed separately,
as ITA does ("(0,0)+ (1/2,1/2)+").  Hexagonal groups use ITA's hexagonal axes
(a = b, gamma = 120 degrees).  Symbols: ITA's full symbol (``hm_full``, e.g.
``p2mg``) and short symbol (``hm_short``, e.g. ``pmg``).

The operations were typed from ITA, not derived from spglib; the tests check
them independently against the spglib space group whose operations, restricted
to the plane, reproduce each plane group (tests/lookup/test_plane_groups.py).

Solving: a plane group is embedded in 3-D, (R, t) -> (diag(R, 1), (t, 0)), and
solved with the space-group solver ``solve_orbits``.  The embedded group maps
(h, k, l) to (R^T (h, k), l), so each orbit has a single l, and the orbits with
l = 0, with their phases and extinctions, are exactly the plane group's
2-D solution; the 3-D canonical order restricted to l = 0 is the 2-D canonical
order, so no re-sorting is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from basisdb._constants import N_PLANE_GROUPS
from basisdb._format import DEN
from basisdb._ops import check_group, parse_triplet

from .orbits import OrbitSolution, solve_orbits

__all__ = [
    "N_PLANE_GROUPS",
    "PLANE_GROUP_DATA",
    "PlaneGroupRecord",
    "embed",
    "plane_group_record",
    "solve_plane_group",
]


#: number -> (hm_short, hm_full, lattice, point group, general position (ITA order), centring translations)
PLANE_GROUP_DATA: dict[int, tuple[str, str, str, str, tuple[str, ...], tuple[str, ...]]] = {
    # oblique
    1: ("p1", "p1", "oblique", "1", ("x,y",), ()),
    2: ("p2", "p2", "oblique", "2", ("x,y", "-x,-y"), ()),
    # rectangular
    3: ("pm", "p1m1", "rectangular", "m", ("x,y", "-x,y"), ()),
    4: ("pg", "p1g1", "rectangular", "m", ("x,y", "-x,y+1/2"), ()),
    5: ("cm", "c1m1", "rectangular", "m", ("x,y", "-x,y"), ("x+1/2,y+1/2",)),
    6: ("pmm", "p2mm", "rectangular", "2mm", ("x,y", "-x,-y", "-x,y", "x,-y"), ()),
    7: ("pmg", "p2mg", "rectangular", "2mm", ("x,y", "-x,-y", "-x+1/2,y", "x+1/2,-y"), ()),
    8: ("pgg", "p2gg", "rectangular", "2mm", ("x,y", "-x,-y", "-x+1/2,y+1/2", "x+1/2,-y+1/2"), ()),
    9: ("cmm", "c2mm", "rectangular", "2mm", ("x,y", "-x,-y", "-x,y", "x,-y"), ("x+1/2,y+1/2",)),
    # square
    10: ("p4", "p4", "square", "4", ("x,y", "-x,-y", "-y,x", "y,-x"), ()),
    11: (
        "p4m",
        "p4mm",
        "square",
        "4mm",
        ("x,y", "-x,-y", "-y,x", "y,-x", "-x,y", "x,-y", "y,x", "-y,-x"),
        (),
    ),
    12: (
        "p4g",
        "p4gm",
        "square",
        "4mm",
        ("x,y", "-x,-y", "-y,x", "y,-x", "-x+1/2,y+1/2", "x+1/2,-y+1/2", "y+1/2,x+1/2", "-y+1/2,-x+1/2"),
        (),
    ),
    # hexagonal
    13: ("p3", "p3", "hexagonal", "3", ("x,y", "-y,x-y", "-x+y,-x"), ()),
    14: ("p3m1", "p3m1", "hexagonal", "3m", ("x,y", "-y,x-y", "-x+y,-x", "-y,-x", "-x+y,y", "x,x-y"), ()),
    15: ("p31m", "p31m", "hexagonal", "3m", ("x,y", "-y,x-y", "-x+y,-x", "y,x", "x-y,-y", "-x,-x+y"), ()),
    16: ("p6", "p6", "hexagonal", "6", ("x,y", "-y,x-y", "-x+y,-x", "-x,-y", "y,-x+y", "x-y,x"), ()),
    17: (
        "p6m",
        "p6mm",
        "hexagonal",
        "6mm",
        (
            "x,y",
            "-y,x-y",
            "-x+y,-x",
            "-x,-y",
            "y,-x+y",
            "x-y,x",
            "-y,-x",
            "-x+y,y",
            "x,x-y",
            "y,x",
            "x-y,-y",
            "-x,-x+y",
        ),
        (),
    ),
}


@dataclass(frozen=True)
class PlaneGroupRecord:
    """Metadata and exact 2-D operations of one plane group."""

    number: int
    hm_short: str
    hm_full: str
    lattice: str
    point_group: str
    rotations: np.ndarray  # (order, 2, 2) int64
    translations: np.ndarray  # (order, 2) int64 numerators over DEN


def _parse_2d(op: str) -> tuple[np.ndarray, np.ndarray]:
    rot, t = parse_triplet(op + ",z")  # the 3-D parser, with z -> z
    if np.any(rot[:2, 2]) or np.any(rot[2, :2]) or t[2]:
        raise ValueError(f"plane-group operation {op!r} must only involve x and y")
    return rot[:2, :2], t[:2]


@cache
def plane_group_record(number: int) -> PlaneGroupRecord:
    """Operations (general position times centring, checked to form a group) of plane group ``number``."""
    if number not in PLANE_GROUP_DATA:
        raise ValueError(f"plane-group number must be in 1..{N_PLANE_GROUPS}, got {number}")
    short, full, lattice, pg, coords, centring = PLANE_GROUP_DATA[number]
    ops = [_parse_2d(c) for c in coords]
    shifts = [np.zeros(2, dtype=np.int64)] + [_parse_2d(c)[1] for c in centring]
    rot = np.array([r for s in shifts for r, _ in ops], dtype=np.int64)
    translations = np.array([(t + s) % DEN for s in shifts for _, t in ops], dtype=np.int64)
    check_group(*embed(rot, translations))
    rot.setflags(write=False)
    translations.setflags(write=False)
    return PlaneGroupRecord(number, short, full, lattice, pg, rot, translations)


def embed(rotations: np.ndarray, translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2-D operations as 3-D ones: R -> diag(R, 1), t -> (t, 0)."""
    n = len(rotations)
    rot3 = np.zeros((n, 3, 3), dtype=np.int64)
    rot3[:, :2, :2] = rotations
    rot3[:, 2, 2] = 1
    t3 = np.zeros((n, 3), dtype=np.int64)
    t3[:, :2] = translations
    return rot3, t3


def solve_plane_group(rotations: np.ndarray, translations: np.ndarray, kmax: int) -> OrbitSolution:
    """The exact 2-D basis of a plane group ``(rotations (n,2,2), translations (n,2))`` at cut-off ``kmax``.

    Solved in 3-D by embedding (module docstring); the result keeps the orbits
    with l = 0 and drops the third column: frequencies (n, 2), extinct (m, 2).
    """
    sol = solve_orbits(*embed(rotations, translations), kmax)
    in_plane = sol.frequencies[:, 2] == 0
    sizes = np.diff(sol.orbit_ptr)
    orbit_in_plane = in_plane[sol.orbit_ptr[:-1]]
    if not np.array_equal(np.repeat(orbit_in_plane, sizes), in_plane):
        raise AssertionError("an orbit of an embedded plane group mixes values of l")
    ptr = np.zeros(int(orbit_in_plane.sum()) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum(sizes[orbit_in_plane])
    ext = sol.extinct[sol.extinct[:, 2] == 0]
    return OrbitSolution(
        kmax=kmax,
        frequencies=np.ascontiguousarray(sol.frequencies[in_plane, :2]),
        orbit_ptr=ptr,
        phases=np.ascontiguousarray(sol.phases[in_plane]),
        extinct=np.ascontiguousarray(ext[:, :2]).reshape(-1, 2),
    )
