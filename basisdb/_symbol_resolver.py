"""Space-group symbol lookup: every spelling of a setting's name -> its hall_number.

One resolver, built from the artifact's own index strings (spglib's Hall symbol,
short, full and extended Hermann-Mauguin symbols and setting choice); it imports
nothing beyond the standard library.  The spellings it reads, and where they come
from:

* H-M symbols, short, full or extended (International Tables for Crystallography
  Vol. A (ITA), 2016, Tables 4.3.2.1 and 1.5.4.4), in any case and spacing, with
  ``_`` or TeX subscripts (``P4_{1}32``, ``P6_3/mmc``), ``2(1)`` screws, ``\\bar{3}``,
  and a setting suffix ``:1 :2 :H :R``, the same letter after a space or glued
  (``R -3 m H``, ``R3R``, as gemmi reads them) or cctbx's ``S``/``Z`` (origin choice
  1/2: ``Fd-3m:S``, ``Fd3m Z``).  The lattice letter ``H`` means R in hexagonal axes
  (gemmi, cctbx).
* Pre-2002 names of the five groups with an e-glide (No. 39, 41, 64, 67, 68: Abm2,
  Aba2, Cmca, Cmma, Ccca, ITA 2016 section 1.5.4 and Table 4.3.2.1), derived for
  every setting by carrying the standard setting's glide letter through the setting's
  axis permutation ('ba-c', 'cab', ...).  They are gemmi's primary names.
* Short monoclinic symbols (``P21/n``, ``I2/a``, ``Pn``, ``A2``), which mean unique
  axis b and the cell choice the glide or centring implies (ITA Table 4.3.2.1; gemmi,
  cctbx); ``B`` with unique axis c (``B2``, ``Bb``), as gemmi reads the PDB's symbols.
* Cubic symbols of classes m-3 and m-3m without the bar (``Pm3m``, ``Fd3m``; IT 1952),
  gemmi's ``A b a m`` (= hall 307) and 'number' or 'number:choice' (``227:2``, ``15:b1``).
* Two older conventions cctbx reads: the bar written after the digit (``P4-2c`` for
  P -4 2 c, ``Pm3-m``), tried when the symbol does not read otherwise, and Schoenflies
  symbols (``C2h^5``, ``C2h-5``, ``O_h^7``; ITA Table 3.3.3.1), numbered within each
  point group in space-group-number order.
* Hall symbols (Hall 1981; ITB ch. 1.4), matched token by token (whitespace between
  tokens is free, case is ignored) and never with their spaces deleted; a ``Hall:``
  prefix (cctbx's) reads the rest as a Hall symbol only.

A string that reads in two of these conventions with different operations is refused
as ambiguous, listing the candidates, unless gemmi's ``find_spacegroup_by_name`` and
cctbx's ``space_group_info`` both take one reading: ``I 2`` is the Hall symbol of
I 1 1 2 but both read it as the H-M symbol I 1 2 1, which wins (the table
``HALL_READ_AS_HM``, checked against both by the tests); ``C 2 -2`` is the Hall symbol
of C m m 2 and, to cctbx, the Schoenflies symbol C2^2 (P 1 2_1 1): refused.  A symbol without a setting suffix that names several settings of one
group (``Fd-3m``, ``R3``, ``Cmme``) means spglib's default setting (origin choice 1,
hexagonal axes; gemmi's choice), else the first in hall_number order.
See docs/CONVENTIONS.md, "Symbol lookup".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Protocol

from ._errors import SettingNotFoundError

__all__ = ["SymbolResolver", "HALL_READ_AS_HM", "hall_key", "hm_key"]

#: Hall symbols (as ``hall_key`` writes them) that also read as an H-M symbol of a
#: setting with other operations, and which gemmi and cctbx both read as H-M:
#: 'P 2' is P 1 2 1 (hall 3), not the Hall P 1 1 2 (hall 4); 'P 4 2' is P 4_2, ...
HALL_READ_AS_HM = frozenset({"p 2", "a 2", "i 2", "p 4 2", "p 3 2", "p 6 2"})

#: the pre-2002 glide letter of the e-glide plane in each group's standard setting (ITA)
_E_GLIDE_STANDARD = {39: "b", 41: "b", 64: "a", 67: "a", 68: "a"}
#: setting letters accepted after ':' or a space: origin choice S(tandard)=1, Z(entre)=2 (cctbx)
_EXT_ALIASES = {"1": "1", "2": "2", "H": "H", "R": "R", "S": "1", "Z": "2"}
#: spellings gemmi's table lists outside the 530 settings but with the operations of one of them
_EXTRA_NAMES = {"Abam": 307}
_CUBIC_CENTROSYMMETRIC = set(range(200, 207)) | set(range(221, 231))
#: H-M point group -> Schoenflies symbol (ITA Table 3.2.3.2)
_SCHOENFLIES = {
    "1": "C1", "-1": "Ci", "2": "C2", "m": "Cs", "2/m": "C2h", "222": "D2", "mm2": "C2v", "mmm": "D2h",
    "4": "C4", "-4": "S4", "4/m": "C4h", "422": "D4", "4mm": "C4v", "-42m": "D2d", "4/mmm": "D4h",
    "3": "C3", "-3": "C3i", "32": "D3", "3m": "C3v", "-3m": "D3d", "6": "C6", "-6": "C3h", "6/m": "C6h",
    "622": "D6", "6mm": "C6v", "-6m2": "D3h", "6/mmm": "D6h", "23": "T", "m-3": "Th", "432": "O",
    "-43m": "Td", "m-3m": "Oh",
}  # fmt: skip
_READINGS = {"hm": "an H-M symbol", "hall": "a Hall symbol", "schoenflies": "a Schoenflies symbol"}


class _Names(Protocol):
    """What the resolver reads of a setting (read-only, so a frozen ``Setting`` qualifies)."""

    @property
    def hall_number(self) -> int: ...
    @property
    def number(self) -> int: ...
    @property
    def hall_symbol(self) -> str: ...
    @property
    def hm_short(self) -> str: ...
    @property
    def hm_full(self) -> str: ...
    @property
    def hm_extended(self) -> str: ...
    @property
    def choice(self) -> str: ...
    @property
    def point_group(self) -> str: ...
    @property
    def is_default(self) -> bool: ...


def hall_key(text: str) -> str:
    """Normal form of a Hall symbol: tokens joined by one space, lower case.

    ``' -P  2ac 2ab'`` -> ``'-p 2ac 2ab'``; ``'P 31 2 ( 0 0 4 )'`` -> ``'p 31 2 (0 0 4)'``.
    """
    s = re.sub(r"\(\s*", "(", text.strip())
    s = re.sub(r"\s*\)", ")", s)
    return " ".join(s.split()).lower()


def _compact(body: str) -> str:
    """Spaces and underscores removed, lattice letter upper case, the rest lower case."""
    s = "".join(body.replace("_", " ").split())
    return s[:1].upper() + s[1:].lower()


def hm_key(text: str) -> tuple[str, str | None]:
    """Normal form of an H-M symbol: (compact body, setting letter or None).

    ``'P 6_{3}/m m c'`` -> ``('P63/mmc', None)``, ``'R -3 m H'`` -> ``('R-3m', 'H')``,
    ``'Fd3m Z'`` -> ``('Fd3m', '2')``, ``'H3'`` -> ``('R3', 'H')``, ``'P2(1)/c'`` -> ``('P21/c', None)``.
    A setting letter that is not 1, 2, H, R, S or Z is kept as written (upper case).
    """
    s = text.strip().replace("\u2212", "-")
    s = re.sub(r"\\(?:bar|overline)\{(\d)\}", r"-\1", s)  # TeX \bar{3}
    s = re.sub(r"_?\{(\d)\}", r"\1", s)  # TeX subscripts 4_{1}
    s = re.sub(r"([2346])\s*\(\s*([1-5])\s*\)", r"\1\2", s)  # screws 2(1)
    ext: str | None = None
    if ":" in s:
        s, _, tail = s.partition(":")
        ext = "".join(tail.split()).upper()
    else:
        m = re.fullmatch(r"(.*?)\s*([HRSZhrsz])", s)  # 'R3 R', 'R-3mH', 'Fd3m Z' (no H-M symbol ends so)
        if m and len("".join(m.group(1).split())) > 1:
            s, ext = m.group(1), m.group(2).upper()
    ext = _EXT_ALIASES.get(ext, ext) if ext is not None else None
    body = _compact(s)
    if body[:1] == "H":  # the H lattice letter: R in hexagonal axes
        body, ext = "R" + body[1:], ext or "H"
    return body, ext


def _short_from_full(full: str) -> str:
    """'B 2/b 2/e 2/b' -> 'Bbeb': the orthorhombic short symbol of a full symbol."""
    lattice, *parts = full.split()
    return lattice + "".join(p.split("/")[-1] for p in parts).replace("_", "")


def _old_e_letter(number: int, choice: str) -> str:
    """The pre-2002 letter of the e-glide in a setting of group 39/41/64/67/68.

    The setting choice ('ba-c', '1cab', ...) lists the old axis that becomes new a, b, c;
    the standard setting's letter (Abm2, Aba2, Cmca, Cmma, Ccca) follows its axis.
    """
    perm = [c for c in choice if c in "abc"] or ["a", "b", "c"]
    return "abc"[perm.index(_E_GLIDE_STANDARD[number])]


class SymbolResolver:
    """Symbol -> hall_number over the settings of one artifact (see the module docstring)."""

    def __init__(self, settings: Iterable[_Names]):
        rows = sorted(settings, key=lambda s: s.hall_number)
        self._number = {s.hall_number: s.number for s in rows}
        self._hall_symbol = {s.hall_number: s.hall_symbol for s in rows}
        self._default = {s.number: s.hall_number for s in rows if s.is_default}
        self._display = {s.hall_number: s.hm_extended for s in rows}
        self._hm: dict[tuple[str, str | None], list[int]] = {}
        self._hall: dict[str, list[int]] = {}
        self._numbered: dict[str, list[int]] = {}
        self._schoenflies: dict[str, list[int]] = {}
        self._suggestable: dict[str, tuple[str, int]] = {}  # normal form -> (spelling shown, hall_number)
        for s in rows:
            self._add_setting(s)
        first: dict[str, int] = {}  # Schoenflies: the n-th group of a point group, by number
        for s in rows:
            first.setdefault(s.point_group, s.number)
            pg = _SCHOENFLIES.get(s.point_group)
            if pg is not None:
                self._schoenflies.setdefault(
                    f"{pg}^{s.number - first[s.point_group] + 1}".lower(), []
                ).append(s.hall_number)
        for name, hall in _EXTRA_NAMES.items():
            if hall in self._number:
                self._add_hm(name, None, hall)

    # ------------------------------------------------------------- tables
    def _add_hm(self, body: str, ext: str | None, hall: int) -> None:
        key = _compact(body)
        for k in {(key, None), (key, ext)}:
            lst = self._hm.setdefault(k, [])
            if hall not in lst:
                lst.append(hall)

    def _add_setting(self, s: _Names) -> None:
        head, _, tail = s.hm_extended.partition(":")
        ext = tail.strip().upper() or None
        bodies = {s.hm_short, s.hm_full, head}
        if s.number in _E_GLIDE_STANDARD:  # new short symbol from the full one, and the old names
            letter = _old_e_letter(s.number, s.choice)
            new = _short_from_full(s.hm_full)
            bodies |= {new, new.replace("e", letter), s.hm_full.replace("e", letter)}
        if s.number in _CUBIC_CENTROSYMMETRIC:  # IT 1952: Pm3m for Pm-3m
            bodies |= {b.replace("-3", "3", 1) for b in (s.hm_short, head)}
        lattice, *parts = s.hm_full.split()
        if len(parts) == 3 and parts[0] == "1" and parts[2] == "1":  # unique axis b: P21/n, I2/a, Pn
            bodies.add(lattice + parts[1])
        if lattice == "B" and len(parts) == 3 and parts[:2] == ["1", "1"]:  # gemmi/PDB: B2 is B 1 1 2
            bodies.add(lattice + parts[2])
        for body in bodies:
            self._add_hm(body, ext, s.hall_number)
        for shown in (s.hm_short, s.hm_extended):
            body_, ext_ = hm_key(shown)
            self._suggestable.setdefault(body_ + (f":{ext_}" if ext_ else ""), (shown, s.hall_number))
        self._suggestable.setdefault(hall_key(s.hall_symbol), (s.hall_symbol, s.hall_number))
        self._hall.setdefault(hall_key(s.hall_symbol), []).append(s.hall_number)
        codes = {s.choice.lower()} if s.choice else set()
        if ext in ("1", "2"):
            codes |= {ext, {"1": "s", "2": "z"}[ext]}
        for code in codes:
            self._numbered.setdefault(f"{s.number}:{code}", []).append(s.hall_number)

    # ------------------------------------------------------------- lookup
    def _pick(self, halls: list[int], text: str) -> int:
        """One setting among ``halls`` (all of one group): spglib's default, else the first."""
        numbers = sorted({self._number[h] for h in halls})
        if len(numbers) > 1:
            listing = ", ".join(f"{self._display[h]} (hall {h})" for h in sorted(halls))
            raise SettingNotFoundError(f"ambiguous space-group symbol {text!r}: matches {listing}")
        default = self._default.get(numbers[0])
        return default if default in halls else min(halls)

    def _same_operations(self, a: int, b: int) -> bool:
        return a == b or self._hall_symbol[a] == self._hall_symbol[b]  # spglib's duplicates in No. 68

    def readings(self, text: str) -> dict[str, int]:
        """Every reading of ``text`` that names a setting: {'hm'|'hall'|'schoenflies'|'number': hall_number}."""
        out: dict[str, int] = {}
        stripped = text.strip()
        prefixed = re.match(r"(?i)hall\s*:", stripped)
        if prefixed:
            halls = self._hall.get(hall_key(stripped[prefixed.end() :]))
            return {"hall": min(halls)} if halls else {}
        numbered = self._numbered.get("".join(stripped.split()).lower())
        if numbered:
            out["number"] = self._pick(numbered, text)
        if not stripped:
            return out
        halls = self._hall.get(hall_key(stripped))
        if halls:
            out["hall"] = min(halls)
        body, ext = hm_key(stripped)
        found = self._hm.get((body, ext)) or self._hm.get((re.sub(r"(\d)-", r"-\1", body), ext))  # P4-2c
        if found:
            out["hm"] = self._pick(found, text)
        m = re.fullmatch(
            r"([cdsto]\d?[hvdis]?)[\^-](\d{1,2})", "".join(stripped.replace("_", "").split()).lower()
        )
        found = self._schoenflies.get(f"{m.group(1)}^{int(m.group(2))}") if m else None
        if found:
            out["schoenflies"] = self._pick(found, text)
        return out

    def resolve(self, text: str) -> int:
        """The hall_number ``text`` names; SettingNotFoundError if none or if ambiguous."""
        found = self.readings(text)
        if "number" in found:
            return found["number"]
        if not found:
            raise SettingNotFoundError(f"unknown space-group symbol {text!r}{self._suggest(text)}")
        first = next(iter(found.values()))
        if all(self._same_operations(first, h) for h in found.values()):
            return found.get("hm", first)
        if set(found) == {"hm", "hall"} and hall_key(text) in HALL_READ_AS_HM:
            return found["hm"]
        listing = "; ".join(f"as {_READINGS[k]} {self._display[h]} (hall {h})" for k, h in found.items())
        hint = f"write 'Hall: {text.strip()}' for the Hall reading, or " if "hall" in found else ""
        raise SettingNotFoundError(
            f"ambiguous space-group symbol {text!r}: {listing}; {hint}give the hall number (hall_number=, --hall)"
        )

    def _suggest(self, text: str) -> str:
        """'; did you mean ...?' with the nearest valid spellings (difflib on normal forms)."""
        body, ext = hm_key(text) if text.strip() else ("", None)
        keys = list(self._suggestable)
        close = difflib.get_close_matches(body + (f":{ext}" if ext else ""), keys, n=8, cutoff=0.6)
        close += difflib.get_close_matches(hall_key(text), keys, n=2, cutoff=0.8)
        shown: dict[int, str] = {}  # one spelling per setting
        for k in close:
            name, hall = self._suggestable[k]
            shown.setdefault(hall, name)
        names = list(shown.values())[:4]
        if not names:
            return "; see `basisdb list` for the settings"
        return "; did you mean " + ", ".join(repr(n) for n in names) + "?"
