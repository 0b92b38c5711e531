"""The numbers fixed by crystallography and by the artifact format, each defined once.

Imported by the reader (``basisdb``) and by the builder (``basisdb.builder``); the
format's numbers (``DEN``, ``MAX_KMAX``) reach the builder through ``_format``, the one
module that states the contract between the two (docs/FORMAT.md).  Like gemmi's
``Op::DEN``, each number lives here and nowhere else.

Names: an operation is ``(R, t)`` with ``t = translations / DEN``; arrays of the
integer numerators are called ``translations`` everywhere (as the dataset of the
format and ``Basis.translations``), fractional values are "fractional translations".
"""

from __future__ import annotations

__all__ = [
    "DEN",
    "MAX_ORDER",
    "MAX_KMAX",
    "N_SETTINGS",
    "N_SPACE_GROUPS",
    "N_PLANE_GROUPS",
    "N_MAGNETIC_TYPES",
]

#: common denominator of every translation and phase numerator (the artifact's ``denominator``
#: attribute): every spglib setting needs at most 12, and every translation of the settings'
#: Euclidean normalisers is a multiple of 1/8 or 1/6 (ITA Table 3.5.2), so 24 serves both
DEN = 24

#: most operations modulo lattice translations of a 3-D space group (F m -3 m);
#: plane groups have at most 12
MAX_ORDER = 192

#: largest cut-off K: frequencies are stored as int8 (docs/FORMAT.md)
MAX_KMAX = 127

#: spglib's Hall settings, hall_number 1..N_SETTINGS
N_SETTINGS = 530

#: space-group types, number 1..N_SPACE_GROUPS
N_SPACE_GROUPS = 230

#: plane (wallpaper) groups, number 1..N_PLANE_GROUPS
N_PLANE_GROUPS = 17

#: magnetic space-group types (spglib's UNI numbers 1..N_MAGNETIC_TYPES, BNS setting)
N_MAGNETIC_TYPES = 1651
