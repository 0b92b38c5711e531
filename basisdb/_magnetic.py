"""Magnetic space groups: metadata of the 1,651 types and their time-even / time-odd bases.

A magnetic operation is (R, t, theta), theta = 1 when it reverses time.  A *time-odd* scalar
field (e.g. the spin density of a collinear magnet) obeys f(R x + t) = (-1)**theta f(x); a
*time-even* one (the charge density) ignores theta.  docs/CONVENTIONS.md section 14 and
docs/FORMAT.md section 15 give the conventions; the builder is ``basisdb.builder.magnetic``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ._basis import Basis, Setting, _readonly
from ._boxindex import canonical_sort
from ._constants import N_MAGNETIC_TYPES
from ._errors import SettingNotFoundError

__all__ = ["MagneticGroup", "MagneticBasis", "resolve_magnetic_key"]

#: spglib's magnetic space-group types: 1 colourless, 2 grey (contains 1'), 3 black-white with
#: the ordinary lattice, 4 black-white with anti-translations
TYPE_NAMES = {
    1: "type I (no time reversal)",
    2: "type II (grey, contains 1')",
    3: "type III (black-white)",
    4: "type IV (anti-translations)",
}


@dataclass(frozen=True)
class MagneticGroup:
    """Metadata of one magnetic space-group type (one row of ``Database.magnetic_groups()``).

    Fields:
        uni_number: 1..1651, spglib's UNI number (the key; ``db.get(magnetic=uni_number)``).
        litvin_number, bns_number, og_number: spglib's numbers (BNS '136.499', OG '136.4.1155').
        type: 1 (no primed operation), 2 (grey: contains 1'), 3 (black-white), 4 (anti-translations).
        number: spglib's ``number`` of the type (ITA number of its reference setting).
        order: number of magnetic operations (R, t, theta) modulo the BNS lattice.
        family_hall_number, family_number: the family space group F = {(R, t)} (time reversal
          ignored), as spglib's symmetry dataset of an F-invariant crystal reports it.
        transformation: (3, 3) exact numerators over ``denominator`` of P, and origin_shift (3,)
          those of p, with x_std = P x + p taking BNS-setting coordinates to F's standard setting
          (spglib's ``transformation_matrix`` and ``origin_shift``); ``transformation_matrix`` and
          ``origin_shift_fractional`` give them as floats.
        even_hall_number: the hall_number whose basis is this type's time-even basis (its
          operation set is exactly F's), or 0 when F is not one of the 530 settings (most type IV).
        n_even, n_odd: number of time-even / time-odd basis functions at the artifact's kmax.
    """

    uni_number: int
    litvin_number: int
    bns_number: str
    og_number: str
    type: int
    number: int
    order: int
    family_hall_number: int
    family_number: int
    transformation: tuple
    origin_shift: tuple
    even_hall_number: int
    n_even: int
    n_odd: int
    denominator: int = 24

    @property
    def transformation_matrix(self) -> np.ndarray:
        """P as a (3, 3) float array (x_std = P x + p)."""
        return np.array(self.transformation, dtype=float) / self.denominator

    @property
    def origin_shift_fractional(self) -> np.ndarray:
        """p as a (3,) float array."""
        return np.array(self.origin_shift, dtype=float) / self.denominator

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type}")


def _view_setting(
    group: MagneticGroup, parity: str, n_orbits: int, n_frequencies: int, n_extinct: int
) -> Setting:
    from ._symbols import crystal_system_of

    name = f"BNS {group.bns_number}"
    return Setting(
        hall_number=0,
        number=group.family_number,
        hall_symbol="",
        hm_short=name,
        hm_full=f"{name} (UNI {group.uni_number}, OG {group.og_number})",
        hm_extended=f"{name} time-{parity}",
        choice="",
        crystal_system=crystal_system_of(group.family_number),
        point_group="",
        order=group.order,
        n_orbits=n_orbits,
        n_frequencies=n_frequencies,
        n_extinct=n_extinct,
        is_default=False,
    )


def make_view(
    group: MagneticGroup, parity: str, kmax: int, denominator: int, arrays: dict, rotations, translations
) -> Basis:
    """A ``Basis`` (hall_number 0) over the type's operations from the four basis arrays."""
    setting = _view_setting(
        group, parity, len(arrays["orbit_ptr"]) - 1, len(arrays["frequencies"]), len(arrays["extinct"])
    )
    return Basis(
        setting=setting,
        kmax=kmax,
        denominator=denominator,
        frequencies=arrays["frequencies"],
        orbit_ptr=arrays["orbit_ptr"],
        phases=arrays["phases"],
        extinct=arrays["extinct"],
        rotations=rotations,
        translations=translations,
    )


def derived_odd(group: MagneticGroup, even: Basis) -> Basis:
    """The time-odd basis of types 1 and 2, which the file does not store (FORMAT.md section 15):
    type 1 equals the time-even basis; type 2 is empty (every frequency extinct)."""
    if group.type == 1:
        arrays = {
            "frequencies": even.frequencies,
            "orbit_ptr": even.orbit_ptr,
            "phases": even.phases,
            "extinct": even.extinct,
        }
    elif group.type == 2:
        closed = np.concatenate([even.frequencies, even.extinct]).reshape(-1, even.dim)
        arrays = {
            "frequencies": np.zeros((0, even.dim), dtype=np.int64),
            "orbit_ptr": np.zeros(1, dtype=np.int64),
            "phases": np.zeros(0, dtype=np.int64),
            "extinct": closed[canonical_sort(closed)],
        }
    else:
        raise ValueError(f"the time-odd basis of a type-{group.type} group is stored, not derived")
    return make_view(group, "odd", even.kmax, even.denominator, arrays, even.rotations, even.translations)


@dataclass(frozen=True, eq=False)
class MagneticBasis:
    """The exact bases of one magnetic space-group type in its BNS setting.

    Fields:
        group: MagneticGroup metadata (``type``, numbers, family group, transformation).
        time_even: Basis of fields that ignore time reversal (charge density): the family group's.
        time_odd:  Basis of fields that change sign under primed operations (collinear spin density):
          phi(R x + t) = (-1)**theta phi(x).  Empty for type 2; equal to ``time_even`` for type 1.
        rotations, translations, time_reversals: the magnetic operations (R, t, theta) in spglib's order:
          (order, 3, 3), (order, 3) numerators over ``denominator``, (order,) 0/1.

    Both views are ordinary ``Basis`` objects (``hall_number`` 0) whose ``rotations`` /
    ``translations`` are the magnetic operations without theta (duplicated (R, t) pairs for
    type 2): ``time_odd.evaluate`` at R x + t gives (-1)**theta times its value at x.
    """

    group: MagneticGroup
    time_even: Basis
    time_odd: Basis
    time_reversals: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "time_reversals", _readonly(np.asarray(self.time_reversals, dtype=np.int64)))

    def __repr__(self) -> str:
        g = self.group
        return (
            f"MagneticBasis(uni_number={g.uni_number}, bns={g.bns_number!r}, og={g.og_number!r}, type={g.type}, "
            f"kmax={self.kmax}, n_even={self.time_even.n_basis}, n_odd={self.time_odd.n_basis})"
        )

    # metadata shortcuts
    @property
    def type(self) -> int:
        return self.group.type

    @property
    def uni_number(self) -> int:
        return self.group.uni_number

    @property
    def bns_number(self) -> str:
        return self.group.bns_number

    @property
    def og_number(self) -> str:
        return self.group.og_number

    @property
    def family_hall_number(self) -> int:
        return self.group.family_hall_number

    @property
    def family_number(self) -> int:
        return self.group.family_number

    @property
    def kmax(self) -> int:
        return self.time_even.kmax

    @property
    def rotations(self) -> np.ndarray:
        return self.time_even.rotations

    @property
    def translations(self) -> np.ndarray:
        return self.time_even.translations

    def operations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rotations (order,3,3) int, fractional translations (order,3) float, time_reversals (order,) int)."""
        rot, trans = self.time_even.operations()
        return rot, trans, np.array(self.time_reversals)

    def restrict(self, kmax: int) -> MagneticBasis:
        """Both bases at a smaller cut-off (FORMAT.md section 7)."""
        if kmax == self.kmax:
            return self
        return replace(self, time_even=self.time_even.restrict(kmax), time_odd=self.time_odd.restrict(kmax))


def resolve_magnetic_key(key, groups: dict[int, MagneticGroup]) -> MagneticGroup:
    """A UNI number (int or digits), a BNS number ('136.499') or an OG number ('136.4.1155')."""
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer, str)):
        raise TypeError(
            f"magnetic group must be a UNI number (int), a BNS number ('136.499') or an OG number ('136.4.1155'), got {key!r}"
        )
    if not groups:
        raise SettingNotFoundError(
            "this artifact has no magnetic groups (format version 1?); rebuild it with `basisdb build`"
        )
    text = str(key).strip()
    if text.upper().startswith("UNI"):
        text = text[3:].strip()
    if text.lstrip("+-").isdigit():
        uni = int(text)
        if not 1 <= uni <= N_MAGNETIC_TYPES:
            raise SettingNotFoundError(f"UNI number must be in 1..{N_MAGNETIC_TYPES}, got {uni}")
        if uni not in groups:
            raise SettingNotFoundError(f"UNI number {uni} is not in this artifact")
        return groups[uni]
    for prefix in ("BNS", "OG"):
        if text.upper().startswith(prefix):
            text = text[len(prefix) :].strip()
    parts = text.split(".")
    if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
        norm = ".".join(str(int(p)) for p in parts)
        field = "bns_number" if len(parts) == 2 else "og_number"
        for g in groups.values():
            if getattr(g, field) == norm:
                return g
        kind = "BNS" if len(parts) == 2 else "OG"
        raise SettingNotFoundError(
            f"no magnetic space group has {kind} number {norm!r} (see `basisdb list --magnetic`)"
        )
    raise SettingNotFoundError(
        f"unknown magnetic group {key!r}: use a UNI number 1..{N_MAGNETIC_TYPES}, a BNS number like '136.499' "
        "or an OG number like '136.4.1155'"
    )
