"""Reading crystal structures from CIF with gemmi, honouring the symmetry the file declares.

``load_cif(source)`` returns a ``CIFCrystal`` (lattice, the unit-cell content, the
declared symmetry and how many symmetry images were merged); ``read_cif(source)``
returns just ``(lattice, positions, numbers)``.  ``source`` is a path or the text of
a CIF (a string with a newline).  gemmi (the ``structures`` extra) parses the file;
it is imported on the first read, never by ``import basisdb``.

What is read, from the first data block that has atoms:

- the cell (``_cell_length_a`` ... or the DDLm ``_cell.length_a`` ...);
- the atoms: ``_atom_site_fract_x/y/z`` or ``_atom_site.fract_x/y/z``, the species from
  ``type_symbol`` (else ``label``; rule in ``_species``), ``occupancy`` (partial
  occupancies are refused: a disordered structure has no single space group);
- the declared symmetry, the first of these that the file has:

  1. an operation loop: the magnetic ``_space_group_symop_magn_operation.xyz`` (spatial
     parts, composed with every ``_space_group_symop_magn_centering.xyz``), then
     ``_space_group_symop_operation_xyz``, ``_space_group_symop.operation_xyz``,
     ``_symmetry_equiv_pos_as_xyz``;
  2. a Hall symbol (``_space_group_name_Hall``, ``_symmetry_space_group_name_Hall``);
  3. an H-M symbol (``_space_group_name_H-M_alt``, ``_symmetry_space_group_name_H-M``), read
     by gemmi's ``find_spacegroup_by_name`` with the cell angles (which rhombohedral axes)
     and ``_space_group_IT_coordinate_system_code``; spellings gemmi does not know go to
     basisdb's own symbol resolver;
  4. the International Tables number (``_space_group_IT_number``,
     ``_symmetry_Int_Tables_number``): its default setting, rhombohedral axes for an R
     group in a rhombohedral cell.

  A file without any of them is in P 1.  A declared form that cannot be interpreted is a
  ``CIFError`` naming the tag and the value, never a silent fall-back to the listed atoms.
  An operation loop that is not a group is a ``NotAGroupError`` naming the failing product,
  as for ``basis_from_operations``.  When the loop is used and the file also names its group
  by a symbol or number of another group type, a ``SymmetryMismatchWarning`` says so.
- Translations written as decimals are read as the nearest multiple of 1/24 when within
  ``SNAP_TOLERANCE`` (``SnappedTranslationWarning``), else refused.
- Symmetry images of one listed site closer than ``MERGE_DISTANCE`` (Cartesian) are one
  atom (a special position).  The number merged is reported (``CIFCrystal.merged``); a
  ``CIFWarning`` says so when an image merged was more than 0.001 A away (rounded
  coordinates).  Images farther apart are kept, and atoms of different listed sites are never
  merged: a site listed twice gives two atoms at one place, which ``featurize`` refuses as
  duplicated, as it does for every input route.
- Magnetic moments (``CIFCrystal.moments``), from ``_atom_site_moment.label`` with
  ``_atom_site_moment.crystalaxis_x/_y/_z`` (or the older ``_atom_site_moment_label``,
  ``_atom_site_moment_crystalaxis_x`` ...), when the symmetry is a magnetic operation loop (or
  absent: P 1).  magCIF's convention: the components are in Bohr magnetons along the *unit*
  vectors a/|a|, b/|b|, c/|c| (not fractional components; a moment (0, 0, 4.6) is 4.6 muB along c
  whatever |c| is).  A moment is an axial vector: the operation (R, t, theta) (theta = -1 for the
  file's ',-1', time reversal) maps the moment m of a site at x to theta det(R) W m at R x + t,
  W = L^T R L^-T the Cartesian rotation (L: rows a, b, c); in crystal-axis components
  theta det(R) D R D^-1 m with D = diag(|a|, |b|, |c|), which is theta det(R) R m whenever R mixes
  only axes of equal length (every conventional cell).  Every operation that maps the site onto
  an atom must give the same moment within ``MOMENT_TOLERANCE`` (muB; the site symmetry must allow
  the moment), and the atom gets their mean.  Sites without a moment row have moment 0.  The
  moments are (n, 3) Cartesian (muB, the frame of ``lattice``); a problem with them does not stop
  the structure from being read: ``moments`` is then None and ``moment_error`` says why
  (``featurize(path, magmoms="cif")`` raises it).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ._constants import DEN, N_SETTINGS, N_SPACE_GROUPS
from ._errors import (
    CIFError,
    CIFWarning,
    NotAGroupError,
    SnappedTranslationWarning,
    SymmetryMismatchWarning,
    warn,
)
from ._ops import check_group, parse_triplet
from ._species import ELEMENTS, atomic_number

__all__ = [
    "CIFCrystal",
    "CIFError",
    "DeclaredSymmetry",
    "ELEMENTS",
    "MERGE_DISTANCE",
    "MOMENT_TOLERANCE",
    "SNAP_TOLERANCE",
    "atomic_number",
    "crystal_from_small_structure",
    "group_type",
    "lattice_from_parameters",
    "load_cif",
    "read_cif",
]

#: symmetry images of one listed site closer than this (Angstrom, Cartesian) are one atom
MERGE_DISTANCE = 0.1
#: a decimal operation translation within this (fractional) of a multiple of 1/24 is read as it
SNAP_TOLERANCE = 0.005
#: merges farther than this (Angstrom) are reported with a CIFWarning (coordinates look rounded)
_MERGE_REPORT = 1e-3
#: images of one site's moment on one atom (special position) must agree within this (Bohr magnetons)
MOMENT_TOLERANCE = 0.05
#: operation sets whose group check and classification (``group_type``) are remembered, least recently used out
GROUP_CACHE = 1024

_MAGN_OPS = (
    "_space_group_symop_magn_operation.xyz",
    "_space_group_symop_magn_operation_xyz",
    "_space_group_symop.magn_operation_xyz",
)
_MAGN_CENTERINGS = (
    "_space_group_symop_magn_centering.xyz",
    "_space_group_symop_magn_centering_xyz",
    "_space_group_symop.magn_centering_xyz",
)
_OPS = (
    "_space_group_symop_operation_xyz",
    "_space_group_symop.operation_xyz",
    "_symmetry_equiv_pos_as_xyz",
    "_symmetry_equiv.pos_as_xyz",
)
_HALL = (
    "_space_group_name_Hall",
    "_space_group.name_Hall",
    "_symmetry_space_group_name_Hall",
    "_symmetry.space_group_name_Hall",
)
_HM = (
    "_space_group_name_H-M_alt",
    "_space_group.name_H-M_alt",
    "_symmetry_space_group_name_H-M",
    "_symmetry.space_group_name_H-M",
)
_NUMBER = (
    "_space_group_IT_number",
    "_space_group.IT_number",
    "_symmetry_Int_Tables_number",
    "_symmetry.Int_Tables_number",
)
_CODE = ("_space_group_IT_coordinate_system_code", "_space_group.IT_coordinate_system_code")
_MAGN_NAMES = (
    "_space_group_magn.name_BNS",
    "_space_group_magn.number_BNS",
    "_space_group_magn.name_OG",
    "_space_group_magn.number_OG",
    "_space_group.magn_name_BNS",
    "_space_group.magn_number_BNS",
)
_SUPERSPACE: tuple[str, ...] = (
    "_space_group_symop_magn_ssg_operation.algebraic",
    "_space_group_symop_ssg_operation_algebraic",
    "_space_group_symop.ssg_operation_algebraic",
    "_cell_modulation_dimension",
    "_cell.modulation_dimension",
)
_MOMENT_PREFIXES = ("_atom_site_moment.", "_atom_site_moment_")
_MOMENT_LABELS = tuple(p + "label" for p in _MOMENT_PREFIXES)
#: tag group -> lower-case strings one of which every tag of the group contains (see ``_first``)
_NEEDLES: dict[tuple[str, ...], tuple[str, ...]] = {
    _SUPERSPACE: ("ssg_operation", "modulation_dimension"),
    _MAGN_OPS: ("magn",),
    _MAGN_CENTERINGS: ("magn",),
    _MAGN_NAMES: ("magn",),
    _HALL: ("hall",),
    _CODE: ("coordinate_system_code",),
    _MOMENT_LABELS: ("_atom_site_moment",),
}


@dataclass(frozen=True)
class DeclaredSymmetry:
    """The symmetry a CIF declares.

    tag, value:  the CIF tag used and its value (for a loop, its operations joined by '; ').
    form:        'operations', 'magnetic operations', 'Hall symbol', 'H-M symbol' or 'number'.
    rotations:   (n, 3, 3) int64; translations: (n, 3) int64 numerators over ``DEN`` (centrings included).
    time_reversals: for a magnetic operation loop, (rotations (m, 3, 3), translations (m, 3) over DEN,
                 theta (m,) +1 or -1 (-1: time reversal)) of every magnetic operation (centrings
                 included; an (R, t) may come with both signs); None otherwise.
    """

    tag: str
    value: str
    form: str
    rotations: np.ndarray
    translations: np.ndarray
    time_reversals: tuple | None = None

    def describe(self) -> str:
        if self.form.endswith("operations"):
            return f"the {len(self.rotations)} operations of {self.tag}"
        return f"{self.tag} {self.value!r}"


@dataclass(frozen=True)
class CIFCrystal:
    """A crystal read from a CIF.

    lattice:   (3, 3) float64 rows a, b, c (Angstrom; a along x, b in the xy plane).
    positions: (n, 3) float64 fractional coordinates in [0, 1) of the whole unit-cell content.
    numbers:   (n,) int64 atomic numbers; labels: (n,) the listed site each atom comes from.
    name:      the path or '<CIF text>'; block: the data block's name.
    declared:  the declared symmetry (None: the file declares none, P 1).
    merged:    symmetry images merged into an image of the same site (special positions);
    max_merge_distance: the largest distance merged (Angstrom).
    moments:   (n, 3) float64 magnetic moments (Bohr magnetons, Cartesian in the frame of ``lattice``),
               expanded with the magnetic operations; None when the file has none or they cannot be
               used, ``moment_error`` then saying why (module docstring).
    """

    lattice: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    labels: tuple
    name: str
    block: str
    declared: DeclaredSymmetry | None
    merged: int
    max_merge_distance: float
    moments: np.ndarray | None = None
    moment_error: str | None = None


def lattice_from_parameters(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """Cell vectors as rows: a along x, b in the xy plane (right-handed).

    Lengths in Angstrom, angles in degrees; returns (3, 3) float64.  Raises CIFError when the
    parameters describe no cell.
    """
    al, be, ga = np.radians([alpha, beta, gamma])
    cos_be, cos_ga, sin_ga = np.cos(be), np.cos(ga), np.sin(ga)
    cx = c * cos_be
    cy = c * (np.cos(al) - cos_be * cos_ga) / sin_ga
    cz2 = c * c - cx * cx - cy * cy
    if not math.isfinite(cz2) or cz2 <= 0:
        raise CIFError(f"cell parameters {a, b, c, alpha, beta, gamma} do not describe a cell")
    # math.sqrt: IEEE square root, correctly rounded like np.sqrt (and cz2 > 0)
    return np.array([a, 0.0, 0.0, b * cos_ga, b * sin_ga, 0.0, cx, cy, math.sqrt(cz2)]).reshape(3, 3)


# ------------------------------------------------------------------ reading
def read_cif(source, reader: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an ordered crystal structure from a CIF path or CIF text with gemmi.

    Returns ``(lattice (3,3) rows a,b,c in Angstrom, fractional positions (n,3), atomic numbers (n,))``
    of the full unit-cell content, expanded with the declared symmetry (see the module docstring).
    ``reader``: None or 'gemmi' (the only reader).  Raises CIFError, NotAGroupError, FileNotFoundError.
    """
    c = load_cif(source, reader=reader)
    return c.lattice, c.positions, c.numbers


def _gemmi():
    """The gemmi module (imported on first use, then kept); ImportError with the install hint."""
    global _GEMMI
    if _GEMMI is None:
        try:
            import gemmi
        except ImportError as exc:
            raise ImportError(
                "reading CIF files needs gemmi; install it with `pip install basisdb[structures]` "
                "(or `pip install gemmi`)"
            ) from exc
        _GEMMI = gemmi
    return _GEMMI


_GEMMI: Any = None


class CIFText(str):
    """A str that is CIF text, never a path, however short (a table cell of a dataset's CIF column:
    an empty or one-line cell is a bad CIF, not a file name to open)."""

    __slots__ = ()


def _document(source):
    """(gemmi Document, name) of a path or of CIF text (a str with a newline, or a ``CIFText``)."""
    gemmi = _gemmi()
    if isinstance(source, (str, os.PathLike)) and not (
        isinstance(source, CIFText) or (isinstance(source, str) and "\n" in source)
    ):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such CIF file: {str(path)!r}")
        name = str(path)
        read = lambda: gemmi.cif.read(name)  # noqa: E731
    elif isinstance(source, str):
        name = "<CIF text>"
        read = lambda: gemmi.cif.read_string(source)  # noqa: E731
    else:
        raise TypeError(f"a CIF source must be a path or CIF text, got {type(source).__name__}")
    try:
        return read(), name
    except Exception as exc:  # gemmi raises plain RuntimeError/ValueError with the line number
        raise CIFError(f"{name}: gemmi cannot parse the CIF: {exc}") from None


def load_cif(source, reader: str | None = None) -> CIFCrystal:
    """Read a CIF path or CIF text into a ``CIFCrystal`` (see the module docstring)."""
    if reader not in (None, "gemmi"):
        raise ValueError(
            f"reader must be None or 'gemmi', got {reader!r} (gemmi is the only CIF reader; "
            "for ASE's or pymatgen's reading pass their Atoms or Structure instead)"
        )
    doc, name = _document(source)
    # the lower-cased CIF text (``_document``'s rule), to skip tag groups it cannot hold (``_first``); None
    # for a path
    is_text = isinstance(source, str) and (isinstance(source, CIFText) or "\n" in source)
    text = source.lower() if is_text else None
    blocks, tables = [], []
    for b in doc:
        found = _atom_table(b)
        if found[0] is not None:
            blocks.append(b)
            tables.append(found)
    if not blocks:
        if any(b.find_values(t) for b in doc for t in ("_atom_site_Cartn_x", "_atom_site.Cartn_x")):
            raise CIFError(
                f"{name}: the atoms have only Cartesian coordinates (_atom_site_Cartn_x); "
                "fractional _atom_site_fract_x/y/z are needed"
            )
        raise CIFError(f"{name}: the CIF has no atoms (no _atom_site_fract_x loop)")
    if len(blocks) > 1:
        warn(
            CIFWarning(f"{name}: {len(blocks)} data blocks hold atoms; read the first, data_{blocks[0].name}")
        )
    return _read_block(blocks[0], name, tables[0], text)


#: first characters of a raw CIF value that gemmi.cif.as_string changes (quotes, a text field)
_QUOTING = frozenset("'\";")


def _text(value) -> str | None:
    """A CIF value (gemmi's raw string) as text; None for the unknown '?' and inapplicable '.'.

    The text is ``gemmi.cif.as_string(value).strip()``; as_string returns a value that does not
    start with a quote or ';' unchanged, so only those go through gemmi.
    """
    if value is None:
        return None
    text = (_gemmi().cif.as_string(value) if value[:1] in _QUOTING else value).strip()
    return None if text in ("?", ".", "") else text


def _texts(values: list) -> list:
    """``_text`` of every value of a column (list of raw strings, none None)."""
    out = [(_gemmi().cif.as_string(v) if v[:1] in _QUOTING else v).strip() for v in values]
    return [None if t in ("?", ".", "") else t for t in out]


def _may_hold(tags: tuple[str, ...], text: str | None) -> bool:
    """False when the lower-cased CIF ``text`` has no needle of the tag group (``_NEEDLES``): no block
    read from it has any of ``tags``.  True when it may (or ``text`` is None: a path)."""
    if text is None:
        return True
    needles = _NEEDLES.get(tags)
    return needles is None or any(map(text.__contains__, needles))


def _first(block, tags, text: str | None = None) -> tuple[str, list[str]] | None:
    """(tag, its non-null values) of the first tag the block has with any value.

    ``text``: the lower-cased CIF text the block was read from, or None.  gemmi matches tags
    ignoring ASCII case, so a block can hold one of ``tags`` only if ``text`` contains a needle
    of the group (``_NEEDLES``, a lower-case part of each tag): without one, nothing is looked up.
    """
    if not _may_hold(tags, text):
        return None
    for tag in tags:
        col = block.find_values(tag)
        n = len(col) if col is not None else 0
        if n:  # indexing a gemmi Column is cheaper than iterating it
            vals = [t for t in (_text(col[i]) for i in range(n)) if t is not None]
            if vals:
                return tag, vals
    return None


#: the columns of the atom table, in ``_atom_table``'s order (the first three required)
_ATOM_FIELDS = ("fract_x", "fract_y", "fract_z", "label", "type_symbol", "occupancy", "symmetry_multiplicity")
_ATOM_SPEC = [f if k < 3 else "?" + f for k, f in enumerate(_ATOM_FIELDS)]
_ATOM_TAGS = {p: tuple(p + f for f in _ATOM_FIELDS) for p in ("_atom_site_", "_atom_site.")}


def _atom_table(block):
    """(gemmi Table of ``_ATOM_FIELDS``, its tag prefix) of the block's atoms; (None, None) if none."""
    for prefix in ("_atom_site_", "_atom_site."):
        table = block.find(prefix, _ATOM_SPEC)
        if len(table):
            return table, prefix
    return None, None


#: a plain decimal number: only these characters.  For such a value that float() reads to a finite
#: double, gemmi.cif.as_number gives the same double (both round correctly), except that gemmi refuses
#: (NaN) a value that underflows to zero, e.g. '1e-400': a zero is taken only when its digits are all 0.
#: Everything else (uncertainties '1.5(3)', and '1_0', ' 1', 'inf', 'nan', which float() takes) is read
#: by gemmi.
_PLAIN = re.compile(r"[0-9.eE+-]*")


def _zero_text(value: str) -> bool:
    """True when the digits of a plain number's mantissa are all 0 (its value is zero, not an underflow)."""
    return not value.lower().partition("e")[0].strip("+-.0")


def _plain_float(value) -> float | None:
    """float(value) when value is a plain decimal number (``_PLAIN``) read as gemmi reads it, else None."""
    if _PLAIN.fullmatch(value):
        try:
            x = float(value)
        except ValueError:
            return None
        if math.isfinite(x) and (x or _zero_text(value)):
            return x
    return None


def _plain_floats(values: list) -> list[float] | None:
    """``_plain_float`` of every value, or None when any value is not a plain number read as gemmi reads
    it (or the values are so large that their sum overflows: the caller then reads them one by one)."""
    if not _PLAIN.fullmatch("".join(values)):
        return None
    try:
        xs = list(map(float, values))
    except ValueError:
        return None
    if not math.isfinite(sum(xs)):
        return None
    if 0.0 in xs and not all(x or _zero_text(v) for x, v in zip(xs, values)):
        return None
    return xs


def _number(value, what: str, name: str) -> float:
    """A CIF value as a finite number (``gemmi.cif.as_number``); CIFError naming ``what`` otherwise."""
    if value is not None:
        x = _plain_float(value)
        if x is not None:
            return x
    x = _gemmi().cif.as_number(value) if value is not None else float("nan")
    if not np.isfinite(x):
        raise CIFError(f"{name}: {what} is missing or not a number ({value!r})")
    return float(x)


#: (tag, DDLm tag, default) of the six cell parameters; a missing angle is 90 (CIF's default)
_CELL_TAGS = tuple(
    (f"_cell_{k}", f"_cell.{k}", "90" if k.startswith("angle") else None)
    for k in ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")
)


def _cell(block, name: str) -> tuple[np.ndarray, tuple]:
    """(lattice (3, 3) rows a, b, c in Angstrom, (a, b, c, alpha, beta, gamma) in Angstrom and degrees)."""
    values = []
    for tag, ddlm, default in _CELL_TAGS:
        value = block.find_value(tag)
        if value is None:
            value = block.find_value(ddlm)
        values.append(default if value is None else value)
    params = _plain_floats(values) if None not in values else None
    if params is None:  # one by one: gemmi's reading, and the error naming the first bad parameter
        params = [_number(value, tag, name) for value, (tag, _, _) in zip(values, _CELL_TAGS)]
    try:
        return lattice_from_parameters(*params), tuple(params)
    except CIFError as exc:
        raise CIFError(f"{name}: {exc}") from None


def _columns(table, prefix: str) -> list[list[str] | None]:
    """The raw values (gemmi's strings, quotes kept) of the 7 columns of ``_atom_table``, each a list
    over the rows (``table[i][k]``); None for a column the table does not have."""
    n = len(table)
    present = [table.has_column(k) for k in range(7)]
    loop = table.loop
    if loop is not None:  # one copy of the loop's values, sliced per column
        # gemmi matches tags case-insensitively: with distinct lower-case tags, the one equal to
        # prefix + field is the table's column
        tags = loop.tags
        width = len(tags)
        index = {t.lower(): j for j, t in enumerate(tags)}
        where = [index.get(t, -1) for t in _ATOM_TAGS[prefix]]
        values = loop.values
        if len(index) == width and len(values) == width * n and [j >= 0 for j in where] == present:
            return [values[j::width] if j >= 0 else None for j in where]
    return [[table[i][k] for i in range(n)] if present[k] else None for k in range(7)]


def _read_block(block, name: str, found=None, text: str | None = None) -> CIFCrystal:
    """The CIFCrystal of a data block with atoms; ``found``: its ``_atom_table`` when known;
    ``text``: the lower-cased CIF text or None (``_first``)."""
    lattice, params = _cell(block, name)
    table, prefix = found if found is not None else _atom_table(block)
    n = len(table)
    cols = _columns(table, prefix)
    xyz = [c for c in cols[:3] if c is not None]
    assert len(xyz) == 3  # fract_x, fract_y, fract_z are the loop's required columns
    plain = _plain_floats(xyz[0] + xyz[1] + xyz[2])  # every coordinate a plain number: one conversion
    if plain is not None:
        frac = np.ascontiguousarray(np.array(plain, dtype=np.float64).reshape(3, n).T)
    else:  # value by value, for gemmi's reading and the error naming the first bad value
        frac = np.array(
            [[_number(xyz[c][i], f"{prefix}fract_{'xyz'[c]}", name) for c in range(3)] for i in range(n)]
        )
    label_texts = _texts(cols[3]) if cols[3] is not None else [None] * n
    symbol_texts = _texts(cols[4]) if cols[4] is not None else [None] * n
    labels = [t or f"site {i + 1}" for i, t in enumerate(label_texts)]
    occ_raw = cols[5]
    occ_texts = None
    if occ_raw is not None:
        occ = _plain_floats(occ_raw)  # all plain numbers (none null) of at least 1 - 1e-3: nothing to check
        if occ is None or min(occ) < 1.0 - 1e-3:
            occ_texts = _texts(occ_raw)
    symbols = [s or t for s, t in zip(symbol_texts, label_texts)]
    numbers = _numbers_of(symbols) if occ_texts is None else None
    if numbers is None:  # row by row: the error of the first bad row
        numbers = []
        for i in range(n):
            symbol = symbols[i]
            if symbol is None:
                raise CIFError(f"{name}: {labels[i]} has neither {prefix}type_symbol nor {prefix}label")
            try:
                numbers.append(_atomic_number(symbol))
            except ValueError as exc:
                raise CIFError(f"{name}: {labels[i]}: {exc}") from None
            if occ_texts is not None and occ_texts[i] is not None and occ_raw is not None:
                occ_i = _number(occ_raw[i], f"{prefix}occupancy", name)
                if occ_i < 1.0 - 1e-3:
                    raise CIFError(
                        f"{name}: partial occupancies (a disordered structure) are not supported "
                        f"({labels[i]}: occupancy {occ_i:g})"
                    )
    declared = _declared(block, name, params, text)
    mult: list[int | None]
    if cols[6] is None:
        mult = [None] * n
    else:
        joined = "".join(cols[6])
        if joined.isascii() and joined.isdigit() and all(cols[6]):  # plain integers: int() of each
            mult = list(map(int, cols[6]))
        else:
            mult = [_multiplicity(v) for v in cols[6]]
    if (
        declared is not None
        and declared.form in ("H-M symbol", "number")
        and not _coordinate_code(block, text)
    ):
        declared = _origin_choice(declared, frac, numbers, labels, mult, lattice, name, params)
    rot, translations = (
        (declared.rotations, declared.translations)
        if declared is not None
        else (np.eye(3, dtype=np.int64)[None], np.zeros((1, 3), dtype=np.int64))
    )
    pos, num, lab, merged, worst, site = _expand(
        frac, np.array(numbers, dtype=np.int64), labels, mult, rot, translations, lattice, name
    )
    try:
        moments, moment_error = _moments(block, name, lattice, frac, labels, site, pos, declared, text), None
    except CIFError as exc:
        moments, moment_error = None, str(exc)
    if merged and worst > _MERGE_REPORT:
        warn(
            CIFWarning(
                f"{name}: {merged} symmetry images merged with an image of the same site at distances up to "
                f"{worst:.3g} A (merge distance {MERGE_DISTANCE} A): the coordinates of special positions look rounded"
            )
        )
    return CIFCrystal(
        lattice=lattice,
        positions=pos,
        numbers=num,
        labels=tuple(lab),
        name=name,
        block=block.name,
        declared=declared,
        merged=merged,
        max_merge_distance=worst,
        moments=moments,
        moment_error=moment_error,
    )


#: atomic_number of the exact str gemmi gives (a dataset repeats a few symbols); errors are not cached
_atomic_number = lru_cache(maxsize=4096)(atomic_number)


def _numbers_of(symbols: list) -> list[int] | None:
    """Atomic numbers of the symbols (each distinct one looked up once); None when one is None or
    unknown (the caller then reads row by row for the error)."""
    zs = {}
    for s in set(symbols):
        if s is None:
            return None
        try:
            zs[s] = _atomic_number(s)
        except ValueError:
            return None
    return [zs[s] for s in symbols]


def _multiplicity(value):
    """A raw ``_atom_site_symmetry_multiplicity`` value as an int; None when null or not an integer."""
    text = _text(value)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


# ------------------------------------------------------------------ declared symmetry
def _declared(block, name: str, params, text: str | None = None) -> DeclaredSymmetry | None:
    """The declared symmetry (module docstring); ``text``: the lower-cased CIF text or None (``_first``)."""
    for tags in (_SUPERSPACE,):
        found = _first(block, tags, text)
        if found:
            raise CIFError(
                f"{name}: an incommensurate (superspace) structure ({found[0]}); "
                "featurize needs a periodic crystal"
            )
    found = _first(block, _MAGN_OPS, text)
    if found:
        tag, values = found
        rot, translations = _operations(values, tag, name, magnetic=True)
        theta = _thetas(values)
        cen = _first(block, _MAGN_CENTERINGS, text)
        if cen:
            crot, cen_translations = _operations(cen[1], cen[0], name, magnetic=True)
            rot = np.einsum("cij,gjk->cgik", crot, rot).reshape(-1, 3, 3)
            translations = (
                np.einsum("cij,gj->cgi", crot, translations) + cen_translations[:, None, :]
            ).reshape(-1, 3) % DEN
            theta = (_thetas(cen[1])[:, None] * theta[None, :]).reshape(-1)
        mkeys = [tuple(r.ravel()) + tuple(t % DEN) + (int(th),) for r, t, th in zip(rot, translations, theta)]
        mkeep = sorted({k: i for i, k in reversed(list(enumerate(mkeys)))}.values())
        magnetic = (rot[mkeep], translations[mkeep] % DEN, theta[mkeep])
        rot, translations = _unique(rot, translations)
        declared = DeclaredSymmetry(
            tag, "; ".join(values), "magnetic operations", rot, translations, magnetic
        )
        _check(declared, name)
        return declared
    found = _first(block, _OPS)
    if found:
        tag, values = found
        rot, translations = _operations(values, tag, name, magnetic=False)
        declared = DeclaredSymmetry(tag, "; ".join(values), "operations", rot, translations)
        _check(declared, name)
        _cross_check(declared, block, name, params, text)
        return declared
    found = _first(block, _MAGN_NAMES, text)
    if found:
        raise CIFError(
            f"{name}: the magnetic space group is given only as {found[0]} {found[1][0]!r}, without its "
            f"operations ({_MAGN_OPS[0]}); the atoms cannot be expanded"
        )
    for tags, form in ((_HALL, "Hall symbol"), (_HM, "H-M symbol"), (_NUMBER, "number")):
        found = _first(block, tags, text)
        if found:
            tag, values = found
            rot, translations = _symbol_operations(
                form, tag, values[0], name, params, _coordinate_code(block, text)
            )
            return DeclaredSymmetry(tag, values[0], form, rot, translations)
    return None


def _origin_choice(declared, frac, numbers, labels, mult, lattice, name: str, params) -> DeclaredSymmetry:
    """The declared H-M symbol or number read with the right origin choice, when the group has two and
    nothing says which (no coordinate-system code, no ':1'/':2' in the symbol): ``declared`` itself
    otherwise.

    Readers disagree here (gemmi's symbol lookup, spglib, ASE and pymatgen take origin choice 1;
    gemmi's CIF reader and cctbx take 2), and coordinates written for one origin read with the other
    give another crystal (diamond at 1/8, 1/8, 1/8 read with origin choice 1: 16 atoms 1.9 A apart, not
    8).  So the file decides, by the strongest evidence it gives: the reading that reproduces its
    ``_atom_site_symmetry_multiplicity`` when exactly one does; else the one that puts no two atoms
    closer than ``IMPLAUSIBLE_DISTANCE`` when exactly one does (a spinel in origin 2 read with origin 1:
    atoms 0.29 A apart, 56 atoms either way); else the one in which more symmetry images coincide
    (fewer atoms: atoms tend to sit on special positions of the right origin; right for diamond,
    cristobalite, zircon, anatase, spinel and pyrochlore in either origin, checked against ASE's
    expansion in each setting); else origin choice 2, as gemmi's and cctbx's CIF readers (Cu2O: the
    same count and plausible distances either way).  A ``CIFWarning`` always says which was taken, why,
    and how many atoms the other reading gives."""
    try:
        first = _symbol_setting(declared.form, declared.tag, declared.value, name, params, "1")
        second = _symbol_setting(declared.form, declared.tag, declared.value, name, params, "2")
    except CIFError:
        return declared
    if first == second:  # one origin, or the symbol names it
        return declared
    readings = []
    for choice, setting in (("1", first), ("2", second)):
        kind, key = setting
        rot, translations = _hall_operations(key) if kind == "hall" else _database_ops(key)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pos = _expand(
                frac, np.asarray(numbers, dtype=np.int64), labels, mult, rot, translations, lattice, name
            )[0]
        mismatches = sum("_atom_site_symmetry_multiplicity" in str(w.message) for w in caught)
        readings.append((choice, rot, translations, len(pos), mismatches, _shortest_distance(pos, lattice)))
    n1, m1, n2, m2 = readings[0][3], readings[0][4], readings[1][3], readings[1][4]
    close1, close2 = (r[5] < IMPLAUSIBLE_DISTANCE for r in readings)
    if any(m is not None for m in mult) and (m1 == 0) != (m2 == 0):
        pick, why = (0 if m1 == 0 else 1), "its site multiplicities match the file's"
    elif close1 != close2:
        pick = 1 if close1 else 0
        why = f"the other puts atoms {readings[1 - pick][5]:.3g} A apart"
    elif n1 != n2:
        pick, why = (0 if n1 < n2 else 1), "more of the atoms' symmetry images coincide (special positions)"
    else:
        pick, why = 1, "the file gives no evidence either way; as gemmi's and cctbx's CIF readers"
    chosen, other = readings[pick], readings[1 - pick]
    warn(
        CIFWarning(
            f"{name}: {declared.tag} {declared.value!r} does not say which of the group's two origin choices "
            f"the coordinates use: read with origin choice {chosen[0]} ({why}; {chosen[3]} atoms), origin "
            f"choice {other[0]} gives {other[3]} atoms. Say which with _space_group_IT_coordinate_system_code "
            "(1 or 2), a ':1'/':2' suffix to the symbol, or the operation loop"
        )
    )
    return DeclaredSymmetry(declared.tag, declared.value, declared.form, chosen[1], chosen[2])


#: two atoms closer than this (Angstrom) are not a crystal (the shortest bond, H-H, is 0.74 A): a reading
#: of the origin choice that puts atoms this close is the wrong one
IMPLAUSIBLE_DISTANCE = 0.5


def _shortest_distance(pos: np.ndarray, lattice: np.ndarray) -> float:
    """The shortest distance (Angstrom) between two atoms of fractional positions ``pos`` (n, 3) in the cell
    ``lattice`` (rows), nearest images by rounding (exact for the orthogonal cells of the groups with two
    origin choices); inf for fewer than two atoms.  In blocks of rows: bounded memory."""
    n = len(pos)
    best = math.inf
    for lo in range(0, n, 256):
        d = pos[lo : lo + 256, None, :] - pos[None, :, :]
        d -= np.rint(d)
        dist = np.linalg.norm(d @ lattice, axis=-1)
        rows = np.arange(lo, min(lo + 256, n))
        dist[rows - lo, rows] = np.inf
        best = min(best, float(dist.min(initial=np.inf)))
    return best


def _coordinate_code(block, text: str | None = None) -> str:
    found = _first(block, _CODE, text)
    code = found[1][0].strip().upper() if found else ""
    return code if code in ("1", "2", "H", "R") else ""


_DECIMAL = re.compile(r"(?<![\w./])(\d+\.\d*|\.\d+)(?![\w./])")


def _operations(values, tag: str, name: str, magnetic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact operations of an operation loop; decimal translations snapped to k/24 (with a warning).

    Returns (rotations (n, 3, 3) int64, translations (n, 3) int64 over ``DEN``), new arrays.  Raises
    CIFError naming ``tag`` and the value that cannot be read.
    """
    plain = _plain_operations(tuple(values), magnetic)
    if plain is not None:
        return plain[0].copy(), plain[1].copy()
    rot, translations, snapped = _parse_operations(values, tag, name, magnetic)
    if snapped:
        shown = ", ".join(dict.fromkeys(snapped))
        warn(
            SnappedTranslationWarning(
                f"{name}: {tag}: {len(snapped)} translation(s) read as the nearest multiple of 1/{DEN} "
                f"(tolerance {SNAP_TOLERANCE}): {shown}"
            )
        )
    return rot, translations


@lru_cache(maxsize=GROUP_CACHE)  # a dataset declares a few loops (pymatgen: 'x, y, z' in every file)
def _plain_operations(values: tuple, magnetic: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """``_parse_operations`` of a loop read without a snapped translation (read-only arrays), else None
    (the loop is then read again by ``_operations``, which warns or raises naming the file and tag)."""
    try:
        rot, translations, snapped = _parse_operations(values, "", "", magnetic)
    except Exception:
        return None
    if snapped:
        return None
    rot.setflags(write=False)
    translations.setflags(write=False)
    return rot, translations


def _parse_operations(values, tag: str, name: str, magnetic: bool) -> tuple[np.ndarray, np.ndarray, list]:
    """(rotations, translations, snapped: 'decimal -> fraction' of each snapped translation) of a loop."""
    rots, translation_list, snapped = [], [], []
    for value in values:
        text = value
        if magnetic:
            parts = [p.strip() for p in text.split(",")]
            if len(parts) != 4 or parts[3].lstrip("+") not in ("1", "-1"):
                raise CIFError(f"{name}: {tag} value {value!r} is not a magnetic operation 'x,y,z,+1'")
            text = ",".join(parts[:3])

        def snap(m, value=value):  # used at once, by the re.sub below
            v = float(m.group(1))
            k = round(v * DEN)
            if abs(v - k / DEN) > SNAP_TOLERANCE + 1e-12:
                raise CIFError(
                    f"{name}: {tag} value {value!r}: translation {m.group(1)} is not within "
                    f"{SNAP_TOLERANCE} of a multiple of 1/{DEN}"
                )
            if abs(v - k / DEN) > 1e-9:
                snapped.append(f"{m.group(1)} -> {Fraction(k, DEN)}")
            return f"{k}/{DEN}"

        text = _DECIMAL.sub(snap, text)
        try:
            r, t = parse_triplet(text)
        except ValueError as exc:
            raise CIFError(
                f"{name}: {tag} value {value!r}: {str(exc).replace(repr(text), repr(value))}"
            ) from None
        rots.append(r)
        translation_list.append(t)
    return np.stack(rots), np.stack(translation_list), snapped


def _thetas(values) -> np.ndarray:
    """The time-reversal signs (+1, -1) of magnetic operations 'x,y,z,+1' (validated by ``_operations``)."""
    return np.array([int(v.split(",")[3].strip().lstrip("+")) for v in values], dtype=np.int64)


def _unique(rot: np.ndarray, translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = [tuple(r.ravel()) + tuple(t % DEN) for r, t in zip(rot, translations)]
    keep = sorted({k: i for i, k in reversed(list(enumerate(keys)))}.values())
    return rot[keep], translations[keep] % DEN


def _check(declared: DeclaredSymmetry, name: str) -> None:
    rot, tra = np.asarray(declared.rotations), np.asarray(declared.translations)
    try:
        # operation sets found to be groups are remembered (bounded): most files of a dataset declare
        # one of a few sets (pymatgen writes every structure in P 1 with the single operation x,y,z)
        _checked_group(rot.dtype.str, rot.shape, rot.tobytes(), tra.dtype.str, tra.shape, tra.tobytes())
    except NotAGroupError as exc:
        raise NotAGroupError(f"{name}: the operations of {declared.tag} do not form a group: {exc}") from None


@lru_cache(maxsize=GROUP_CACHE)  # functools.lru_cache: thread-safe, no lock to inherit across fork
def _checked_group(
    rdtype: str, rshape: tuple, rbytes: bytes, tdtype: str, tshape: tuple, tbytes: bytes
) -> bool:
    """check_group of the exact arrays given as bytes; True (cached) when they form a group, else it raises."""
    check_group(
        np.frombuffer(rbytes, dtype=rdtype).reshape(rshape),
        np.frombuffer(tbytes, dtype=tdtype).reshape(tshape),
    )
    return True


def _gemmi_ops(ops) -> tuple[np.ndarray, np.ndarray]:
    """gemmi GroupOps (all operations, centrings included) as exact arrays over DEN."""
    gemmi = _gemmi()
    assert gemmi.Op.DEN == DEN
    rot = np.array([op.rot for op in ops], dtype=np.int64) // DEN
    translations = np.array([op.tran for op in ops], dtype=np.int64) % DEN
    return rot, translations


@lru_cache(maxsize=GROUP_CACHE)
def _hall_read_only(hall: str) -> tuple[np.ndarray, np.ndarray]:
    """``_gemmi_ops(gemmi.symops_from_hall(hall))`` as read-only arrays, remembered; gemmi's error if unreadable."""
    rot, translations = _gemmi_ops(_gemmi().symops_from_hall(hall))
    rot.setflags(write=False)
    translations.setflags(write=False)
    return rot, translations


def _hall_operations(hall: str) -> tuple[np.ndarray, np.ndarray]:
    """``_gemmi_ops(gemmi.symops_from_hall(hall))`` (new arrays; remembered); gemmi's error if unreadable."""
    rot, translations = _hall_read_only(hall)
    return rot.copy(), translations.copy()


def _symbol_operations(form: str, tag: str, value: str, name: str, params, code: str):
    """(rotations (n, 3, 3), translations (n, 3) over ``DEN``) of a Hall symbol, H-M symbol or number
    (``form``) read from ``tag``; new arrays.  CIFError naming the tag and value if it cannot be read."""
    kind, key = _symbol_setting(form, tag, value, name, params, code)
    if kind == "hall":
        return _hall_operations(key)
    return _database_ops(key)


def _symbol_number(form: str, tag: str, value: str, name: str, params, code: str) -> int | None:
    """``group_type(*_symbol_operations(...))[0]``, remembered per setting."""
    return _setting_number(_symbol_setting(form, tag, value, name, params, code))


@lru_cache(maxsize=GROUP_CACHE)
def _setting_number(setting: tuple) -> int | None:
    """The ITA number (spglib's ``group_type``) of a ``_symbol_setting``'s operations."""
    kind, key = setting
    return group_type(*(_hall_read_only(key) if kind == "hall" else _database_ops(key)))[0]


def _monoclinic_axis_symbol(number: int, params) -> str | None:
    """For a monoclinic number (3..15) given alone, the H-M symbol of its setting on the unique axis the
    cell angles show (ITA's cell choice 1: 'P 1 1 21/a' for No. 14 with gamma != 90), as the cell angles
    choose R axes; None for unique axis b (the number's standard setting) or any other group.  The unique
    axis is the one whose angle is not 90 degrees (beta first); a cell with all angles 90 keeps b."""
    if not 3 <= number <= 15:
        return None
    off = [abs(float(params[3 + i]) - 90.0) > 1e-3 for i in range(3)]  # alpha, beta, gamma
    if off[1] or not (off[0] or off[2]):
        return None
    axis = "c" if off[2] else "a"
    for sg in _gemmi().spacegroup_table():
        if sg.number == number and sg.qualifier in (axis, axis + "1"):
            return str(sg.hm)
    return None


def _symbol_setting(form: str, tag: str, value: str, name: str, params, code: str) -> tuple:
    """('hall', gemmi Hall symbol) or ('database', spglib Hall number) of a declared symbol or number."""
    gemmi = _gemmi()
    alpha, gamma = params[3], params[5]
    if form == "Hall symbol":
        try:
            _hall_read_only(value)
        except Exception as exc:  # gemmi: RuntimeError with the offending token
            raise CIFError(f"{name}: cannot read the Hall symbol {tag} {value!r}: {exc}") from None
        return "hall", value
    if form == "number":
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if not (1 <= number <= N_SPACE_GROUPS and number == int(number)):
            raise CIFError(f"{name}: {tag} {value!r} is not a space-group number 1..{N_SPACE_GROUPS}")
        value = (
            _monoclinic_axis_symbol(int(number), params) or gemmi.find_spacegroup_by_number(int(number)).hm
        )
        # (the cell angles choose R axes below)
    sg = gemmi.find_spacegroup_by_name(value, alpha=alpha, gamma=gamma, prefer=code)
    if sg is not None:  # gemmi's SpaceGroup.operations() is symops_from_hall(sg.hall)
        return "hall", sg.hall
    # spellings gemmi does not know (database styles such as 'P 21/c Z'): basisdb's own resolver
    try:
        from ._database import default_database

        hall = default_database().get_setting(value).hall_number
    except Exception as exc:  # SettingNotFoundError (unknown or ambiguous) or ValueError
        raise CIFError(f"{name}: cannot interpret the space-group symbol {tag} {value!r}: {exc}") from None
    return "database", hall


@cache
def _database_ops(hall: int) -> tuple[np.ndarray, np.ndarray]:
    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's OLD_ERROR_HANDLING notice
        sym = spglib.get_symmetry_from_database(int(hall))
    if sym is None:
        raise ValueError(f"spglib has no Hall number {hall}")
    rot = np.array(sym["rotations"], dtype=np.int64)
    translations = np.rint(np.asarray(sym["translations"]) * DEN).astype(np.int64) % DEN
    rot.setflags(write=False)
    translations.setflags(write=False)
    return rot, translations


# ------------------------------------------------------------------ the group of a set of operations
@cache
def _halls_of_number() -> dict[int, tuple[int, ...]]:
    import spglib

    out: dict[int, list[int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for hall in range(1, N_SETTINGS + 1):
            t = spglib.get_spacegroup_type(hall)
            if t is None:
                raise ValueError(f"spglib has no Hall number {hall}")
            out.setdefault(int(t.number), []).append(hall)
    return {k: tuple(v) for k, v in out.items()}


def _op_keys(rot, translations) -> frozenset:
    return frozenset(
        tuple(int(v) for v in r.ravel()) + tuple(int(v) % DEN for v in t) for r, t in zip(rot, translations)
    )


def group_type(rotations: np.ndarray, translations: np.ndarray) -> tuple[int | None, int | None]:
    """(ITA number, hall_number) of an exact operation set.

    The number is spglib's classification of the operations (any setting and origin); the
    hall_number is the spglib setting with exactly these operations, None if none has them.
    Results are cached (bounded, ``GROUP_CACHE`` entries) by the exact operations: one
    file asks up to four times for the same set (declared loop, its symbol, its number, featurize).
    """
    rot = np.asarray(rotations)
    tra = np.asarray(translations)
    if (
        rot.ndim != 3
        or rot.shape[1:] != (3, 3)
        or tra.shape != (len(rot), 3)
        or rot.dtype.kind not in "iu"
        or tra.dtype.kind not in "iu"
    ):
        return _group_type_uncached(rotations, translations)
    return _group_type_exact(rot.dtype.str, rot.shape, rot.tobytes(), tra.dtype.str, tra.shape, tra.tobytes())


@lru_cache(maxsize=GROUP_CACHE)
def _group_type_exact(
    rdtype: str, rshape: tuple, rbytes: bytes, tdtype: str, tshape: tuple, tbytes: bytes
) -> tuple[int | None, int | None]:
    """group_type of the exact arrays given as bytes (in their order), through the order-free cache."""
    rot = np.frombuffer(rbytes, dtype=rdtype).reshape(rshape)
    tra = np.frombuffer(tbytes, dtype=tdtype).reshape(tshape)
    ops = np.concatenate([rot.reshape(-1, 9), tra], axis=1).astype(np.int64)
    ops = ops[np.lexsort(ops.T[::-1])]  # order-free key: the sorted operations (duplicates kept)
    return _group_type_cached(ops.tobytes())


@lru_cache(maxsize=GROUP_CACHE)  # functools.lru_cache: thread-safe, no lock to inherit across fork
def _group_type_cached(key: bytes) -> tuple[int | None, int | None]:
    ops = np.frombuffer(key, dtype=np.int64).reshape(-1, 12)
    return _group_type_uncached(ops[:, :9].reshape(-1, 3, 3), ops[:, 9:])


def _group_type_uncached(rotations: np.ndarray, translations: np.ndarray) -> tuple[int | None, int | None]:
    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            t = spglib.get_spacegroup_type_from_symmetry(
                np.ascontiguousarray(rotations, dtype=np.intc),
                np.asarray(translations, dtype=np.float64) / DEN,
            )
        except Exception:  # spglib.SpglibError with the new error handling
            t = None
    if t is None:
        return None, None
    number = int(t.number)
    keys = _op_keys(rotations, translations)
    for hall in _halls_of_number().get(number, ()):
        if _database_op_keys(hall) == keys:
            return number, hall
    return number, None


@cache  # at most N_SETTINGS entries
def _database_op_keys(hall: int) -> frozenset:
    return _op_keys(*_database_ops(hall))


def _cross_check(declared: DeclaredSymmetry, block, name: str, params, text: str | None = None) -> None:
    """Warn when the operation loop and a symbol or number in the same file name different group types."""
    number = code = None
    for tags, form in ((_HALL, "Hall symbol"), (_HM, "H-M symbol"), (_NUMBER, "number")):
        found = _first(block, tags, text)
        if not found:
            continue
        if code is None:
            code = _coordinate_code(block, text)
        try:
            other = _symbol_number(form, found[0], found[1][0], name, params, code)
        except (CIFError, ValueError, LookupError):
            continue  # only the form used must be readable
        if number is None:
            number = group_type(declared.rotations, declared.translations)[0]
        if other is not None and number is not None and other != number:
            warn(
                SymmetryMismatchWarning(
                    f"{name}: {declared.describe()} form space group No. {number}, but {found[0]} {found[1][0]!r} "
                    f"is No. {other}; the operations are used"
                )
            )
            return


# ------------------------------------------------------------------ expansion
_IDENTITY = np.eye(3, dtype=np.int64).tobytes()


def _expand(frac, numbers, labels, mult, rot, translations, lattice, name):
    """Every image of every listed site; images of one site closer than MERGE_DISTANCE are one atom."""
    if len(rot) == 1 and len(frac):  # one operation (a file in P 1): one image per site, nothing to merge
        if rot.tobytes() == _IDENTITY and rot.dtype == np.int64 and not any(translations.tobytes()):
            # translations all zero bytes (0, or +0.0): x*1 + (+-0) + (+-0) + 0.0 is x (and +0.0 for
            # x = -0.0), the same as the product below
            y = (frac + 0.0) % 1.0
        else:
            y = (frac @ rot[0].T + translations[0] / DEN) % 1.0  # exactly rot @ x + t of every site
        for i in range(len(frac) if mult.count(1) != len(mult) else 0):
            if mult[i] is not None and mult[i] != 1:
                warn(
                    CIFWarning(
                        f"{name}: site {labels[i]} gives 1 atoms, but its "
                        f"_atom_site_symmetry_multiplicity is {mult[i]}"
                    )
                )
        y[y >= 1.0] = 0.0
        return y, np.asarray(numbers, dtype=np.int64).copy(), list(labels), 0, 0.0, np.arange(len(frac))
    tra = translations / DEN
    pos, num, lab, site = [], [], [], []
    merged, worst = 0, 0.0
    for i, x in enumerate(frac):
        images = (rot @ x + tra) % 1.0
        d = images[:, None, :] - images[None, :, :]
        d -= np.rint(d)
        dist = np.linalg.norm(d @ lattice, axis=-1)  # (g, g) Cartesian distances (nearest image)
        kept: list[int] = []
        for k in range(len(images)):
            close = [j for j in kept if dist[k, j] <= MERGE_DISTANCE]
            if close:
                merged += 1
                worst = max(worst, float(min(dist[k, j] for j in close)))
            else:
                kept.append(k)
        if mult[i] is not None and mult[i] != len(kept):
            warn(
                CIFWarning(
                    f"{name}: site {labels[i]} gives {len(kept)} atoms, but its "
                    f"_atom_site_symmetry_multiplicity is {mult[i]}"
                )
            )
        y = images[kept]
        y[y >= 1.0] = 0.0
        pos.append(y)
        num += [int(numbers[i])] * len(kept)
        lab += [labels[i]] * len(kept)
        site += [i] * len(kept)
    return (
        np.concatenate(pos).reshape(-1, 3),
        np.array(num, dtype=np.int64),
        lab,
        merged,
        worst,
        np.array(site, dtype=np.int64),
    )


def crystal_from_small_structure(st) -> CIFCrystal:
    """A gemmi ``SmallStructure`` (its asymmetric unit and symmetry) expanded by the same rules as a CIF.

    The symmetry is ``st.symops`` (the file's operation loop) when present, else ``st.spacegroup`` (for a
    symbol that names no origin of a two-origin group, the origin by ``_origin_choice``), else
    ``st.spacegroup_number`` read by the CIF rule for a number.
    """
    name = f"gemmi SmallStructure {st.name!r}"
    cell = st.cell
    lattice = lattice_from_parameters(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    if not len(st.sites):
        raise CIFError(f"{name}: no atoms")
    frac, numbers, labels = [], [], []
    for i, site in enumerate(st.sites):
        label = site.label or f"site {i + 1}"
        if site.occ < 1.0 - 1e-3:
            raise CIFError(
                f"{name}: partial occupancies (a disordered structure) are not supported "
                f"({label}: occupancy {site.occ:g})"
            )
        z = int(site.element.atomic_number)
        if z == 0:  # gemmi's X: a dummy 'X', 'T' or an unknown symbol, decided by the one rule
            try:
                z = atomic_number(site.type_symbol or site.label)
            except ValueError as exc:
                raise CIFError(f"{name}: {label}: {exc}") from None
        frac.append([site.fract.x, site.fract.y, site.fract.z])
        numbers.append(z)
        labels.append(label)
    declared = None
    params = (cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)

    def origin(d: DeclaredSymmetry) -> DeclaredSymmetry:  # a SmallStructure keeps no multiplicities
        return _origin_choice(d, np.array(frac), numbers, labels, [None] * len(labels), lattice, name, params)

    if len(st.symops):
        rot, translations = _operations(list(st.symops), "symops", name, magnetic=False)
        declared = DeclaredSymmetry("symops", "; ".join(st.symops), "operations", rot, translations)
        _check(declared, name)
    elif st.spacegroup is None and int(getattr(st, "spacegroup_number", 0) or 0) > 0:
        # gemmi gives no space group for a file with only _space_group_IT_number: the CIF rule for a number
        value = str(int(st.spacegroup_number))
        rot, translations = _symbol_operations("number", "spacegroup_number", value, name, params, "")
        declared = origin(DeclaredSymmetry("spacegroup_number", value, "number", rot, translations))
    elif st.spacegroup is not None:
        rot, translations = _gemmi_ops(st.spacegroup.operations())
        declared = DeclaredSymmetry("spacegroup", st.spacegroup.xhm(), "H-M symbol", rot, translations)
        hm = (st.spacegroup_hm or "").strip()
        if hm and ":" not in hm:  # gemmi's reader picked an origin the symbol does not name: the CIF rule
            plain = DeclaredSymmetry("spacegroup_hm", hm, "H-M symbol", rot, translations)
            chosen = origin(plain)
            if chosen is not plain:
                declared = DeclaredSymmetry(
                    "spacegroup", hm, "H-M symbol", chosen.rotations, chosen.translations
                )
    rot, translations = (
        (declared.rotations, declared.translations)
        if declared is not None
        else (np.eye(3, dtype=np.int64)[None], np.zeros((1, 3), dtype=np.int64))
    )
    pos, num, lab, merged, worst, _ = _expand(
        np.array(frac, dtype=np.float64),
        np.array(numbers, dtype=np.int64),
        labels,
        [None] * len(labels),
        rot,
        translations,
        lattice,
        name,
    )
    return CIFCrystal(
        lattice=lattice,
        positions=pos,
        numbers=num,
        labels=tuple(lab),
        name=name,
        block=st.name,
        declared=declared,
        merged=merged,
        max_merge_distance=worst,
        moment_error=f"{name}: magnetic moments are not read from a gemmi SmallStructure; "
        "pass the magnetic CIF's path or text",
    )


# ------------------------------------------------------------------ magnetic moments


def _moments(
    block, name: str, lattice, frac, labels, site, pos, declared, text: str | None = None
) -> np.ndarray:
    """(n, 3) Cartesian moments (muB) of the expanded atoms (module docstring); CIFError if unusable.

    ``text``: the lower-cased CIF text or None (``_first``)."""
    other = [
        tag
        for tag in (_MOMENT_LABELS if _may_hold(_MOMENT_LABELS, text) else ())
        if block.find_values(tag) is not None and len(block.find_values(tag))
    ]
    table = None
    for prefix in _MOMENT_PREFIXES if other else ():  # no label column: no moment table
        t = block.find(prefix, ["label", "crystalaxis_x", "crystalaxis_y", "crystalaxis_z"])
        if len(t):
            table = t
            break
    if table is None:
        if other:
            raise CIFError(
                f"{name}: {other[0]} is given without _atom_site_moment.crystalaxis_x/_y/_z; "
                "only crystal-axis moment components are read"
            )
        raise CIFError(f"{name}: no magnetic moments (no _atom_site_moment.label / crystalaxis_x/_y/_z loop)")
    if declared is None:
        ops = (np.eye(3, dtype=np.int64)[None], np.zeros((1, 3), dtype=np.int64), np.ones(1, dtype=np.int64))
    elif declared.time_reversals is None:
        raise CIFError(
            f"{name}: the moments need the magnetic operations (_space_group_symop_magn_operation.xyz, "
            f"with time reversal); the file declares {declared.describe()}"
        )
    else:
        ops = declared.time_reversals
    rot, tra_num, theta = ops
    tra = tra_num / DEN
    site_of: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        site_of.setdefault(label, []).append(i)
    norms = np.linalg.norm(lattice, axis=1)
    site_moment = np.zeros((len(frac), 3))
    seen = set()
    for r in range(len(table)):
        label = _text(table[r][0])
        if label is None or label not in site_of:
            raise CIFError(f"{name}: _atom_site_moment label {label!r} is not an _atom_site_label")
        if len(site_of[label]) > 1:
            raise CIFError(f"{name}: _atom_site_moment label {label!r} names {len(site_of[label])} sites")
        if label in seen:
            raise CIFError(f"{name}: _atom_site_moment label {label!r} is given twice")
        seen.add(label)
        m = np.array(
            [
                _number(table[r][c], f"_atom_site_moment crystalaxis_{'xyz'[c - 1]} of {label}", name)
                for c in (1, 2, 3)
            ]
        )
        site_moment[site_of[label][0]] = (m / norms) @ lattice  # sum_i m_i a_i / |a_i|: Cartesian
    Linv = np.linalg.inv(lattice)
    W = np.einsum("ji,gjk,kl->gil", lattice, rot.astype(np.float64), Linv.T)  # L^T R L^-T
    sign = theta * np.rint(np.linalg.det(rot.astype(np.float64))).astype(np.int64)
    out = np.zeros((len(pos), 3))
    for a in range(len(pos)):
        i = int(site[a])
        v = site_moment[i]
        d = (rot @ frac[i] + tra) - pos[a]
        d -= np.rint(d)
        hit = np.linalg.norm(d @ lattice, axis=1) <= MERGE_DISTANCE
        images = sign[hit, None] * (W[hit] @ v)
        mean = images.mean(axis=0)
        spread = float(np.linalg.norm(images - mean, axis=1).max(initial=0.0))
        if spread > MOMENT_TOLERANCE:
            g = np.flatnonzero(hit)[int(np.argmax(np.linalg.norm(images - images[0], axis=1)))]
            from ._ops import format_triplet

            op = f"{format_triplet(rot[g], np.rint(tra[g] * DEN).astype(np.int64))},{int(theta[g]):+d}"
            raise CIFError(
                f"{name}: the moment of {labels[i]} is not allowed by the declared magnetic operations (axial "
                f"vector, m' = theta det(R) R m): {op} maps {labels[i]} onto the atom at {np.round(pos[a], 4).tolist()} "
                f"with moment {(np.round(images[np.flatnonzero(hit) == g][0] @ Linv * norms, 4) + 0.0).tolist()} (crystal-axis "
                f"components, muB) instead of {(np.round(images[0] @ Linv * norms, 4) + 0.0).tolist()}"
                f"{_bns_note(block, ops, lattice)}"
            )
        out[a] = mean
    out[np.abs(out) < 1e-12] = 0.0
    return out


def _bns_note(block, ops, lattice) -> str:
    """'; the operations form BNS ... while the file names ...' (empty when unknown or the same)."""
    try:
        import spglib

        rot, tra, theta = ops
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = spglib.get_magnetic_spacegroup_type_from_symmetry(
                np.ascontiguousarray(rot, dtype=np.intc),
                np.asarray(tra, dtype=np.float64) / DEN,
                np.asarray(theta == -1, dtype=np.intc),
                lattice=lattice,
            )
        if t is None:  # not a magnetic space group
            return ""
        found = str(t.bns_number)
    except Exception:
        return ""
    named = _first(block, ("_space_group_magn.number_BNS", "_space_group.magn_number_BNS"))
    if named and named[1][0] != found:
        return f"; the operations form BNS {found}, while {named[0]} says {named[1][0]!r}"
    return f"; the operations form BNS {found}"
