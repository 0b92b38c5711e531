"""Chemical species: element symbols, CIF type symbols and labels to atomic numbers.

One rule for every input route (arrays of symbols, CIF files, ASE ``Atoms``,
pymatgen ``Structure``, gemmi ``SmallStructure``):

- An element symbol, a CIF type symbol or a site label reads as gemmi reads it
  (``split_element_and_charge``): the first two characters name the element when
  the second is a letter ('Fe2+' -> Fe, 'Ca1' -> Ca, 'CA' -> Ca, 'Cl1-' -> Cl),
  else the first ('O2-' -> O, 'C1A' -> C, 'N1' -> N); case is ignored.  No
  guessing beyond that: 'Ow1' is refused (gemmi gives no element either).
- 'D' and 'T' (deuterium, tritium) are hydrogen, Z = 1.
- Dummy or vacancy species are Z = 0: the symbol 'X' (ASE's dummy atom, pymatgen's
  ``DummySpecies('X')``, a CIF type symbol 'X'), ASE atoms with atomic number 0, and
  every pymatgen ``DummySpecies`` whatever its symbol (pymatgen's own atomic number
  for them is a string hash that changes from process to process).  They are kept
  and count as one species of their own (label 0) in symmetry detection; remove
  them first if they should not.
"""

from __future__ import annotations

__all__ = ["ELEMENTS", "atomic_number", "is_dummy_species", "rarest_species"]

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
#: element symbol (lower case) -> atomic number; hydrogen isotopes and the dummy species included
_Z = {s.lower(): z for z, s in enumerate(ELEMENTS)}
_Z.update({"d": 1, "t": 1})


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol, CIF type symbol or site label; ValueError if unknown.

    'Na', 'na', 'Na1+', 'Fe2+', 'Fe1', 'O2-', 'Cl1-' -> the element; 'D', 'T' -> 1;
    'X' (a dummy or vacancy) -> 0.  See the module docstring for the rule.
    """
    text = str(symbol).strip()
    if text[:1].isalpha():
        head = text[:2] if len(text) > 1 and text[1].isalpha() else text[:1]
        z = _Z.get(head.lower())
        if z is not None:
            return z
    raise ValueError(f"unknown element symbol {symbol!r}")


def is_dummy_species(species) -> bool:
    """True for a pymatgen ``DummySpecies`` (duck-typed by class name; pymatgen is not imported)."""
    return any(cls.__name__ in ("DummySpecies", "DummySpecie") for cls in type(species).__mro__)


def rarest_species(labels: list[int]) -> int:
    """The species label with the fewest atoms in ``labels`` (ties: the smallest label).

    The polar-origin rule of the canonical presentation (docs/STRUCTURES.md: "an atom of the rarest
    species at 0 along every polar axis"), of its magnetic form, and the anchor of the LowSymmetryWarning
    screen's candidate translations.  ``labels``: a non-empty list of ints (atomic numbers or labels).
    """
    counts: dict[int, int] = {}
    for v in labels:
        counts[v] = counts.get(v, 0) + 1
    return min(counts, key=lambda s: (counts[s], s))
