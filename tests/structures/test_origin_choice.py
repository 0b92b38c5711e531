"""A CIF that names a group with two origin choices (Fd-3m, Pnnn, P4/n, ...) by H-M symbol or number
without saying which: the file's multiplicities, then impossible interatomic distances, then coinciding
symmetry images decide, else origin choice 2 (as gemmi's and cctbx's CIF readers); the same in every
input route, always with a CIFWarning.

Oracles: gemmi's own CIF reader, ASE's expansion in the setting the coordinates were written for
(``ase.spacegroup.crystal(setting=...)``), and the textbook crystals (diamond: 8 atoms, Si-Si 2.35 A).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

gemmi = pytest.importorskip("gemmi")
pytest.importorskip("spglib")

import basisdb  # noqa: E402
from basisdb import CIFWarning  # noqa: E402

CELL = """_cell_length_a 5.431
_cell_length_b 5.431
_cell_length_c 5.431
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
"""


def _cif(symbol_lines: str, x: float, mult: str | None = None) -> str:
    cols = "_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    row = f"Si1 {x} {x} {x}"
    if mult is not None:
        cols += "_atom_site_symmetry_multiplicity\n"
        row += f" {mult}"
    return f"data_si\n{CELL}{symbol_lines}\nloop_\n{cols}{row}\n"


def _featurize(text: str):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = basisdb.featurize(text, kmax=2)
    return r, [str(w.message) for w in caught if issubclass(w.category, CIFWarning)]


def _nearest(r) -> float:
    lat, pos = np.asarray(r.lattice), np.asarray(r.positions)
    d = pos[:, None, :] - pos[None, :, :]
    d -= np.rint(d)
    dist = np.linalg.norm(d @ lat, axis=-1)
    return float(dist[~np.eye(len(pos), dtype=bool)].min())


@pytest.mark.parametrize(
    "symbol", ["_symmetry_space_group_name_H-M 'F d -3 m'", "_space_group_IT_number 227"]
)
def test_origin_two_coordinates_without_a_code(tmp_path, symbol):
    """Diamond written for origin choice 2 (Si at 1/8, 1/8, 1/8), the origin not named: 8 atoms 2.35 A
    apart as gemmi's reader reads it (origin choice 1 would give 16 atoms 1.92 A apart), in both routes."""
    text = _cif(symbol, 0.125)
    r, warned = _featurize(text)
    assert r.n_atoms == 8 and r.declared_hall_number == 526 and r.hall_number == 525  # Fd-3m, as detected
    assert abs(_nearest(r) - 5.431 * np.sqrt(3) / 4) < 1e-6
    assert len(warned) == 1 and "read with origin choice 2" in warned[0] and "gives 16 atoms" in warned[0]
    path = tmp_path / "si.cif"
    path.write_text(text)
    if "H-M" in symbol:  # gemmi's reader as the oracle, and the SmallStructure route agrees
        st = gemmi.read_small_structure(str(path))
        assert len(st.get_all_unit_cell_sites()) == 8
        g, warned_g = _featurize(st)
        assert len(warned_g) == 1 and "origin choice 2" in warned_g[0]
        assert g.n_atoms == 8 and g.declared_hall_number == 526
        assert np.array_equal(g.features, r.features)


def test_origin_one_coordinates_without_a_code():
    """Diamond written for origin choice 1 (Si at 0, 0, 0): 8 atoms (origin choice 2 would give 16), as
    ASE reads it in that setting, with or without the file's multiplicity."""
    from ase.spacegroup import crystal

    ref = crystal(["Si"], basis=[(0, 0, 0)], spacegroup=227, setting=1, cellpar=[5.431] * 3 + [90] * 3)
    r, warned = _featurize(_cif("_symmetry_space_group_name_H-M 'F d -3 m'", 0.0))
    assert r.n_atoms == len(ref) == 8 and r.declared_hall_number == 525
    assert "read with origin choice 1 (more of the atoms' symmetry images coincide" in warned[0]
    assert "origin choice 2 gives 16 atoms" in warned[0]
    r, warned = _featurize(_cif("_symmetry_space_group_name_H-M 'F d -3 m'", 0.0, mult="8"))
    assert r.n_atoms == 8 and "read with origin choice 1 (its site multiplicities match" in warned[0]


def test_no_evidence_reads_origin_two():
    """Cu2O (Pn-3m) written for origin choice 2 (Cu at 0, 0, 0; O at 1/4, 1/4, 1/4): 6 atoms at plausible
    distances either way, so nothing in the file tells: origin choice 2, as gemmi's reader, with a warning."""
    from ase.spacegroup import crystal

    text = (
        "data_cu2o\n_cell_length_a 4.27\n_cell_length_b 4.27\n_cell_length_c 4.27\n_cell_angle_alpha 90\n"
        "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'P n -3 m'\nloop_\n"
        "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        "Cu1 Cu 0 0 0\nO1 O 0.25 0.25 0.25\n"
    )
    r, warned = _featurize(text)
    ref = crystal(
        ["Cu", "O"],
        basis=[(0, 0, 0), (0.25, 0.25, 0.25)],
        spacegroup=224,
        setting=2,
        cellpar=[4.27] * 3 + [90] * 3,
    )
    assert r.n_atoms == len(ref) == 6 and "read with origin choice 2 (the file gives no evidence" in warned[0]
    assert sorted(r.numbers.tolist()) == sorted(ref.numbers.tolist())


def test_a_number_alone_through_gemmi():
    """A file with only _space_group_IT_number: gemmi's SmallStructure holds no space group (only the
    number), so it was read as P 1 (1 atom); now by the CIF rule for a number, as the path route."""
    text = _cif("_space_group_IT_number 227", 0.125)
    st = gemmi.make_small_structure_from_block(gemmi.cif.read_string(text).sole_block())
    assert st.spacegroup is None and st.spacegroup_number == 227
    g, _ = _featurize(st)
    r, _ = _featurize(text)
    assert g.n_atoms == r.n_atoms == 8 and g.declared_hall_number == r.declared_hall_number == 526


@pytest.mark.parametrize(
    "setting, sites",
    [
        (2, [("Mg", 0.125), ("Al", 0.5), ("O", 0.2625)]),
        (1, [("Mg", 0.0), ("Al", 0.625), ("O", 0.3875)]),
    ],
)
def test_spinel_in_either_origin_by_its_distances(tmp_path, setting, sites):
    """MgAl2O4 in either origin choice: both readings give 56 atoms, but the wrong one puts atoms 0.2-0.3 A
    apart; the right one is taken in both routes and matches ASE's expansion in that setting atom for atom."""
    from ase.spacegroup import crystal

    a = 8.08
    text = (
        f"data_sp\n_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n_cell_angle_alpha 90\n"
        "_cell_angle_beta 90\n_cell_angle_gamma 90\n_symmetry_space_group_name_H-M 'F d -3 m'\nloop_\n"
        "_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        + "".join(f"{e}{i} {e} {x} {x} {x}\n" for i, (e, x) in enumerate(sites))
    )
    ref = crystal(
        [e for e, _ in sites],
        basis=[(x, x, x) for _, x in sites],
        spacegroup=227,
        setting=setting,
        cellpar=[a] * 3 + [90] * 3,
    )
    path = tmp_path / "sp.cif"
    path.write_text(text)
    for source in (text, gemmi.read_small_structure(str(path))):
        r, warned = _featurize(source)
        assert r.n_atoms == len(ref) == 56 and r.declared_hall_number == (525 if setting == 1 else 526)
        assert f"read with origin choice {setting} (the other puts atoms" in warned[0]
        assert _nearest(r) > 1.8
    with pytest.warns(CIFWarning, match="origin choice"):
        got = np.round(np.asarray(basisdb.read_cif(text)[1]) % 1.0, 6) % 1.0
    want = np.round(ref.get_scaled_positions() % 1.0, 6) % 1.0
    got, want = (v[np.lexsort(v.T[::-1])] for v in (got, want))  # rows in one order: the same atoms
    assert np.allclose(got, want, atol=1e-6)


def test_a_named_origin_is_used_without_a_warning():
    for lines, hall in (
        ("_symmetry_space_group_name_H-M 'F d -3 m'\n_space_group_IT_coordinate_system_code 2", 526),
        ("_symmetry_space_group_name_H-M 'F d -3 m:2'", 526),
        ("_symmetry_space_group_name_H-M 'F d -3 m:1'", 525),
    ):
        r, warned = _featurize(_cif(lines, 0.125))
        assert r.declared_hall_number == hall and not warned
    # the origin named wrongly for the coordinates is the file's word: used as written (16 atoms)
    r, _ = _featurize(_cif("_symmetry_space_group_name_H-M 'F d -3 m:1'", 0.125))
    assert r.n_atoms == 16


def test_multiplicities_decide_first():
    """The file's multiplicities pick the reading that reproduces them (8 for diamond's 8a)."""
    r, warned = _featurize(_cif("_symmetry_space_group_name_H-M 'F d -3 m'", 0.125, mult="8"))
    assert r.n_atoms == 8 and r.declared_hall_number == 526 and "multiplicities match" in warned[0]
    r, warned = _featurize(_cif("_symmetry_space_group_name_H-M 'F d -3 m'", 0.125, mult="16"))
    assert r.n_atoms == 16 and r.declared_hall_number == 525 and "multiplicities match" in warned[0]


# origin-choice-2 asymmetric units of real structures (ITA settings); origin 1 = these + the groups' shift
REAL = {
    "spinel MgAl2O4": (227, "F d -3 m", [8.08] * 3, [("Mg", (0.125,) * 3), ("Al", (0.5,) * 3), ("O", (0.2625,) * 3)]),
    "pyrochlore Y2Ti2O7": (227, "F d -3 m", [10.1] * 3, [("Y", (0.5,) * 3), ("Ti", (0, 0, 0)), ("O", (0.328, 0.125, 0.125)), ("O", (0.375,) * 3)]),
    "diamond": (227, "F d -3 m", [3.567] * 3, [("C", (0.125,) * 3)]),
    "cristobalite SiO2": (227, "F d -3 m", [7.16] * 3, [("Si", (0.125,) * 3), ("O", (0, 0, 0))]),
    "anatase TiO2": (141, "I 41/a m d", [3.785, 3.785, 9.514], [("Ti", (0, 0.75, 0.125)), ("O", (0, 0.25, 0.0816))]),
    "zircon ZrSiO4": (141, "I 41/a m d", [6.607, 6.607, 5.982], [("Zr", (0, 0.75, 0.125)), ("Si", (0, 0.25, 0.375)), ("O", (0, 0.066, 0.195))]),
}  # fmt: skip


@functools.cache
def _origin_shift(number: int) -> np.ndarray:
    """t with origin-1 coordinates = origin-2 coordinates + t, found from ASE's tables of the two settings."""
    import itertools

    from ase.spacegroup import Spacegroup

    one, two = Spacegroup(number, 1), Spacegroup(number, 2)
    x = np.array([0.0123, 0.0456, 0.0789])
    for t in itertools.product(np.arange(8) / 8, repeat=3):
        a, b = two.equivalent_sites([x])[0] + t, one.equivalent_sites([x + t])[0]
        d = a[:, None] - b[None]
        d -= np.rint(d)
        if len(a) == len(b) and (np.abs(d).sum(-1).min(1) < 1e-9).all():
            return np.array(t)
    raise AssertionError("no shift")


@pytest.mark.parametrize("name", sorted(REAL))
@pytest.mark.parametrize("setting", [1, 2])
@pytest.mark.parametrize("with_multiplicity", [False, True])
def test_real_structures_in_either_origin(name, setting, with_multiplicity):
    """Each structure written for origin choice 1 or 2 under its bare H-M symbol, with or without
    _atom_site_symmetry_multiplicity: read atom for atom as ASE expands it in that setting (the oracle)."""
    from ase.spacegroup import Spacegroup, crystal

    number, symbol, abc, sites2 = REAL[name]
    shift = _origin_shift(number) if setting == 1 else np.zeros(3)
    sites = [(e, tuple((np.array(p) + shift) % 1.0)) for e, p in sites2]
    cellpar = list(abc) + [90, 90, 90]
    ref = crystal(
        [e for e, _ in sites],
        basis=[p for _, p in sites],
        spacegroup=number,
        setting=setting,
        cellpar=cellpar,
    )
    group = Spacegroup(number, setting)
    lines = [f"data_x\n_symmetry_space_group_name_H-M '{symbol}'"]
    lines += [f"_cell_length_{k} {v}" for k, v in zip("abc", abc)] + [
        f"_cell_angle_{k} 90" for k in ("alpha", "beta", "gamma")
    ]
    lines += [
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
    ]
    lines += ["_atom_site_symmetry_multiplicity"] if with_multiplicity else []
    for i, (e, p) in enumerate(sites):
        mult = f" {len(group.equivalent_sites([p])[0])}" if with_multiplicity else ""
        lines.append(f"{e}{i} {e} {p[0]:.6f} {p[1]:.6f} {p[2]:.6f}{mult}")
    with pytest.warns(CIFWarning, match=f"read with origin choice {setting}"):
        lattice, x, z = basisdb.read_cif("\n".join(lines) + "\n")
    assert len(x) == len(ref)
    d = x[:, None, :] - ref.get_scaled_positions()[None]
    d -= np.rint(d)
    dist = np.linalg.norm(d @ lattice, axis=-1)
    assert (dist.min(axis=1) < 1e-3).all() and (ref.numbers[dist.argmin(axis=1)] == z).all()


@pytest.mark.parametrize(
    "angles, symbol",
    [((90, 90, 105), "P 1 1 21/a"), ((105, 90, 90), "P 21/b 1 1"), ((90, 105, 90), "P 1 21/c 1")],
)
def test_a_monoclinic_number_takes_the_unique_axis_of_the_cell(tmp_path, angles, symbol):
    """_space_group_IT_number 14 alone with the cell's odd angle on c, a or b: the setting on that unique
    axis (ITA's cell choice 1), as R groups take their axes from the cell; the same crystal as the file
    that names that symbol, whose expansion gemmi's reader gives as well (before: unique axis b always,
    another crystal and a mismatch warning)."""
    head = (
        "data_m\n"
        + "".join(f"_cell_length_{k} {v}\n" for k, v in zip("abc", (5.1, 6.2, 7.3)))
        + "".join(f"_cell_angle_{k} {v}\n" for k, v in zip(("alpha", "beta", "gamma"), angles))
    )
    atoms = (
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n"
        "_atom_site_fract_z\nFe1 Fe 0.1 0.2 0.3\nO1 O 0.31 0.12 0.07\n"
    )
    by_number = head + "_space_group_IT_number 14\n" + atoms
    by_symbol = head + f"_symmetry_space_group_name_H-M '{symbol}'\n" + atoms
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no CIFWarning either way
        x_n, z_n = basisdb.read_cif(by_number)[1:]
        x_s, z_s = basisdb.read_cif(by_symbol)[1:]
    assert np.array_equal(x_n, x_s) and np.array_equal(z_n, z_s)
    path = tmp_path / "m.cif"
    path.write_text(by_symbol)
    assert len(gemmi.read_small_structure(str(path)).get_all_unit_cell_sites()) == len(x_n) == 8
