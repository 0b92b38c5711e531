"""A CIF that names a group with two origin choices (Fd-3m, Pnnn, P4/n, ...) by H-M symbol or number
without saying which: the atoms decide, in every input route, with a CIFWarning.

Oracles: gemmi's own CIF reader (which takes origin choice 2) and ASE's (origin choice 1) on files
written in the origin each one assumes, and the textbook crystals (diamond: 8 atoms, Si-Si 2.35 A).
"""

from __future__ import annotations

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
    """Diamond written for origin choice 1 (Si at 0, 0, 0): 8 atoms, read with origin choice 1 (ASE's and
    spglib's default reading); origin choice 2 would give 16."""
    ase_io = pytest.importorskip("ase.io")
    import io

    text = _cif("_symmetry_space_group_name_H-M 'F d -3 m'", 0.0)
    r, warned = _featurize(text)
    assert r.n_atoms == 8 and r.declared_hall_number == 525
    assert len(ase_io.read(io.StringIO(text), format="cif")) == 8
    assert len(warned) == 1 and "read with origin choice 1" in warned[0]


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
    assert r.n_atoms == 8 and "multiplicities match" in warned[0]
