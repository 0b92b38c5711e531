"""The lookup tables of one artifact, apart from the file they were read from.

Three kinds of key, each with a ``get_*`` that raises ``SettingNotFoundError`` when
nothing matches and a ``find_*`` that returns None instead (bad input, a wrong type or
both of two exclusive keywords, raises in both):

* ``SettingIndex``: the 530 space-group settings (``/index``), by hall_number, by
  space-group number (spglib's default setting) or by symbol (``_symbol_resolver``);
* ``PlaneIndex``: the 17 plane groups (``/index_plane``), by number or symbol;
* ``MagneticIndex``: the 1,651 magnetic space-group types (``/magnetic/index``), by UNI,
  BNS or OG number.

Each is built from tables already read (``_h5read``) and validated here against the
promises of docs/FORMAT.md; nothing in this module opens a file.  ``_database.Database``
holds one of each and is the public face.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ._basis import PlaneGroup, Setting
from ._constants import MAX_ORDER, N_MAGNETIC_TYPES, N_PLANE_GROUPS, N_SETTINGS, N_SPACE_GROUPS
from ._errors import ArtifactError, SettingNotFoundError
from ._format import (
    INDEX_INTEGERS,
    INDEX_STRINGS,
    MAGNETIC,
    MAGNETIC_BASIS_INDEX_INTEGERS,
    MAGNETIC_INDEX_INTEGERS,
    MAGNETIC_INDEX_STRINGS,
    PLANE_INDEX,
    PLANE_INDEX_INTEGERS,
    PLANE_INDEX_STRINGS,
)
from ._magnetic import MagneticGroup, resolve_magnetic_key
from ._symbol_resolver import SymbolResolver
from ._validate import check_index

__all__ = [
    "EMPTY_MAGNETIC",
    "MAX_MAGNETIC_ORDER",
    "MagneticIndex",
    "PlaneIndex",
    "SettingIndex",
    "hall_keyword",
]

#: a magnetic group has at most twice the operations of its family space group's point group
#: times the index of the BNS lattice in the family lattice (type IV): 2 * MAX_ORDER in spglib's table
MAX_MAGNETIC_ORDER = 2 * MAX_ORDER


def hall_keyword(hall, hall_number):
    """``hall=`` or its spglib spelling ``hall_number=``; not both."""
    if hall is not None and hall_number is not None:
        raise TypeError("give hall= or hall_number= (the same key, spglib's name), not both")
    return hall if hall is not None else hall_number


def _decode(row) -> list[str]:
    return [v.decode("ascii", "replace") for v in row]


# ------------------------------------------------------------------------------ space groups
class SettingIndex:
    """The settings of one artifact (``/index``): Setting objects made on demand, symbol
    resolver built on the first symbol lookup.  ``source`` names the artifact in messages."""

    def __init__(self, source, ints: np.ndarray, strs: np.ndarray, kmax: int):
        if len(strs) != len(ints):
            raise ArtifactError(f"{source}: /index tables have different numbers of rows")
        halls = ints[:, 0]
        if np.any(np.diff(halls) <= 0):
            raise ArtifactError(f"{source}: /index hall_number column is not strictly increasing")
        check_index(source, "/index/integers", ints, INDEX_INTEGERS, kmax)
        self.source = source
        self.ints, self.strs = ints, strs
        self.row = {int(h): i for i, h in enumerate(halls.tolist())}
        self._settings: dict[int, Setting] = {}
        self._lock = threading.Lock()
        self._resolver: SymbolResolver | None = None

    def __len__(self) -> int:
        return len(self.ints)

    def setting_at(self, row: int) -> Setting:
        s = self._settings.get(row)
        if s is None:
            ints = dict(zip(INDEX_INTEGERS, self.ints[row].tolist()))
            strs = dict(zip(INDEX_STRINGS, _decode(self.strs[row].tolist())))
            ints["is_default"] = bool(ints["is_default"])
            fields = {**ints, **strs}
            s = Setting(**{name: fields[name] for name in Setting.__dataclass_fields__})
            self._settings[row] = s
        return s

    def settings(self) -> list[Setting]:
        """All settings, ascending hall_number."""
        return [self.setting_at(i) for i in range(len(self.ints))]

    def sha256(self, hall_number: int) -> str:
        """The recorded SHA-256 of a setting's payload."""
        return self.strs[self.row[hall_number], INDEX_STRINGS.index("sha256")].decode("ascii", "replace")

    def n_orbits(self, hall_number: int) -> int:
        return int(self.ints[self.row[hall_number], INDEX_INTEGERS.index("n_orbits")])

    def symbols(self) -> SymbolResolver:
        """The symbol resolver over these settings (built on the first symbol lookup)."""
        with self._lock:
            if self._resolver is None:
                self._resolver = SymbolResolver(self.settings())
            return self._resolver

    def find_setting(
        self, group=None, *, hall: int | None = None, hall_number: int | None = None
    ) -> Setting | None:
        """Like ``get_setting`` but None when nothing matches (bad input still raises)."""
        try:
            return self.get_setting(group, hall=hall, hall_number=hall_number)
        except SettingNotFoundError:
            return None

    def get_setting(self, group=None, *, hall: int | None = None, hall_number: int | None = None) -> Setting:
        """A space-group number, a symbol or ``hall=`` (``hall_number=``) to a Setting (see ``Database.get_setting``)."""
        hall = hall_keyword(hall, hall_number)
        if hall is not None:
            if group is not None:
                raise ValueError("give either a group (number or symbol) or hall=, not both")
            return self._by_hall_number(hall)
        if group is None:
            raise TypeError("a space-group number, symbol or hall= is required")
        if isinstance(group, (bool, np.bool_)):
            raise TypeError(f"space group must be a number or a symbol, got {group!r}")
        if isinstance(group, (int, np.integer)):
            return self._by_number(int(group))
        if isinstance(group, (float, np.floating)):
            raise TypeError(f"space-group number must be an integer, got {group!r}")
        if not isinstance(group, str):
            raise TypeError(f"space group must be a number or a symbol, got {type(group).__name__}")
        text = group.strip()
        if not text:
            raise ValueError("empty space-group symbol")
        if text.lstrip("+-").isdigit():
            return self._by_number(int(text))
        return self.setting_at(self.row[self.symbols().resolve(text)])

    def _by_hall_number(self, hall) -> Setting:
        if isinstance(hall, (bool, np.bool_)) or not isinstance(hall, (int, np.integer)):
            raise TypeError(f"hall_number must be an integer, got {hall!r}")
        if int(hall) not in self.row:
            if 1 <= int(hall) <= N_SETTINGS:
                raise SettingNotFoundError(
                    f"hall_number {int(hall)} is not in {self.source}; rebuild it with that setting"
                )
            raise SettingNotFoundError(f"hall_number must be in 1..{N_SETTINGS}, got {int(hall)}")
        return self.setting_at(self.row[int(hall)])

    def _by_number(self, number: int) -> Setting:
        if not 1 <= number <= N_SPACE_GROUPS:
            raise SettingNotFoundError(f"space-group number must be in 1..{N_SPACE_GROUPS}, got {number}")
        matches = [self.setting_at(int(i)) for i in np.flatnonzero(self.ints[:, 1] == number)]
        if not matches:
            raise SettingNotFoundError(f"space group {number} is not in {self.source}")
        for s in matches:
            if s.is_default:
                return s
        return matches[0]


# ------------------------------------------------------------------------------ plane groups
class PlaneIndex:
    """The plane groups of one artifact (``/index_plane``; ``empty`` if the file has none)."""

    def __init__(self, source, ints: np.ndarray, strs: np.ndarray, kmax: int, *, validate: bool = True):
        numbers = ints[:, 0].tolist()
        if validate:
            check_index(source, f"/{PLANE_INDEX}/integers", ints, PLANE_INDEX_INTEGERS, kmax, dim=2)
            if (
                len(strs) != len(ints)
                or numbers != sorted(set(numbers))
                or not set(numbers) <= set(range(1, N_PLANE_GROUPS + 1))
            ):
                raise ArtifactError(f"{source}: /{PLANE_INDEX} tables are inconsistent")
        self.source = source
        self.ints, self.strs = ints, strs
        self.row = {n: i for i, n in enumerate(numbers)}
        groups = []
        for r in range(len(ints)):
            fields = dict(zip(PLANE_INDEX_INTEGERS, ints[r].tolist()))
            fields.update(zip(PLANE_INDEX_STRINGS, _decode(strs[r].tolist())))
            groups.append(PlaneGroup(**{name: fields[name] for name in PlaneGroup.__dataclass_fields__}))
        self._groups = tuple(groups)

    @classmethod
    def empty(cls, source) -> PlaneIndex:
        """The index of a valid file without plane groups (FORMAT.md section 13)."""
        ints = np.zeros((0, len(PLANE_INDEX_INTEGERS)), np.int64)
        return cls(source, ints, np.zeros((0, len(PLANE_INDEX_STRINGS)), "S1"), 1, validate=False)

    def __len__(self) -> int:
        return len(self._groups)

    def plane_groups(self) -> list[PlaneGroup]:
        """The plane groups, ascending number."""
        return list(self._groups)

    def sha256(self, number: int) -> str:
        """The recorded SHA-256 of a plane group's payload."""
        return self.strs[self.row[number], PLANE_INDEX_STRINGS.index("sha256")].decode("ascii", "replace")

    def find_plane_group(self, plane) -> PlaneGroup | None:
        """Like ``get_plane_group`` but None when nothing matches (bad input still raises)."""
        try:
            return self.get_plane_group(plane)
        except SettingNotFoundError:
            return None

    def get_plane_group(self, plane) -> PlaneGroup:
        """A plane group by number 1..17 (int or text) or symbol, full ('p2mg', 'c2mm', 'p4gm') or
        short ('pmg', 'cmm', 'p4g'), ignoring spaces, underscores and case."""
        if isinstance(plane, (bool, np.bool_)) or not isinstance(plane, (int, np.integer, str)):
            raise TypeError(f"plane group must be a number 1..17 or a symbol like 'p4gm', got {plane!r}")
        if not self._groups:
            raise SettingNotFoundError(f"{self.source} has no plane groups; rebuild it with `basisdb build`")
        text = str(plane).strip()
        if text.lstrip("+-").isdigit():
            number = int(text)
            if not 1 <= number <= N_PLANE_GROUPS:
                raise SettingNotFoundError(f"plane-group number must be in 1..{N_PLANE_GROUPS}, got {number}")
            found = [g for g in self._groups if g.number == number]
        else:
            key = "".join(text.split()).replace("_", "").lower()
            found = [g for g in self._groups if key in (g.hm_full.lower(), g.hm_short.lower())]
        if not found:
            raise SettingNotFoundError(
                f"unknown plane group {plane!r} (use 1..17 or a symbol like 'p4gm'; see `basisdb list --plane`)"
            )
        return found[0]


# --------------------------------------------------------------------------- magnetic groups
@dataclass(frozen=True)
class MagneticIndex:
    """The magnetic space-group types of one artifact (``/magnetic/index``, FORMAT.md section 15)."""

    groups: dict  # uni -> MagneticGroup, ascending
    rows: dict  # uni -> dict of the integer columns
    sha: dict  # uni -> sha256 of the operations
    bases: dict  # basis id -> dict(n_orbits, n_frequencies, n_extinct, sha256)

    def find_magnetic_group(self, key) -> MagneticGroup | None:
        """Like ``get_magnetic_group`` but None when nothing matches (bad input still raises)."""
        try:
            return self.get_magnetic_group(key)
        except SettingNotFoundError:
            return None

    def get_magnetic_group(self, key) -> MagneticGroup:
        """A UNI number 1..1651 (int or text), a BNS number ('136.499') or an OG number ('136.4.1155')."""
        return resolve_magnetic_key(key, self.groups)

    @classmethod
    def from_tables(
        cls, source, ints, strs, bints, bstrs, *, settings: SettingIndex, kmax: int, denominator: int
    ) -> MagneticIndex:
        """The index of the four /magnetic tables, every value checked against the format's promises."""
        nbox = (2 * kmax + 1) ** 3

        def fail(rule: str):
            raise ArtifactError(f"{source}: /{MAGNETIC} index has impossible values: {rule}")

        if len(strs) != len(ints) or len(bstrs) != len(bints):
            fail("the integer and string tables have different numbers of rows")
        bases = {}
        for r, row in enumerate(bints.tolist()):
            b = dict(zip(MAGNETIC_BASIS_INDEX_INTEGERS, row))
            if b["basis"] != r:
                fail("basis ids are not 0, 1, 2, ... in row order")
            if not (
                b["n_frequencies"] >= 0
                and b["n_extinct"] >= 0
                and b["n_frequencies"] + b["n_extinct"] <= nbox
            ):
                fail(f"basis {r} has sizes outside the box at kmax={kmax}")
            if not 0 <= b["n_orbits"] <= b["n_frequencies"] or (b["n_orbits"] == 0) != (
                b["n_frequencies"] == 0
            ):
                fail(f"basis {r} has {b['n_orbits']} orbits over {b['n_frequencies']} frequencies")
            b["sha256"] = bstrs[r, 0].decode("ascii", "replace")
            bases[r] = b
        groups, rows, sha = {}, {}, {}
        previous = 0
        for r, values in enumerate(ints.tolist()):
            c = dict(zip(MAGNETIC_INDEX_INTEGERS, values))
            uni = c["uni_number"]
            if not previous < uni <= N_MAGNETIC_TYPES:
                fail("uni_number is not strictly increasing within 1..1651")
            previous = uni
            problems = []
            if c["type"] not in (1, 2, 3, 4):
                problems.append("type not in 1..4")
            if not 1 <= c["order"] <= MAX_MAGNETIC_ORDER:
                problems.append(f"order outside 1..{MAX_MAGNETIC_ORDER}")
            if not (
                1 <= c["family_hall_number"] <= N_SETTINGS
                and 1 <= c["family_number"] <= N_SPACE_GROUPS
                and 1 <= c["number"] <= N_SPACE_GROUPS
            ):
                problems.append("family_hall_number, family_number or number out of range")
            if (c["even_hall_number"] > 0) == (c["even_basis"] >= 0):
                problems.append(
                    "exactly one of even_hall_number and even_basis must name the time-even basis"
                )
            if c["even_hall_number"] > 0 and c["even_hall_number"] not in settings.row:
                problems.append(f"even_hall_number {c['even_hall_number']} is not a setting of the file")
            if c["even_basis"] >= 0 and c["even_basis"] not in bases:
                problems.append(f"even_basis {c['even_basis']} is not a stored basis")
            if (c["odd_basis"] >= 0) != (c["type"] in (3, 4)) or (
                c["odd_basis"] >= 0 and c["odd_basis"] not in bases
            ):
                problems.append(
                    "odd_basis must name a stored basis for types 3 and 4 and be -1 for types 1 and 2"
                )
            if not all(0 <= c[f"p{i}"] < denominator for i in range(3)):
                problems.append("origin shift numerator outside 0..denominator-1")
            if problems:
                fail(f"UNI {uni}: " + "; ".join(problems))
            s = dict(zip(MAGNETIC_INDEX_STRINGS, _decode(strs[r].tolist())))
            if c["even_hall_number"] > 0:
                n_even = settings.n_orbits(c["even_hall_number"])
            else:
                n_even = bases[c["even_basis"]]["n_orbits"]
            n_odd = (
                bases[c["odd_basis"]]["n_orbits"]
                if c["odd_basis"] >= 0
                else (n_even if c["type"] == 1 else 0)
            )
            groups[uni] = MagneticGroup(
                uni_number=uni,
                litvin_number=c["litvin_number"],
                bns_number=s["bns_number"],
                og_number=s["og_number"],
                type=c["type"],
                number=c["number"],
                order=c["order"],
                family_hall_number=c["family_hall_number"],
                family_number=c["family_number"],
                transformation=tuple(tuple(c[f"P{i}{j}"] for j in range(3)) for i in range(3)),
                origin_shift=tuple(c[f"p{i}"] for i in range(3)),
                even_hall_number=c["even_hall_number"],
                n_even=n_even,
                n_odd=n_odd,
                denominator=denominator,
            )
            rows[uni], sha[uni] = c, s["sha256"]
        return cls(groups, rows, sha, bases)


#: the index of a file without magnetic groups (format version 1, or builds of fewer than 530 settings)
EMPTY_MAGNETIC = MagneticIndex({}, {}, {}, {})
