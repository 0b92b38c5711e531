"""CIF reading (basisdb._cif): gemmi parses, the declared symmetry is honoured, species follow one rule.

Reading order, tolerances and warnings are documented in docs/STRUCTURES.md (section 1, "Reading
CIF files"); every refusal here also has a row in docs/BAD_INPUT.md (tests/structures/test_bad_input.py).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

gemmi = pytest.importorskip("gemmi")

import basisdb  # noqa: E402
from basisdb import (  # noqa: E402
    CIFError,
    CIFWarning,
    NotAGroupError,
    SnappedTranslationWarning,
    SymmetryMismatchError,
    SymmetryMismatchWarning,
    featurize,
)
from basisdb._cif import MERGE_DISTANCE, SNAP_TOLERANCE, crystal_from_small_structure, load_cif, read_cif  # noqa: E402
from basisdb._species import atomic_number  # noqa: E402

#: rutile TiO2, P 4_2/m n m (Burdett et al., JACS 109 (1987) 3639): 2 Ti + 4 O per cell
RUTILE_CELL = (4.5937, 4.5937, 2.9587, 90, 90, 90)
RUTILE_ATOMS = [("Ti1", "Ti", 0, 0, 0), ("O1", "O", 0.30478, 0.30478, 0)]
RUTILE_OPS = [
    "x,y,z",
    "-x,-y,z",
    "-y+1/2,x+1/2,z+1/2",
    "y+1/2,-x+1/2,z+1/2",
    "-x+1/2,y+1/2,-z+1/2",
    "x+1/2,-y+1/2,-z+1/2",
    "y,x,-z",
    "-y,-x,-z",
    "-x,-y,-z",
    "x,y,-z",
    "y+1/2,-x+1/2,-z+1/2",
    "-y+1/2,x+1/2,-z+1/2",
    "x+1/2,-y+1/2,z+1/2",
    "-x+1/2,y+1/2,z+1/2",
    "-y,-x,z",
    "y,x,z",
]


def cif(
    symmetry: str = "", atoms=RUTILE_ATOMS, cell=RUTILE_CELL, ddlm: bool = False, extra_columns=()
) -> str:
    """A small CIF: cell, the given symmetry lines, and an atom-site loop."""
    sep = "." if ddlm else "_"
    lines = ["data_test"]
    for key, value in zip(
        ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"), cell
    ):
        lines.append(f"_cell{sep}{key} {value}")
    lines.append(symmetry)
    cols = ["label", "type_symbol", "fract_x", "fract_y", "fract_z", *[c for c, _ in extra_columns]]
    lines += ["loop_"] + [f"_atom_site{sep}{c}" for c in cols]
    for k, a in enumerate(atoms):
        lines.append(" ".join(str(v) for v in a) + "".join(f" {vals[k]}" for _, vals in extra_columns))
    return "\n".join(lines) + "\n"


def op_loop(ops, tag="_symmetry_equiv_pos_as_xyz") -> str:
    return "loop_\n" + tag + "\n" + "\n".join(f"'{o}'" for o in ops)


def positions_set(positions) -> set:
    return {tuple(np.round(np.asarray(p) % 1.0, 6) % 1.0) for p in positions}


RUTILE_POSITIONS = positions_set(
    [
        [0, 0, 0],
        [0.5, 0.5, 0.5],
        [0.30478, 0.30478, 0],
        [0.69522, 0.69522, 0],
        [0.19522, 0.80478, 0.5],
        [0.80478, 0.19522, 0.5],
    ]
)


# ------------------------------------------------------------------ declared symmetry: every form, in order
FORMS = {
    "ops, old tag": op_loop(RUTILE_OPS),
    "ops, new tag": op_loop(RUTILE_OPS, "_space_group_symop_operation_xyz"),
    "ops, DDLm tag": op_loop(RUTILE_OPS, "_space_group_symop.operation_xyz"),
    "Hall (old tag)": "_symmetry_space_group_name_Hall '-P 4n 2n'",
    "Hall (new tag)": "_space_group_name_Hall '-P 4n 2n'",
    "H-M (old tag)": "_symmetry_space_group_name_H-M 'P 42/m n m'",
    "H-M (new tag)": "_space_group_name_H-M_alt 'P4_2/mnm'",
    "H-M (DDLm tag)": "_space_group.name_H-M_alt 'P 42/m n m'",
    "H-M, odd spelling": "_symmetry_space_group_name_H-M 'p 42/M N M'",
    "number (old tag)": "_symmetry_Int_Tables_number 136",
    "number (new tag)": "_space_group_IT_number 136",
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_declared_form_expands_the_atoms(form):
    c = load_cif(cif(FORMS[form], ddlm="DDLm" in form))
    assert positions_set(c.positions) == RUTILE_POSITIONS
    assert sorted(c.numbers.tolist()) == [8, 8, 8, 8, 22, 22]
    assert c.declared is not None and c.declared.tag in FORMS[form]
    r = featurize(cif(FORMS[form], ddlm="DDLm" in form))
    assert (r.number, r.declared_number, r.declared_hall_number) == (136, 136, 419)


def test_ddlm_atom_and_cell_tags():
    text = cif(op_loop(RUTILE_OPS, "_space_group_symop.operation_xyz"), ddlm=True)
    assert "_atom_site.fract_x" in text and "_cell.length_a" in text
    assert positions_set(read_cif(text)[1]) == RUTILE_POSITIONS


def test_reading_order():
    """Operation loop, then Hall, then H-M, then number: the first one present is used."""
    hall, hm, num = FORMS["Hall (new tag)"], FORMS["H-M (old tag)"], FORMS["number (new tag)"]
    p1_hm = "_symmetry_space_group_name_H-M 'P 1'"
    with pytest.warns(
        SymmetryMismatchWarning, match=r"No\. 136, but _symmetry_space_group_name_H-M 'P 1' is No\. 1"
    ):
        c = load_cif(cif(op_loop(RUTILE_OPS) + "\n" + p1_hm))
    assert c.declared.form == "operations" and len(c.numbers) == 6
    c = load_cif(cif(hall + "\n" + p1_hm + "\n_space_group_IT_number 1"))
    assert c.declared.form == "Hall symbol" and len(c.numbers) == 6
    c = load_cif(cif(hm + "\n_space_group_IT_number 1"))
    assert c.declared.form == "H-M symbol" and len(c.numbers) == 6
    c = load_cif(cif(num))
    assert c.declared.form == "number" and len(c.numbers) == 6
    # nothing declared: P 1, the atoms as listed
    c = load_cif(cif(""))
    assert c.declared is None and len(c.numbers) == 2


def test_lower_priority_forms_need_not_be_readable():
    """Only the form used must be interpretable: an unknown symbol next to an operation loop is ignored."""
    text = cif(op_loop(RUTILE_OPS) + "\n_symmetry_space_group_name_H-M 'P 42/m n m qq'")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_cif(text)[2]) == 6


def test_rhombohedral_symbols_follow_the_cell():
    """An R symbol without :H/:R means hexagonal axes in a hexagonal cell, rhombohedral axes in a rhombohedral one."""
    hexa = cif(
        "_symmetry_space_group_name_H-M 'R -3 c'",
        atoms=[("Al1", "Al", 0, 0, 0.35216), ("O1", "O", 0.30624, 0, 0.25)],
        cell=(4.7589, 4.7589, 12.991, 90, 90, 120),
    )
    assert len(read_cif(hexa)[2]) == 30
    rhombo = cif(
        "_space_group_IT_number 167",
        atoms=[("Al1", "Al", 0.35216, 0.35216, 0.35216), ("O1", "O", 0.55624, -0.05624, 0.25)],
        cell=(5.1284, 5.1284, 5.1284, 55.28, 55.28, 55.28),
    )
    c = load_cif(rhombo)
    assert len(c.numbers) == 10
    r = featurize(rhombo)
    assert (r.number, r.declared_number, r.declared_hall_number) == (167, 167, 461)


def test_origin_choice_code():
    """_space_group_IT_coordinate_system_code chooses the origin when the symbol does not."""
    atoms = [("C1", "C", 0.125, 0.125, 0.125)]
    c2 = load_cif(
        cif(
            "_symmetry_space_group_name_H-M 'F d -3 m'\n_space_group_IT_coordinate_system_code '2'",
            atoms=atoms,
            cell=(3.5668,) * 3 + (90,) * 3,
        )
    )
    assert len(c2.numbers) == 8
    assert (
        featurize(
            cif(
                "_symmetry_space_group_name_H-M 'F d -3 m'\n_space_group_IT_coordinate_system_code 2",
                atoms=atoms,
                cell=(3.5668,) * 3 + (90,) * 3,
            )
        ).declared_hall_number
        == 526
    )


def test_symbols_gemmi_does_not_know_go_to_the_resolver():
    assert gemmi.find_spacegroup_by_name("P2_1/c") is None
    atoms = [("Fe1", "Fe", 0.1, 0.2, 0.3)]
    c = load_cif(cif("_symmetry_space_group_name_H-M 'P2_1/c'", atoms=atoms, cell=(5, 6, 7, 90, 100, 90)))
    assert c.declared.form == "H-M symbol" and len(c.numbers) == 4


@pytest.mark.parametrize(
    "symmetry, match",
    [
        (
            "_symmetry_space_group_name_H-M 'P 42/m n m qq'",
            r"cannot interpret the space-group symbol _symmetry_space_group_name_H-M 'P 42/m n m qq'",
        ),
        (
            "_space_group_name_Hall '-P 4n 2q'",
            r"cannot read the Hall symbol _space_group_name_Hall '-P 4n 2q'",
        ),
        ("_space_group_IT_number 231", r"_space_group_IT_number '231' is not a space-group number 1..230"),
        ("_space_group_IT_number abc", r"_space_group_IT_number 'abc' is not a space-group number 1..230"),
        (
            op_loop(["x,y,z", "-x,-y"]),
            r"_symmetry_equiv_pos_as_xyz value '-x,-y': operation '-x,-y' must have three",
        ),
        (op_loop(["x,y,z", "-x,-y,z+0.3"]), r"translation 0.3 is not within 0.005 of a multiple of 1/24"),
        (
            op_loop(["x,y,z", "-x,-y,z+1/5"]),
            r"value '-x,-y,z\+1/5': translation in '-x,-y,z\+1/5' = 0.2 is not a multiple of 1/24",
        ),
        (
            "_space_group_magn.name_BNS \"P4_2'/mnm'\"",
            r"magnetic space group is given only as _space_group_magn.name_BNS",
        ),
        ("_cell_modulation_dimension 1", r"incommensurate \(superspace\) structure"),
    ],
)
def test_uninterpretable_declarations_are_refused(symmetry, match):
    """Declared symmetry that cannot be read is an error naming the tag and value: never the listed atoms alone."""
    with pytest.raises(CIFError, match=match):
        read_cif(cif(symmetry))


def test_not_a_group_names_the_product_like_basis_from_operations():
    ops = ["x,y,z", "-x,-y,z", "-x,y,-z"]
    with pytest.raises(NotAGroupError) as direct:
        basisdb.basis_from_operations(ops, kmax=2)
    with pytest.raises(NotAGroupError) as info:
        read_cif(cif(op_loop(ops)))
    assert str(direct.value) in str(info.value)
    assert "_symmetry_equiv_pos_as_xyz do not form a group" in str(info.value)


# ------------------------------------------------------------------ translations: snapped within SNAP_TOLERANCE
@pytest.mark.parametrize(
    "third, expected", [("0.333", True), ("0.3333", True), ("0.33333", True), ("0.33", True), ("1/3", False)]
)
def test_decimal_translations_are_snapped(third, expected):
    two = {"0.333": "0.667", "0.3333": "0.6667", "0.33333": "0.66667", "0.33": "0.67", "1/3": "2/3"}[third]
    ops = ["x,y,z", f"-y,x-y,z+{third}", f"-x+y,-x,{two}+z"]
    atoms = [("Si1", "Si", 0.47, 0.0, 0.0), ("O1", "O", 0.41, 0.27, 0.12)]
    text = cif(op_loop(ops), atoms=atoms, cell=(4.91, 4.91, 5.4, 90, 90, 120))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r = featurize(text)
    snapped = [w for w in seen if issubclass(w.category, SnappedTranslationWarning)]
    assert bool(snapped) == expected
    if expected:
        assert f"{third} -> 1/3" in str(snapped[0].message) and f"tolerance {SNAP_TOLERANCE}" in str(
            snapped[0].message
        )
    assert (r.hall_number, r.declared_hall_number) == (431, 431)


def test_exact_decimals_are_not_reported():
    ops = ["x,y,z", "-x+0.5,-y,z+0.5", "x+0.25,y,z"][:2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SnappedTranslationWarning)
        assert len(read_cif(cif(op_loop(ops), atoms=[("Fe1", "Fe", 0.1, 0.2, 0.3)]))[2]) == 2


# ------------------------------------------------------------------ merging symmetry images
def _inversion_cif(dx: float) -> str:
    """One Fe site dx (fractional, a = 10 A) from an inversion centre: its two images are 20 dx A apart."""
    return cif(op_loop(["x,y,z", "-x,-y,-z"]), atoms=[("Fe1", "Fe", dx, 0, 0)], cell=(10, 10, 10, 90, 90, 90))


def test_special_positions_merge_exactly():
    c = load_cif(cif(FORMS["ops, old tag"]))
    assert c.merged == 16 * 2 - 6 and c.max_merge_distance < 1e-12


def test_images_within_the_merge_distance_are_one_atom():
    with pytest.warns(CIFWarning, match=r"1 symmetry images merged .* up to 0.06 A \(merge distance 0.1 A\)"):
        c = load_cif(_inversion_cif(0.003))  # images 0.06 A apart
    assert len(c.numbers) == 1 and c.merged == 1 and abs(c.max_merge_distance - 0.06) < 1e-9
    with pytest.warns(CIFWarning, match="1 symmetry images merged"):
        assert featurize(_inversion_cif(0.003), on_mismatch="ignore").merged_images == 1


def test_images_farther_apart_are_never_dropped():
    for dx in (MERGE_DISTANCE / 20 + 1e-4, 0.02):  # 0.102 A and 0.4 A apart (gemmi's own reader merges both)
        c = load_cif(_inversion_cif(dx))
        assert len(c.numbers) == 2 and c.merged == 0
    assert featurize(_inversion_cif(0.02), on_mismatch="ignore").n_atoms == 2


def test_multiplicity_is_checked():
    text = cif(FORMS["ops, old tag"], extra_columns=[("symmetry_multiplicity", ["2", "2"])])
    with pytest.warns(
        CIFWarning, match="site O1 gives 4 atoms, but its _atom_site_symmetry_multiplicity is 2"
    ):
        read_cif(text)


SITE_TWICE = cif(op_loop(RUTILE_OPS), atoms=RUTILE_ATOMS + [("Ti2", "Ti", 0, 0, 0)])


def test_site_listed_twice_same_behaviour_in_every_route(tmp_path):
    """Two listed sites at one place are two atoms (never merged); featurize refuses them as duplicated,
    exactly as it refuses a duplicated atom given as arrays, ASE Atoms or pymatgen Structure."""
    lattice, positions, numbers = read_cif(SITE_TWICE)
    assert len(numbers) == 8
    pattern = r"atoms \d+ and \d+ are 0 A apart \(periodic images included\), closer than min_distance=0.1 A: overlapping or duplicated atoms"
    path = tmp_path / "twice.cif"
    path.write_text(SITE_TWICE)
    routes = [SITE_TWICE, path, (lattice, positions, numbers)]
    ase = pytest.importorskip("ase")
    routes.append(ase.Atoms(numbers=numbers, scaled_positions=positions, cell=lattice, pbc=True))
    try:
        import pymatgen.core as pmg

        routes.append(pmg.Structure(pmg.Lattice(lattice), numbers.tolist(), positions))
    except ImportError:
        pass
    for route in routes:
        with pytest.raises(ValueError, match=pattern):
            featurize(route)


# ------------------------------------------------------------------ magnetic CIFs
MAGNETIC_TYPE_IV = """data_afm
_cell_length_a 4.0
_cell_length_b 4.0
_cell_length_c 8.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_space_group_symop_magn_operation.id
_space_group_symop_magn_operation.xyz
1 x,y,z,+1
2 -x,-y,-z,+1
loop_
_space_group_symop_magn_centering.id
_space_group_symop_magn_centering.xyz
1 x,y,z,+1
2 x,y,z+1/2,-1
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Ni1 Ni 0 0 0
O1 O 0.5 0.5 0.1
"""


def test_magnetic_centring_is_composed():
    """The spatial parts of operations x centrings: the anti-translation z+1/2 doubles the atoms."""
    c = load_cif(MAGNETIC_TYPE_IV)
    assert c.declared.form == "magnetic operations" and len(c.declared.rotations) == 4
    assert positions_set(c.positions) == positions_set(
        [[0, 0, 0], [0, 0, 0.5], [0.5, 0.5, 0.1], [0.5, 0.5, 0.9], [0.5, 0.5, 0.6], [0.5, 0.5, 0.4]]
    )


def test_malformed_magnetic_operation():
    with pytest.raises(CIFError, match=r"value 'x,y,z' is not a magnetic operation 'x,y,z,\+1'"):
        read_cif(MAGNETIC_TYPE_IV.replace("1 x,y,z,+1\n2 -x", "1 x,y,z\n2 -x"))


# ------------------------------------------------------------------ blocks, coordinates, occupancy
def test_first_block_with_atoms_is_read():
    text = (
        "data_global\n_journal_year 2000\n"
        + cif(FORMS["H-M (old tag)"])
        + cif("", atoms=[("Fe1", "Fe", 0, 0, 0)]).replace("data_test", "data_two")
    )
    with pytest.warns(CIFWarning, match="2 data blocks hold atoms; read the first, data_test"):
        c = load_cif(text)
    assert c.block == "test" and len(c.numbers) == 6


def test_cartesian_only_atoms_are_refused():
    text = cif(FORMS["H-M (old tag)"]).replace("fract_", "Cartn_")
    with pytest.raises(CIFError, match=r"only Cartesian coordinates \(_atom_site_Cartn_x\)"):
        read_cif(text)


def test_uncertainties_comments_and_label_only_species():
    text = """data_x
_cell_length_a 4.000(2)  # a comment
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'F m -3 m'
loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1+ 0.0000(1) 0 0 1.000(2)
Cl1- 0.5 0.5 0.5 ?
"""
    L, _x, z = read_cif(text)
    assert np.allclose(L, 4 * np.eye(3)) and sorted(z.tolist()) == [11] * 4 + [17] * 4


def test_partial_occupancy_is_refused():
    with pytest.raises(CIFError, match=r"partial occupancies .*\(Ti1: occupancy 0.5\)"):
        read_cif(cif(FORMS["H-M (old tag)"], extra_columns=[("occupancy", ["0.5", "1"])]))


def test_only_gemmi():
    with pytest.raises(ValueError, match="reader must be None or 'gemmi', got 'builtin'"):
        read_cif(cif(""), reader="builtin")


def test_unparseable_cif():
    with pytest.raises(CIFError, match="gemmi cannot parse the CIF"):
        read_cif("data_x\nloop_\n_a\n_b\n1 2 3\n_cell_length_a 'unterminated\n")


# ------------------------------------------------------------------ declared versus detected
def test_mismatch_warn_raise_ignore():
    """Two Ti per cell declared as P 4/m m m (No. 123): they are body-centred, spglib detects I4/mmm (No. 139)."""
    text = cif(
        "_symmetry_space_group_name_H-M 'P 4/m m m'",
        atoms=[("Ti1", "Ti", 0, 0, 0), ("Ti2", "Ti", 0.5, 0.5, 0.5)],
    )
    with pytest.warns(
        SymmetryMismatchWarning,
        match=r"declares space group No\. 123 \(_symmetry_space_group_name_H-M 'P 4/m m m'\), "
        r"but spglib detects I4/mmm \(No\. 139\)",
    ):
        r = featurize(text)
    assert (r.declared_number, r.declared_hall_number, r.number) == (123, 400, 139)
    with pytest.raises(SymmetryMismatchError, match=r"No\. 123"):
        featurize(text, on_mismatch="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymmetryMismatchWarning)
        featurize(text, on_mismatch="ignore")
    with pytest.raises(ValueError, match="on_mismatch must be 'warn', 'raise' or 'ignore', got 'loud'"):
        featurize(text, on_mismatch="loud")


RUTILE_P1_ATOMS = [
    ("Ti1", "Ti", 0, 0, 0),
    ("Ti2", "Ti", 0.5, 0.5, 0.5),
    ("O1", "O", 0.30478, 0.30478, 0),
    ("O2", "O", 0.69522, 0.69522, 0),
    ("O3", "O", 0.19522, 0.80478, 0.5),
    ("O4", "O", 0.80478, 0.19522, 0.5),
]


def test_declared_p1_is_no_claim():
    """A file written in P 1 (pymatgen's CifWriter, carbon_24) declares nothing about the symmetry."""
    text = cif(op_loop(["x,y,z"]) + "\n_symmetry_space_group_name_H-M 'P 1'", atoms=RUTILE_P1_ATOMS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SymmetryMismatchWarning)
        r = featurize(text, on_mismatch="raise")
    assert (r.declared_number, r.declared_hall_number, r.number) == (1, 1, 136)


def test_arrays_declare_nothing():
    r = featurize(
        (np.diag([4.5937, 4.5937, 2.9587]), np.array(sorted(RUTILE_POSITIONS)), [22, 22, 8, 8, 8, 8][::-1]),
        on_mismatch="raise",
        min_distance=0,
    )
    assert r.declared_number is None and r.declared is None and r.merged_images == 0


# ------------------------------------------------------------------ gemmi SmallStructure: same rules
def test_small_structure_route_matches_the_cif_route():
    text = cif(op_loop(RUTILE_OPS), atoms=RUTILE_ATOMS + [("H1", "T", 0.2, 0.1, 0.0)])
    st = gemmi.make_small_structure_from_block(gemmi.cif.read_string(text).sole_block())
    a, b = load_cif(text), crystal_from_small_structure(st)
    assert positions_set(a.positions) == positions_set(b.positions)
    assert sorted(a.numbers.tolist()) == sorted(b.numbers.tolist()) and 1 in a.numbers
    ra, rb = featurize(text), featurize(st)
    assert np.allclose(np.sort(ra.features, axis=0), np.sort(rb.features, axis=0), atol=1e-9)
    assert rb.declared_number == 136


# ------------------------------------------------------------------ species
SYMBOLS = [
    "D",
    "T",
    "Fe",
    "Fe2+",
    "Fe1",
    "O2-",
    "X",
    "Xx",
    "Ow1",
    "CA",
    "Ca1",
    "C1A",
    "Na1+",
    "H",
    "Du",
    "Q",
    "Cl1-",
    "Fe3+",
    "OH-",
    "O-2",
    "Fe+2",
    "SE",
    "se",
    "Se2-",
    "H2O",
    "C12",
    "Cu1b",
    "N1",
    "Nb1",
    "Xe",
    "X1",
    "Ts",
    "Tb3+",
    "D1",
    "Dy",
    "Og",
    "U6+",
    "K1+",
    "k",
    "B",
    "Br1-",
    "W",
]


def test_species_resolve_as_gemmi_does():
    """Every symbol gemmi's CIF reader resolves to an element gives that element; D and T are hydrogen,
    X is the dummy species 0; what gemmi cannot resolve is refused."""
    block = cif(
        "",
        atoms=[(f"A{i}", s, round(i / 64, 6), 0, 0) for i, s in enumerate(SYMBOLS)],
        cell=(30, 30, 30, 90, 90, 90),
    )
    st = gemmi.make_small_structure_from_block(gemmi.cif.read_string(block).sole_block())
    for symbol, site in zip(SYMBOLS, st.sites):
        z = site.element.atomic_number
        if z:
            assert atomic_number(symbol) == z, symbol
        elif (symbol[:1].upper() == "T" and not symbol[1:2].isalpha()) or (
            symbol[:1].upper() == "X" and not symbol[1:2].isalpha()
        ):
            assert atomic_number(symbol) == (1 if symbol[0] in "Tt" else 0), symbol
        else:
            with pytest.raises(ValueError, match="unknown element symbol"):
                atomic_number(symbol)


def test_hydrogen_isotopes_in_every_route():
    L = np.eye(3) * 4.06
    r = featurize((L, [[0.15, 0.15, 0.15], [0.5, 0.5, 0.5]], ["D", "Br"]))
    assert r.numbers.tolist() == [1, 35]
    assert featurize((L, [[0.15, 0.15, 0.15], [0.5, 0.5, 0.5]], ["T", "Br"])).numbers.tolist() == [1, 35]
    text = cif(
        "", atoms=[("D1", "D", 0.15, 0.15, 0.15), ("T1", "T", 0.5, 0.5, 0.5)], cell=(4.06,) * 3 + (90,) * 3
    )
    assert read_cif(text)[2].tolist() == [1, 1]


def test_dummy_species_rule():
    L = np.eye(3) * 4.0
    x = [[0, 0, 0], [0.5, 0.5, 0.5]]
    ref = featurize((L, x, [0, 11]))
    assert featurize((L, x, ["X", "Na"])).numbers.tolist() == [0, 11]
    assert np.array_equal(featurize((L, x, ["X", "Na"])).features, ref.features)
    assert read_cif(
        cif("", atoms=[("X1", "X", 0, 0, 0), ("Na1", "Na", 0.5, 0.5, 0.5)], cell=(4,) * 3 + (90,) * 3)
    )[2].tolist() == [0, 11]
    ase = pytest.importorskip("ase")
    atoms = ase.Atoms("XNa", scaled_positions=x, cell=L, pbc=True)
    assert np.array_equal(featurize(atoms).features, ref.features)


# a pymatgen DummySpecies gives the same answer in every process: tests/structures/test_field_cases.py


# ------------------------------------------------------------------ Cartesian positions where fractional are expected
def test_cartesian_positions_are_flagged():
    """Cartesian positions passed as fractional ones: a warning naming both readings' groups, or the
    overlap refusal with the hint; unwrapped fractional coordinates are left alone."""
    from basisdb import CartesianPositionsWarning

    L = np.eye(3) * 5.6402
    frac = np.array(
        [
            [0, 0, 0],
            [0.5, 0.5, 0],
            [0.5, 0, 0.5],
            [0, 0.5, 0.5],
            [0.5, 0.5, 0.5],
            [0, 0, 0.5],
            [0, 0.5, 0],
            [0.5, 0, 0],
        ]
    )
    z = [11] * 4 + [17] * 4
    with pytest.warns(
        CartesianPositionsWarning,
        match=r"read as Cartesian every atom lies inside the cell and the crystal is "
        r"Fm-3m \(No\. 225\)\. featurize expects fractional coordinates",
    ):
        featurize((L, frac @ L, z))
    with pytest.raises(ValueError, match=r"overlapping or duplicated atoms; the positions look Cartesian"):
        featurize((np.eye(3) * 4, [[0, 0, 0], [2, 2, 2]], [55, 17]))  # as fractional, (2, 2, 2) is the origin
    with warnings.catch_warnings():
        warnings.simplefilter("error", CartesianPositionsWarning)
        featurize((L, frac, z))
        featurize(
            (L, frac + [2, 1, 2], z)
        )  # unwrapped fractional coordinates, all inside the cell as Cartesian
        featurize((L, frac - 2, z))


def test_import_basisdb_does_not_import_gemmi():
    code = "import sys, basisdb; print('gemmi' in sys.modules, 'spglib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


# ------------------------------------------------------------------ fast paths of the reader, against gemmi
#: values as they stand in CIF files, with the odd ones gemmi and float() read differently
_TRICKY = (
    "1.5(3) -.5 1e-3 1E-3 ? . 1_0 nan inf -inf +0.25 +-1 -0 0 1. .e3 e3 1e 1e400 -1e400 1e-400 "
    "1e-320 0.5e 0x1 1/2 '0.3' \"0.3\" 0.1.2 1-2 --1 + - 0.25(12) 1.0e+0 5E 00012 1.e3 "
    "0.1000000000000000055511151231257827 123456789012345678901234567890 2.2250738585072011e-308 "
    "0.30000000000000004 2e-324 3e-324 2.4703282292062327e-324 0e-400 0.0e999 -0.0 00.000e-3 "
    "1.7976931348623158e308 1.7976931348623159e308 +.5 .5 5. +5.e+5 -.5E-3 1e+0005 "
)
TRICKY_NUMBERS = _TRICKY.split() + [" 1.0", "1.0 ", "", "\u0663", "1\u00a0", "0." + "0" * 400 + "1"]


def _same_double(x: float, y: float) -> bool:
    return np.array(x).tobytes() == np.array(y).tobytes() or (np.isnan(x) and np.isnan(y))


def test_plain_number_fast_path_reads_as_gemmi():
    """``_plain_float`` (float() of a plain decimal) gives gemmi.cif.as_number's double wherever it answers,
    and ``_number`` reads every value as gemmi does, refusing what gemmi cannot read to a finite number."""
    from basisdb._cif import _number, _plain_float, _plain_floats

    rng = np.random.default_rng(5)
    random = [
        f"{s}{m}{e}"
        for s, m, e in zip(
            rng.choice(["", "-", "+"], 3000),
            [f"{x:.{k}f}" for x, k in zip(rng.uniform(-2, 2, 3000), rng.integers(0, 20, 3000))],
            rng.choice(["", "e-5", "E+12", "e300", "e-310", "e-325", "e0"], 3000),
        )
    ]
    answered = 0
    for value in TRICKY_NUMBERS + random:
        want = gemmi.cif.as_number(value)
        fast = _plain_float(value)
        if fast is not None:
            answered += 1
            assert _same_double(fast, want), value
        if np.isfinite(want):
            assert _same_double(_number(value, "x", "f"), want), value
        else:
            with pytest.raises(CIFError, match="x is missing or not a number"):
                _number(value, "x", "f")
    assert answered > 1500  # most random plain numbers take the fast path
    # the column version answers only when every value is plain, else None (read one by one)
    assert _plain_floats(["0.1", "-.5", "1e-3"]) == [gemmi.cif.as_number(v) for v in ("0.1", "-.5", "1e-3")]
    assert _plain_floats(["0", "-0.0", "0e-400"]) == [0.0, -0.0, 0.0]
    for bad in (
        ["0.1", "0.2(1)"],
        ["0.1", "?"],
        ["1_0"],
        ["1e400"],
        ["1e200", "1e308", "1e308"],
        ["1-2"],
        ["0", "1e-400"],
    ):
        assert _plain_floats(bad) is None, bad


def test_text_fast_path_reads_as_gemmi():
    """``_text``/``_texts`` give gemmi.cif.as_string(value).strip(), None for '?', '.' and empty."""
    from basisdb._cif import _text, _texts

    doc = gemmi.cif.read_string(
        "data_t\nloop_\n_x\n'a b'\n\"Fe2+\"\nFe1\n?\n.\n'?'\n''\n;\n text field\n;\nCa\n'O1'\n;x\n;\n_y 1\n"
    )
    raw = list(doc[0].find_values("_x"))
    assert len(raw) == 11
    want = [gemmi.cif.as_string(v).strip() for v in raw]
    want = [None if w in ("?", ".", "") else w for w in want]
    assert [_text(v) for v in raw] == want == _texts(raw)
    assert want[:3] == ["a b", "Fe2+", "Fe1"] and want[3:7] == [None] * 4


@pytest.mark.parametrize(
    "text",
    [
        cif(extra_columns=()),
        cif(ddlm=True),
        cif()
        .replace("_atom_site_fract_x", "_ATOM_SITE_FRACT_X")
        .replace("_atom_site_label", "_Atom_Site_Label"),
        "data_p\n_atom_site_fract_x 0.1\n_atom_site_fract_y 0.2\n_atom_site_fract_z 0.3\n_atom_site_type_symbol Fe\n",
        "data_p\nloop_\n_atom_site_occupancy\n_atom_site_fract_z\n_atom_site_other\n_atom_site_fract_y\n"
        "_atom_site_fract_x\n_atom_site_symmetry_multiplicity\n1 0.3 q 0.2 0.1 2\n0.5(1) .5 r 0 -0.1 ?\n",
    ],
)
def test_atom_columns_are_the_table_values(text):
    """``_columns`` (one copy of the loop's values, sliced) gives ``table[i][k]`` for every column gemmi
    matches, whatever the tags' order and case, for loops and single-atom pairs alike."""
    from basisdb._cif import _atom_table, _columns

    table, prefix = _atom_table(gemmi.cif.read_string(text)[0])
    cols = _columns(table, prefix)
    for k in range(7):
        if table.has_column(k):
            assert cols[k] == [table[i][k] for i in range(len(table))], k
        else:
            assert cols[k] is None


def test_tag_needles_cover_their_groups():
    """A tag group is skipped when the lower-cased CIF text has none of its needles: each of its
    tags must contain one; and a file whose tags are in upper case reads as the same file."""
    from basisdb._cif import _NEEDLES

    for tags, needles in _NEEDLES.items():
        for tag in tags:
            assert any(n in tag.lower() for n in needles), tag
    text = cif("_space_group_name_Hall '-P 4n 2n'\n_space_group_IT_coordinate_system_code 1\n")
    upper = text
    for tag in ("_space_group_name_Hall", "_space_group_IT_coordinate_system_code", "_atom_site_fract_x"):
        upper = upper.replace(tag, tag.upper())
    assert upper != text
    a, b = load_cif(upper), load_cif(text)
    assert a.declared.tag == "_space_group_name_Hall" and len(a.declared.rotations) == 16
    assert np.array_equal(a.positions, b.positions) and np.array_equal(
        a.declared.rotations, b.declared.rotations
    )
    assert len(a.positions) == 6


def test_identity_expansion_is_the_general_formula():
    """A file in P 1 (one operation x,y,z) keeps every coordinate modulo 1 exactly as rot @ x + t would,
    -0.0, negatives and values just below 1 included."""
    from basisdb._cif import _expand

    frac = np.array([[-0.0, 0.0, -0.25], [1.0 - 2**-53, -1e-17, 2.5], [0.3, -0.7, 1.0], [-2.0, 7.25, 1e-300]])
    rot, tra = np.eye(3, dtype=np.int64)[None], np.zeros((1, 3), dtype=np.int64)
    y = _expand(frac, np.ones(4, dtype=np.int64), list("abcd"), [None] * 4, rot, tra, np.eye(3) * 5, "f")[0]
    want = (frac @ rot[0].T.astype(float) + tra[0] / 24) % 1.0
    want[want >= 1.0] = 0.0
    assert y.tobytes() == want.tobytes()


def test_symbol_operations_are_gemmi_operations():
    """The remembered operations of a Hall symbol are gemmi's ``SpaceGroup.operations()`` for every
    setting in gemmi's table, and each call returns new writable arrays."""
    from basisdb._cif import _hall_operations

    for sg in gemmi.spacegroup_table():
        rot, tra = _hall_operations(sg.hall)
        ops = sg.operations()
        assert rot.tolist() == [[[v // 24 for v in row] for row in op.rot] for op in ops], sg.xhm()
        assert tra.tolist() == [[v % 24 for v in op.tran] for op in ops], sg.xhm()
    rot, _ = _hall_operations("-P 4n 2n")
    rot[0] = 7
    assert _hall_operations("-P 4n 2n")[0][0, 0, 0] == 1


def test_remembered_operation_loops_still_warn_and_are_new_arrays():
    """Reading the same operation loop twice: snapped translations warn each time, and the declared
    operations of one result are not shared with the next."""
    snapped = cif(
        "loop_\n_symmetry_equiv_pos_as_xyz\nx,y,z\n-y,x-y,z+0.333\n-x+y,-x,z+0.667",
        atoms=[("Si1", "Si", 0.47, 0, 0)],
        cell=(4.91, 4.91, 5.4, 90, 90, 120),
    )
    for _ in range(2):
        with pytest.warns(SnappedTranslationWarning):
            load_cif(snapped)
    first = load_cif(cif("loop_\n_symmetry_equiv_pos_as_xyz\n" + "\n".join(f"'{o}'" for o in RUTILE_OPS)))
    first.declared.rotations[:] = 0
    second = load_cif(cif("loop_\n_symmetry_equiv_pos_as_xyz\n" + "\n".join(f"'{o}'" for o in RUTILE_OPS)))
    assert np.array_equal(second.declared.rotations[0], np.eye(3))


def test_path_named_like_cif_text_is_read_in_full(tmp_path, monkeypatch):
    """The tag-group skipping uses the CIF text only for text sources: a file whose name is the
    placeholder '<CIF text>' is read by path with every tag looked up."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "<CIF text>").write_text(cif("_space_group_name_Hall '-P 4n 2n'\n"))
    crystal = load_cif("<CIF text>")
    assert crystal.declared.form == "Hall symbol" and len(crystal.positions) == 6
