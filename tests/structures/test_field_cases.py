"""The field cases of ../shared/field_cases/README.md: one test per row, asserting the right value.

"Right value" is what gemmi (its CIF small-structure reader, ``find_spacegroup_by_name``)
and cctbx give, compared by operation sets.  The files are read from ../shared/field_cases
relative to the repository; the tests skip cleanly when that folder is absent.

This file holds the rows of the sections "CIF files" and "Species in Python objects".
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import NotAGroupError, SnappedTranslationWarning, SymmetryMismatchWarning, featurize

FIELD = Path(__file__).resolve().parents[3] / "shared" / "field_cases"


def case(name: str) -> Path:
    path = FIELD / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path


def gemmi_unit_cell(path: Path):
    """gemmi's own reading (its merge distance is 0.5 A; fine for these files): (n atoms, atomic numbers)."""
    gemmi = pytest.importorskip("gemmi")
    st = gemmi.make_small_structure_from_block(gemmi.cif.read(str(path)).sole_block())
    sites = st.get_all_unit_cell_sites()
    return len(sites), sorted(s.element.atomic_number for s in sites)


# ------------------------------------------------------------------ CIF files
def test_mos2_rounded_thirds():
    """P 6_3/m m c with 1/3, 2/3 written 0.3333, 0.6667: No. 194 (hall 488), or at least a warning that
    the detected group differs from the declared one."""
    path = case("mos2_rounded_thirds.cif")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = featurize(path)
    assert r.declared_number == 194 and r.declared_hall_number == 488 and r.n_atoms == 6
    mismatch = [w for w in seen if issubclass(w.category, SymmetryMismatchWarning)]
    assert r.hall_number == 488 or (mismatch and "No. 194" in str(mismatch[0].message)), (
        r.hall_number,
        mismatch,
    )
    # the declared group is found at a tolerance the rounding (~1e-4 A here) fits in
    assert featurize(path, symprec=1e-3).hall_number == 488
    if r.number != 194:  # a pipeline can refuse the file
        with warnings.catch_warnings(), pytest.raises(basisdb.SymmetryMismatchError, match=r"No\. 194"):
            warnings.simplefilter("ignore")  # the low-symmetry notice, if any
            featurize(path, on_mismatch="raise")


def test_p61_broken_symops():
    """Two operations lost their screw translations: NotAGroupError naming the failing product, as
    basis_from_operations gives for the same loop."""
    path = case("p61_broken_symops.cif")
    gemmi = pytest.importorskip("gemmi")
    ops = list(gemmi.cif.read(str(path)).sole_block().find_values("_symmetry_equiv_pos_as_xyz"))
    with pytest.raises(NotAGroupError) as direct:
        basisdb.basis_from_operations([gemmi.cif.as_string(o) for o in ops], kmax=2)
    assert "the product of" in str(direct.value)
    with pytest.raises(NotAGroupError) as info:
        featurize(path)
    assert str(direct.value) in str(info.value) and "_symmetry_equiv_pos_as_xyz" in str(info.value)
    with pytest.raises(NotAGroupError):
        basisdb.read_cif(path)


def test_p31_decimal_translations():
    """Translations written 0.333+z, 0.667+z: P 3_1 (hall 431), with a SnappedTranslationWarning."""
    path = case("p31_decimal_translations.cif")
    with pytest.warns(SnappedTranslationWarning, match=r"0\.333 -> 1/3, 0\.667 -> 2/3"):
        r = featurize(path)
    assert (r.hall_number, r.declared_hall_number, r.n_atoms) == (431, 431, 6)
    gemmi = pytest.importorskip("gemmi")
    assert gemmi.find_spacegroup_by_name("P 31").number == r.number


def test_mnf2_magnetic():
    """The magnetic operation loop generates the atoms: 6 atoms, P 4_2/m n m (No. 136)."""
    path = case("mnf2_magnetic.mcif")
    r = featurize(path)
    assert (r.n_atoms, r.number, r.hall_number) == (6, 136, 419)
    assert sorted(r.numbers.tolist()) == [9, 9, 9, 9, 25, 25]
    assert r.declared_number == 136 and "_space_group_symop_magn_operation.xyz" in r.declared


def test_deuterated_p43m():
    """Type symbol D: hydrogen (Z = 1); the same atoms as gemmi's reader."""
    path = case("deuterated_p-43m.cif")
    r = featurize(path)
    assert sorted(r.numbers.tolist()) == [1, 1, 1, 1, 7, 35]
    assert (r.number, r.declared_number) == (215, 215)
    n, z = gemmi_unit_cell(path)
    assert (n, z) == (r.n_atoms, sorted(r.numbers.tolist()))


# ------------------------------------------------------------------ species in Python objects
_DUMMY = """
import warnings, numpy as np, basisdb
warnings.simplefilter("ignore")
import pymatgen.core as pmg
from pymatgen.core.periodic_table import DummySpecies
s = pmg.Structure(pmg.Lattice.cubic(4.2), [DummySpecies("X"), "Cs", "Cl"], [[0, 0, 0.5], [0, 0, 0], [0.5, 0.5, 0.5]])
try:
    r = basisdb.featurize(s, min_distance=0.1)
    print("ok", r.numbers.tolist(), r.hall_number, repr(np.round(r.features, 9).tobytes().hex()[:64]))
except Exception as exc:
    print("error", type(exc).__name__, exc)
"""


def test_pymatgen_dummy_species_same_in_every_process():
    """A DummySpecies("X") site: the same answer whatever PYTHONHASHSEED (it is species 0)."""
    pytest.importorskip("pymatgen.core")
    answers = set()
    for seed in ("0", "1", "2", "4242"):
        out = subprocess.run(
            [sys.executable, "-c", _DUMMY],
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        answers.add(out.stdout.strip())
    assert len(answers) == 1, answers
    answer = answers.pop()
    assert answer.startswith("ok [0, 55, 17] "), answer


def test_arrays_with_deuterium():
    """(lattice, positions, ["D", "Br"]): D is hydrogen."""
    r = featurize((np.eye(3) * 4.06, [[0.15, 0.15, 0.15], [0.5, 0.5, 0.5]], ["D", "Br"]))
    assert r.numbers.tolist() == [1, 35]
    ref = featurize((np.eye(3) * 4.06, [[0.15, 0.15, 0.15], [0.5, 0.5, 0.5]], [1, 35]))
    assert np.array_equal(r.features, ref.features)
