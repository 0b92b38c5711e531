"""Reading crystal structures from CIF: gemmi, ASE or a small built-in parser.

``read_cif(source, reader=None)`` returns ``(lattice, positions, numbers)``:
lattice (3, 3) float64 with the cell vectors a, b, c as rows (Angstrom),
positions (n, 3) float64 fractional coordinates of every atom of the unit cell
(the symmetry-expanded content), numbers (n,) int64 atomic numbers.

``source`` is a path or the text of a CIF (a string with a newline).  The
reader is gemmi when it is installed, else ASE, else the built-in parser
(``reader="gemmi" | "ase" | "builtin"`` forces one).  The built-in parser
understands what crystallographic CIFs usually hold: the six cell parameters,
the symmetry-operation loop (``_space_group_symop_operation_xyz`` or
``_symmetry_equiv_pos_as_xyz``; without one the file must be in P 1), and the
``_atom_site_`` loop with fractional coordinates.  Uncertainties such as
``0.1234(5)`` are dropped.  Partial occupancies are refused (disordered
structures have no single space group).
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np

from ._ops import DEN, parse_triplets

__all__ = ["read_cif", "ELEMENTS", "atomic_number", "CIFError"]

# fmt: off
ELEMENTS = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe",
    "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu",
    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn",
    "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr",
    "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)
# fmt: on
_Z = {s.lower(): z for z, s in enumerate(ELEMENTS) if z}
_LEADING_SYMBOL = re.compile(r"^([A-Za-z]{1,2})")


class CIFError(ValueError):
    """A CIF that cannot be turned into an ordered crystal structure."""


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol ('Na', 'na', 'Na1+', 'O2-', 'Fe3'); ValueError if unknown."""
    text = str(symbol).strip()
    if text.lower() in _Z:
        return _Z[text.lower()]
    m = _LEADING_SYMBOL.match(text)
    if m:
        for cand in (m.group(1), m.group(1)[:1]):
            if cand.lower() in _Z:
                return _Z[cand.lower()]
    raise ValueError(f"unknown element symbol {symbol!r}")


def lattice_from_parameters(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """Cell vectors as rows: a along x, b in the xy plane (right-handed)."""
    al, be, ga = np.radians([alpha, beta, gamma])
    cx = c * np.cos(be)
    cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
    cz2 = c * c - cx * cx - cy * cy
    if not np.isfinite(cz2) or cz2 <= 0:
        raise CIFError(f"cell parameters {a, b, c, alpha, beta, gamma} do not describe a cell")
    return np.array([[a, 0.0, 0.0], [b * np.cos(ga), b * np.sin(ga), 0.0], [cx, cy, np.sqrt(cz2)]])


# ------------------------------------------------------------------ sources
def _load_text(source) -> tuple[str, str]:
    """(text, name) of a path or of CIF text."""
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and "\n" in source):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such CIF file: {str(path)!r}")
        return path.read_text(encoding="utf-8", errors="replace"), str(path)
    if isinstance(source, str):
        return source, "<CIF text>"
    raise TypeError(f"a CIF source must be a path or CIF text, got {type(source).__name__}")


def read_cif(source, reader: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an ordered crystal structure from a CIF path or CIF text.

    Returns ``(lattice (3,3) rows a,b,c in Angstrom, fractional positions (n,3), atomic numbers (n,))``
    of the full unit-cell content.  ``reader``: None (gemmi, else ASE, else built-in),
    'gemmi', 'ase' or 'builtin'.  Raises CIFError for a CIF without cell or atoms,
    or with partial occupancies.
    """
    text, name = _load_text(source)
    low = text.lower()
    if "_atom_site_fract_x" not in low and "_atom_site_cartn_x" not in low:
        raise CIFError(f"{name}: the CIF has no atoms (no _atom_site_fract_x loop)")
    if reader is None:
        for cand in ("gemmi", "ase"):
            try:
                __import__(cand)
            except ImportError:
                continue
            reader = cand
            break
        else:
            reader = "builtin"
    if reader == "gemmi":
        cell = _read_gemmi(text, name)
    elif reader == "ase":
        cell = _read_ase(text, name)
    elif reader == "builtin":
        cell = _read_builtin(text, name)
    else:
        raise ValueError(f"reader must be None, 'gemmi', 'ase' or 'builtin', got {reader!r}")
    lattice, positions, numbers = cell
    if len(numbers) == 0:
        raise CIFError(f"{name}: the CIF has no atoms")
    return (np.asarray(lattice, dtype=np.float64), np.asarray(positions, dtype=np.float64).reshape(-1, 3),
            np.asarray(numbers, dtype=np.int64))


def _read_gemmi(text: str, name: str):
    import gemmi

    try:
        doc = gemmi.cif.read_string(text)
    except Exception as exc:  # gemmi raises plain ValueError/RuntimeError with its own message
        raise CIFError(f"{name}: gemmi cannot parse the CIF: {exc}") from None
    blocks = [b for b in doc if b.find_value("_cell_length_a") is not None] or list(doc)
    if not blocks:
        raise CIFError(f"{name}: no data block")
    st = gemmi.make_small_structure_from_block(blocks[0])
    if st.cell.volume <= 0 or not np.isfinite(st.cell.volume) or st.cell.a <= 1e-9:
        raise CIFError(f"{name}: missing or invalid cell parameters")
    if any(s.occ < 1.0 - 1e-3 for s in st.sites):
        raise CIFError(f"{name}: partial occupancies (a disordered structure) are not supported")
    sites = st.get_all_unit_cell_sites()
    lattice = np.array(st.cell.orth.mat, dtype=np.float64).T
    pos = np.array([[s.fract.x, s.fract.y, s.fract.z] for s in sites], dtype=np.float64).reshape(-1, 3)
    nums = np.array([s.element.atomic_number for s in sites], dtype=np.int64)
    if np.any(nums <= 0):
        raise CIFError(f"{name}: a site has an unknown element")
    return lattice, pos, nums


def _read_ase(text: str, name: str):
    import io

    import ase.io

    low = text.lower()
    if not any(t in low for t in ("_symmetry_space_group_name_h-m", "_space_group_name_h-m_alt", "_space_group_it_number",
                                  "_symmetry_int_tables_number", "_space_group_name_hall", "_symmetry_space_group_name_hall")):
        # ASE needs a space-group name even when the operations are listed; it then uses the operations
        text = re.sub(r"(?m)^(data_\S*)", r"\1\n_symmetry_space_group_name_H-M 'P 1'", text, count=1)
    try:
        atoms = ase.io.read(io.StringIO(text), format="cif")
    except Exception as exc:
        raise CIFError(f"{name}: ASE cannot read the CIF: {exc}") from None
    occ = atoms.info.get("occupancy")
    if occ and any(v < 1.0 - 1e-3 for d in occ.values() for v in d.values()):
        raise CIFError(f"{name}: partial occupancies (a disordered structure) are not supported")
    return np.array(atoms.cell[:], dtype=np.float64), atoms.get_scaled_positions(wrap=False), atoms.numbers


# ------------------------------------------------------------------ built-in
def _tokens(text: str):
    """CIF tokens: (value, is_tag); semicolon text fields become one value."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(";"):
            field = [line[1:]]
            i += 1
            while i < len(lines) and not lines[i].startswith(";"):
                field.append(lines[i])
                i += 1
            i += 1
            yield "\n".join(field), False
            continue
        i += 1
        stripped = line.split("#", 1)[0] if "'" not in line and '"' not in line else line
        if not stripped.strip() or stripped.lstrip().startswith("#"):
            continue
        try:
            parts = shlex.split(stripped, comments=False, posix=True)
        except ValueError:
            parts = stripped.split()
        for p in parts:
            if p.startswith("#"):
                break
            yield p, p.startswith("_") and " " not in p


def _parse_blocks(text: str) -> list[tuple[dict, list[tuple[list[str], list[str]]]]]:
    """Data blocks as (single-valued tags, loops [(tags, flat values)])."""
    blocks: list = []
    items: dict = {}
    loops: list = []
    toks = list(_tokens(text))
    i = 0
    while i < len(toks):
        tok, is_tag = toks[i]
        low = tok.lower()
        if not is_tag and low.startswith("data_"):
            if items or loops:
                blocks.append((items, loops))
            items, loops = {}, []
            i += 1
        elif not is_tag and low == "loop_":
            i += 1
            tags = []
            while i < len(toks) and toks[i][1]:
                tags.append(toks[i][0].lower())
                i += 1
            vals = []
            while i < len(toks) and not toks[i][1] and toks[i][0].lower() not in ("loop_",) and not toks[i][0].lower().startswith("data_"):
                vals.append(toks[i][0])
                i += 1
            loops.append((tags, vals))
        elif is_tag:
            if i + 1 < len(toks) and not toks[i + 1][1]:
                items[low] = toks[i + 1][0]
                i += 2
            else:
                i += 1
        else:
            i += 1
    if items or loops:
        blocks.append((items, loops))
    return blocks


def _number(text: str, what: str) -> float:
    t = re.sub(r"\(\d+\)$", "", text.strip())
    if t in ("?", "."):
        raise CIFError(f"{what} is missing ({text!r})")
    try:
        return float(t)
    except ValueError:
        raise CIFError(f"{what} is not a number: {text!r}") from None


def _loop_table(loops, wanted: str):
    for tags, vals in loops:
        if any(t.startswith(wanted) for t in tags):
            if len(vals) % len(tags):
                raise CIFError(f"loop with {tags[0]} has {len(vals)} values for {len(tags)} columns")
            rows = [vals[k : k + len(tags)] for k in range(0, len(vals), len(tags))]
            return {t: [r[j] for r in rows] for j, t in enumerate(tags)}
    return None


def _read_builtin(text: str, name: str):
    blocks = _parse_blocks(text)
    block = next((b for b in blocks if "_cell_length_a" in b[0]), None)
    if block is None:
        raise CIFError(f"{name}: no data block with cell parameters")
    items, loops = block
    params = [_number(items.get(f"_cell_{k}", "?"), f"_cell_{k}") for k in
              ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma")]
    lattice = lattice_from_parameters(*params)
    ops = None
    for tag in ("_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz"):
        table = _loop_table(loops, tag)
        if table is not None and tag in table:
            ops = table[tag]
            break
        if tag in items:
            ops = [items[tag]]
            break
    if ops is None:
        hm = items.get("_symmetry_space_group_name_h-m", items.get("_space_group_name_h-m_alt", "P 1"))
        if hm.replace(" ", "").upper() not in ("P1", "?", "."):
            raise CIFError(f"{name}: no symmetry-operation loop and space group {hm!r} is not P 1; "
                           "install gemmi or ASE to read it")
        ops = ["x,y,z"]
    rot, t_num = parse_triplets(ops)
    tra = t_num / DEN
    sites = _loop_table(loops, "_atom_site_fract_")
    if sites is None or not all(f"_atom_site_fract_{c}" in sites for c in "xyz"):
        raise CIFError(f"{name}: the CIF has no atoms (no _atom_site_fract_x/y/z loop)")
    n = len(sites["_atom_site_fract_x"])
    species = sites.get("_atom_site_type_symbol") or sites.get("_atom_site_label")
    if species is None:
        raise CIFError(f"{name}: atom sites have neither _atom_site_type_symbol nor _atom_site_label")
    occ = sites.get("_atom_site_occupancy", ["1"] * n)
    frac = np.array([[_number(sites[f"_atom_site_fract_{c}"][i], f"_atom_site_fract_{c}") for c in "xyz"] for i in range(n)])
    if n and np.any([_number(o, "_atom_site_occupancy") < 1 - 1e-3 for o in occ if o not in ("?", ".")]):
        raise CIFError(f"{name}: partial occupancies (a disordered structure) are not supported")
    try:
        z = [atomic_number(s) for s in species]
    except ValueError as exc:
        raise CIFError(f"{name}: {exc}") from None
    # every image of every site; an image closer than 0.01 Angstrom to an earlier atom of the same
    # element is the same atom (a site on a special position, or a site listed twice)
    images = (np.einsum("gij,nj->ngi", rot, frac) + tra[None]) % 1.0  # (n, g, 3)
    pos = images.reshape(-1, 3)
    num = np.repeat(np.asarray(z, dtype=np.int64), len(rot))
    keep = np.ones(len(pos), dtype=bool)
    for i in range(len(pos)):
        if keep[i]:
            d = pos[i + 1 :] - pos[i]
            d -= np.rint(d)
            close = (np.sqrt(np.einsum("ij,jk,ik->i", d, lattice @ lattice.T, d)) < 1e-2) & (num[i + 1 :] == num[i])
            keep[i + 1 :][close] = False
    return lattice, pos[keep], num[keep]
