"""basisdb.featurize: inputs, validation, invariance on real crystals, presentation invariance.

Real crystals: tests/crystals.py (literature structures with their sources, all seven crystal
systems, P/C/I/F/R centring, both origin choices of Fd-3m and I4_1/amd, corundum on hexagonal
and rhombohedral axes) and samples of ../shared/datasets (carbon_24, perov_5).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import featurize
from basisdb._cif import CIFError, read_cif

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: crystals.py
import crystals

TOL = 1e-9
CRYSTALS = crystals.real_crystals()
#: every crystal system, from the literature set
SYSTEMS = {
    "triclinic": None,  # from carbon_24 (no small literature structure here)
    "monoclinic": "beta-Ga2O3",
    "orthorhombic": "marcasite-FeS2",
    "tetragonal": "rutile-TiO2",
    "trigonal": "corundum-H",
    "hexagonal": "wurtzite-ZnO",
    "cubic": "NaCl",
}


@pytest.fixture(scope="module")
def refs():
    return {name: featurize(cell) for name, cell in CRYSTALS.items()}


@pytest.fixture(scope="module")
def triclinic():
    """A centrosymmetric triclinic carbon_24 structure (P-1 at symprec 1e-5)."""
    if not crystals.DATASETS.is_dir():
        pytest.skip("../shared/datasets is not available")
    for row in crystals.dataset_rows("carbon_24"):
        cell = read_cif(row["cif"])
        r = featurize(cell)
        if r.number == 2:
            return cell
    pytest.fail("no P-1 structure in carbon_24")


# ------------------------------------------------------------------ the detected settings
EXPECTED = {
    "NaCl": (523, "cubic"),
    "diamond-1": (525, "cubic"),
    "diamond-2": (525, "cubic"),
    "wurtzite-ZnO": (480, "hexagonal"),
    "corundum-H": (460, "trigonal"),
    "corundum-R": (460, "trigonal"),
    "rutile-TiO2": (419, "tetragonal"),
    "anatase-1": (426, "tetragonal"),
    "anatase-2": (426, "tetragonal"),
    "alpha-quartz": (443, "trigonal"),
    "beta-Ga2O3": (63, "monoclinic"),
    "Mg-hcp": (488, "hexagonal"),
    "marcasite-FeS2": (275, "orthorhombic"),
    "alpha-U": (298, "orthorhombic"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detected_setting(refs, name):
    r = refs[name]
    hall, system = EXPECTED[name]
    assert r.hall_number == hall and r.basis.setting.crystal_system == system
    assert r.features.shape == (len(CRYSTALS[name][2]), r.basis.n_basis)
    assert r.positions.min() >= 0 and r.positions.max() < 1
    assert r.max_displacement < 1e-10  # literature coordinates are exactly symmetric
    assert not r.features.flags.writeable and not r.positions.flags.writeable


def test_systems_covered(refs, triclinic):
    for system, name in SYSTEMS.items():
        cell = triclinic if name is None else CRYSTALS[name]
        assert featurize(cell).basis.setting.crystal_system == system


# ------------------------------------------------------------------ invariance under the crystal's own operations
def _own_operations_check(r, cell, rng, n_whole=12):
    L, x, z = cell
    rots, trans = r.operations()
    # each atom replaced by its image: features at the (unsymmetrised) image equal those at the atom
    at_x = r.evaluate(x)
    worst = 0.0
    for R, t in zip(rots, trans):
        worst = max(worst, float(np.abs(r.evaluate(x @ R.T + t) - at_x).max()))
    assert worst <= TOL, worst
    # the whole crystal moved by one of its operations: same (symmetrised) features, atom by atom
    for k in rng.choice(len(rots), size=min(n_whole, len(rots)), replace=False):
        moved = featurize((L, x @ rots[k].T + trans[k], z))
        assert np.abs(moved.features - r.features).max() <= TOL


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_invariance_under_own_operations(refs, name):
    _own_operations_check(refs[name], CRYSTALS[name], np.random.default_rng(0))


def test_invariance_under_own_operations_triclinic(triclinic):
    _own_operations_check(featurize(triclinic), triclinic, np.random.default_rng(0))


def test_raw_coordinates_are_not_invariant(refs):
    """Negative control (GUIDE section 2): raw input coordinates in the basis are not invariant."""
    L, x, z, _ = crystals.represent(CRYSTALS["wurtzite-ZnO"], np.random.default_rng(3), ("shift", "cell"))
    r = featurize((L, x, z))
    rots, trans = r.operations()
    raw = max(np.abs(r.basis.evaluate(x @ R.T + t) - r.basis.evaluate(x)).max() for R, t in zip(rots, trans))
    assert raw > 0.1
    assert max(np.abs(r.evaluate(x @ R.T + t) - r.features).max() for R, t in zip(rots, trans)) <= TOL


# ------------------------------------------------------------------ presentation invariance
KINDS = [
    ("shift",),
    ("cell",),
    ("lefthanded",),
    ("supercell",),
    ("permute",),
    ("rotate",),
    ("unwrap",),
    ("shift", "cell", "supercell", "permute", "rotate", "unwrap"),
    ("shift", "lefthanded", "supercell", "permute", "rotate"),
]


def _same_features(ref, cell, index):
    r = featurize(cell, symprec=ref.symprec)
    assert r.hall_number == ref.hall_number
    err = float(np.abs(r.features - ref.features[index]).max())
    assert np.array_equal(r.orbit, ref.orbit[index])
    return err


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_presentation_invariance_literature(refs, name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    worst = 0.0
    for kinds in KINDS:
        L, x, z, index = crystals.represent(CRYSTALS[name], rng, kinds)
        worst = max(worst, _same_features(refs[name], (L, x, z), index))
    assert worst <= TOL, worst


@pytest.mark.parametrize(
    "name, halls",
    [
        ("diamond-1", (525, 526)),  # origin choices 1 and 2
        ("anatase-1", (426, 427)),
        ("corundum-H", (460, 461)),  # hexagonal and rhombohedral axes
        ("beta-Ga2O3", (63, 64, 65, 66, 67, 68, 69, 70, 71)),  # unique axes and cell choices of C2/m
        ("alpha-U", (298, 299, 300, 301, 302, 303)),  # the six settings of Cmcm
        ("wurtzite-ZnO", (480,)),
    ],
)
def test_presentation_invariance_settings_via_cif(refs, name, halls, tmp_path):
    """The crystal written as a CIF in each setting of its group (that setting's operations,
    cell and origin) reads back to the same features, through every CIF route."""
    ref = refs[name]
    for hall in halls:
        L, x, z, _index, ops = crystals.in_setting(CRYSTALS[name], hall)
        text = crystals.to_cif(L, x, z, ops, name=f"{name}_{hall}", number=ref.number)
        path = tmp_path / f"{name}_{hall}.cif"
        path.write_text(text)
        for route, structure in _cif_routes(path).items():
            r = featurize(structure)
            assert r.hall_number == ref.hall_number
            # the route may reorder atoms: match them through the features
            got = _match(r, ref)
            assert got <= 1e-8, (hall, route, got)


def _match(r, ref) -> float:
    """Largest feature difference after matching atoms of r to atoms of ref with equal features."""
    d = np.abs(r.features[:, None, :] - ref.features[None, :, :]).max(axis=2)
    return float(d.min(axis=1).max())


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _cif_routes(path) -> dict:
    """A CIF file as featurize's inputs: the path (gemmi), and ASE's and pymatgen's readings when installed."""
    import warnings

    routes = {"path": path}
    if _has("ase"):
        import ase.io

        routes["ase.io.read"] = ase.io.read(path)
    if _has("pymatgen"):
        from pymatgen.io.cif import CifParser

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            routes["pymatgen CifParser"] = CifParser(path).parse_structures(primitive=False)[0]
    return routes


# ------------------------------------------------------------------ datasets
def _dataset_sample(name, n, seed):
    if not crystals.DATASETS.is_dir():
        pytest.skip("../shared/datasets is not available")
    rows = crystals.dataset_rows(name)
    rng = np.random.default_rng(seed)
    return [read_cif(rows[i]["cif"]) for i in rng.choice(len(rows), n, replace=False)], rng


def _sym_fingerprint(r) -> np.ndarray:
    """Sorted periodic distances of the symmetrised canonical cell (Angstrom): a physical invariant."""
    x = r.cell_positions
    d = x[:, None, :] - x[None, :, :]
    d -= np.rint(d)
    shifts = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T
    cart = (d[:, :, None, :] + shifts) @ r.lattice
    return np.sort(np.linalg.norm(cart, axis=-1).min(axis=-1).ravel())


@pytest.mark.parametrize(
    "dataset, symprec", [("carbon_24", 1e-5), ("perov_5", 1e-5), ("carbon_24", 0.1), ("perov_5", 0.1)]
)
def test_presentation_invariance_datasets(dataset, symprec):
    """Random presentations of dataset crystals: identical features whenever spglib detects the
    same symmetry (same setting and the same symmetrised structure).  At symprec 1e-5 every
    presentation must pass."""
    cells, rng = _dataset_sample(dataset, 24, seed=7)
    passed = detection = 0
    for cell in cells:
        ref = featurize(cell, symprec=symprec)
        fp = _sym_fingerprint(ref)
        for _ in range(2):
            L, x, z, index = crystals.represent(cell, rng)
            r = featurize((L, x, z), symprec=symprec)
            same_symmetry = (
                r.hall_number == ref.hall_number
                and len(r.cell_numbers) == len(ref.cell_numbers)
                and np.abs(_sym_fingerprint(r) - fp).max() < 1e-6
            )
            if not same_symmetry:
                detection += 1
                continue
            err = np.abs(r.features - ref.features[index]).max()
            assert err <= TOL, (dataset, symprec, r.international, err)
            passed += 1
    if symprec <= 1e-5:
        assert detection == 0
    assert passed >= 0.8 * (passed + detection)


# ------------------------------------------------------------------ inputs
def test_input_forms_agree(refs, tmp_path):
    L, x, z = CRYSTALS["rutile-TiO2"]
    ref = refs["rutile-TiO2"].features
    symbols = [basisdb._cif.ELEMENTS[k] for k in z]
    assert np.array_equal(featurize((L.tolist(), x.tolist(), symbols)).features, ref)
    assert np.array_equal(featurize({"lattice": L, "positions": x, "numbers": z}).features, ref)

    class FakeLattice:
        matrix = L

    class FakeStructure:  # the attributes featurize reads from a pymatgen Structure
        lattice = FakeLattice()
        frac_coords = x
        atomic_numbers = tuple(int(v) for v in z)
        is_ordered = True

    assert np.array_equal(featurize(FakeStructure()).features, ref)
    text = crystals.to_cif(L, x, z)
    assert np.abs(featurize(text).features - ref).max() <= TOL  # CIF text
    path = tmp_path / "rutile.cif"
    path.write_text(text)
    assert np.abs(featurize(str(path)).features - ref).max() <= TOL
    for route, structure in _cif_routes(path).items():
        assert np.abs(featurize(structure).features - ref).max() <= TOL, route


def test_ase_atoms(refs):
    ase = pytest.importorskip("ase")
    L, x, z = CRYSTALS["corundum-H"]
    atoms = ase.Atoms(numbers=z, scaled_positions=x, cell=L, pbc=True)
    assert np.abs(featurize(atoms).features - refs["corundum-H"].features).max() <= TOL
    atoms.pbc = (True, True, False)
    with pytest.raises(ValueError, match="not periodic"):
        featurize(atoms)


def test_pymatgen_structure(refs):
    pmg = pytest.importorskip("pymatgen.core")
    L, x, z = CRYSTALS["alpha-quartz"]
    s = pmg.Structure(pmg.Lattice(L), [int(v) for v in z], x)
    assert np.abs(featurize(s).features - refs["alpha-quartz"].features).max() <= TOL


def test_dataset_cif_routes_agree(tmp_path):
    """carbon_24's CIFs (pymatgen-written) read identically through every CIF route."""
    _dataset_sample("carbon_24", 3, seed=1)
    rows = crystals.dataset_rows("carbon_24")
    path = tmp_path / "carbon.cif"
    path.write_text(rows[0]["cif"])
    ref = featurize(rows[0]["cif"])
    for route, structure in _cif_routes(path).items():
        assert _match(featurize(structure), ref) <= TOL, route


def test_result_fields(refs):
    r = refs["corundum-H"]
    L, x, z = CRYSTALS["corundum-H"]
    assert r.international == "R-3c" and r.hall_symbol == r.basis.setting.hall_symbol
    assert np.array_equal(r.numbers, z)
    # positions are T x + s up to the (here zero) symmetrisation displacement
    d = r.to_setting(x) - r.positions
    assert np.abs(d - np.rint(d)).max() < 1e-9
    # the canonical cell holds every atom of the conventional cell once; site points into it
    assert len(r.cell_numbers) == 30 and np.array_equal(r.cell_numbers[r.site], z)
    dd = r.cell_positions[r.site] - r.positions
    assert np.abs(dd - np.rint(dd)).max() < 1e-9
    # two orbits (Al 12c, O 18e), numbered canonically
    assert sorted(np.bincount(r.orbit).tolist()) == [12, 18]
    # the canonical lattice describes the same Cartesian structure
    assert np.isclose(abs(np.linalg.det(r.lattice)), abs(np.linalg.det(L)))
    assert "R-3c" in repr(r)
    # NaCl: the canonical presentation puts Na (the smaller atomic number) at the origin
    assert np.allclose(refs["NaCl"].cell_positions[0], 0) and refs["NaCl"].cell_numbers[0] == 11


def test_kmax_db_and_complex(refs):
    L, x, z = CRYSTALS["Mg-hcp"]
    r4 = featurize((L, x, z), kmax=4)
    assert r4.basis.kmax == 4 and r4.features.shape[1] == r4.basis.n_basis
    db = basisdb.open()
    rc = featurize((L, x, z), kmax=3, db=db, real=False)
    assert np.iscomplexobj(rc.features)
    assert np.allclose(rc.features, db.get(hall=488, kmax=3).evaluate(rc.positions, real=False))


# ------------------------------------------------------------------ bad input
NACL = CRYSTALS["NaCl"]


@pytest.mark.parametrize(
    "structure, exc, match",
    [
        ((np.zeros((3, 3)), NACL[1], NACL[2]), ValueError, "singular"),
        ((np.array([[1, 0, 0], [2, 0, 0], [0, 0, 1.0]]), NACL[1], NACL[2]), ValueError, "singular"),
        ((NACL[0], NACL[1] * np.nan, NACL[2]), ValueError, "NaN or inf"),
        ((np.full((3, 3), np.inf), NACL[1], NACL[2]), ValueError, "NaN or inf"),
        ((NACL[0], np.zeros((0, 3)), []), ValueError, "no atoms"),
        (
            (NACL[0], np.vstack([NACL[1], NACL[1][:1] + 0.001]), list(NACL[2]) + [11]),
            ValueError,
            "overlapping",
        ),
        ((NACL[0], NACL[1], NACL[2][:-1]), ValueError, "positions but"),
        ((NACL[0][:2], NACL[1], NACL[2]), ValueError, r"shape \(3, 3\)"),
        ((NACL[0], NACL[1][:, :2], NACL[2]), ValueError, r"shape \(n, 3\)"),
        ((NACL[0], NACL[1], ["Na"] * 4 + ["Xx"] * 4), ValueError, "unknown element"),
        ((NACL[0], NACL[1], NACL[2] * 0.5), ValueError, "integers"),
        ((NACL[0], NACL[1]), ValueError, "lattice, fractional positions, numbers"),
        (42, TypeError, "structure must be"),
        ("/nonexistent/file.cif", FileNotFoundError, "no such CIF"),
    ],
)
def test_bad_input(structure, exc, match):
    with pytest.raises(exc, match=match):
        featurize(structure)


def test_tiny_cell_overlaps_its_image():
    with pytest.raises(ValueError, match="overlapping"):
        featurize((np.eye(3) * 0.05, [[0, 0, 0]], [1]))


def test_bad_options():
    with pytest.raises(ValueError, match="symprec"):
        featurize(NACL, symprec=0)
    with pytest.raises(ValueError, match="kmax"):
        featurize(NACL, kmax=99)
    with pytest.raises(ValueError, match="reader"):
        featurize(crystals.to_cif(*NACL), reader="nope")
    # min_distance=0 switches the overlap check off (spglib then decides)
    assert featurize(NACL, min_distance=0).hall_number == 523


CIF_NO_ATOMS = """data_empty
_cell_length_a 4
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_symmetry_equiv_pos_as_xyz
 'x,y,z'
"""

CIF_PARTIAL = (
    CIF_NO_ATOMS
    + """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Fe1 Fe 0 0 0 0.5
"""
)


def test_bad_cifs():
    with pytest.raises(CIFError, match=r"no atoms|atom"):
        featurize(CIF_NO_ATOMS)
    with pytest.raises(CIFError, match="partial occupanc"):
        featurize(CIF_PARTIAL)


def test_cif_details():
    """Uncertainties, comments, label-only species; a space-group symbol instead of the operations."""
    text = (
        CIF_NO_ATOMS.replace("_cell_length_a 4", "_cell_length_a 4.000(2)  # a comment")
        + """loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1+ 0.0000(1) 0 0
"""
    )
    L, x, z = read_cif(text)
    assert np.allclose(L, 4 * np.eye(3)) and z.tolist() == [11] and x.shape == (1, 3)
    L, x, z = read_cif(
        text.replace(
            "loop_\n_symmetry_equiv_pos_as_xyz\n 'x,y,z'\n", "_symmetry_space_group_name_H-M 'F m -3 m'\n"
        )
    )
    assert z.tolist() == [11] * 4 and featurize((L, x, z)).hall_number == 523


def test_disordered_pymatgen_like():
    class Disordered:
        class lattice:
            matrix = np.eye(3)

        frac_coords = np.zeros((1, 3))
        is_ordered = False

    with pytest.raises(ValueError, match="disordered"):
        featurize(Disordered())


def test_missing_spglib_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "spglib", None)
    with pytest.raises(ImportError, match=r"pip install basisdb\[structures\]"):
        featurize(NACL)


def test_import_stays_light():
    import subprocess

    code = "import sys, basisdb; print(sorted(m for m in ('spglib', 'torch', 'jax', 'ase', 'gemmi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ every group and every setting
def _presentation_check(cell, rng, kinds, kmax=2):
    ref = featurize(cell, kmax=kmax)
    L, x, z, index = crystals.represent(cell, rng, kinds)
    r = featurize((L, x, z), kmax=kmax)
    assert r.hall_number == ref.hall_number
    return ref, float(np.abs(r.features - ref.features[index]).max())


def test_every_space_group_random_crystal():
    """A random crystal of each of the 230 groups (default setting), one random presentation each."""
    db = basisdb.open()
    rng = np.random.default_rng(2024)
    worst = 0.0
    for s in db.settings():
        if not s.is_default:
            continue
        cell = crystals.random_crystal(s, rng)
        ref, err = _presentation_check(cell, rng, ("shift", "cell", "permute", "rotate", "unwrap"))
        assert ref.number >= s.number  # random positions may add symmetry, never remove it
        worst = max(worst, err)
    assert worst <= TOL, worst


@pytest.mark.parametrize("chunk", range(4))
def test_settings_sample_random_crystal(chunk):
    """Crystals built in 40 non-default settings (unique axes, cell choices, origin choices,
    rhombohedral axes): detected in the default setting, presentation-invariant."""
    db = basisdb.open()
    rng = np.random.default_rng(chunk)
    others = [s for s in db.settings() if not s.is_default]
    for i in rng.choice(len(others), size=10, replace=False):
        cell = crystals.random_crystal(others[i], rng)
        ref, err = _presentation_check(cell, rng, ("shift", "supercell", "permute", "lefthanded"))
        assert ref.number >= others[i].number and err <= TOL, (others[i].hall_number, err)


@pytest.mark.slow
def test_all_530_settings_random_crystal():
    db = basisdb.open()
    rng = np.random.default_rng(530)
    for s in db.settings():
        cell = crystals.random_crystal(s, rng)
        for kinds in (("shift", "cell", "permute", "rotate", "unwrap"), ("shift", "supercell", "lefthanded")):
            _ref, err = _presentation_check(cell, rng, kinds)
            assert err <= TOL, (s.hall_number, kinds, err)


def test_readme_structure_example():
    """The README's 'From a crystal structure' block runs as written (from the repository root)."""
    pytest.importorskip("torch")
    import os

    repo = Path(__file__).resolve().parents[2]
    text = (repo / "README.md").read_text()
    block = text.split("## From a crystal structure")[1].split("```python")[1].split("```")[0]
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        ns: dict = {}
        exec(compile(block, "README.md", "exec"), ns)
    finally:
        os.chdir(cwd)
    assert tuple(ns["feats"].shape) == (8, ns["r"].basis.n_basis) and tuple(ns["enc"].shape) == (8, 13**3)


def _op_set(rots, trans, digits=4):
    return {
        tuple(np.round(np.asarray(R, dtype=float), 6).ravel() + 0.0)
        + tuple(np.round(np.asarray(t) % 1.0, digits) % 1.0)
        for R, t in zip(rots, trans)
    }


@pytest.mark.parametrize("name", sorted(CRYSTALS))
def test_operations_are_spglibs_operations_of_the_input_cell(refs, name):
    """operations() is the crystal's group modulo the input lattice, each operation once: the same set as
    spglib.get_symmetry of the input cell (rotations exact, translations to 1e-4)."""
    spglib = pytest.importorskip("spglib")
    L, x, z = CRYSTALS[name]
    ops = spglib.get_symmetry((L, x, z), symprec=1e-3)
    rots, trans = refs[name].operations()
    assert np.allclose(rots, np.rint(rots))  # a primitive or conventional input cell: integer matrices
    assert len(rots) == len(_op_set(rots, trans)) == len(ops["rotations"])
    assert _op_set(rots, trans) == _op_set(ops["rotations"], ops["translations"])


def test_operations_of_a_supercell_include_its_extra_translations():
    """A 2 x 1 x 1 supercell of rock salt: every operation of the crystal modulo the supercell's lattice
    (2 x 192, the pure translation (1/2, 0, 0) among them), each mapping the atoms onto atoms."""
    a = 5.64
    base = [(0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
    x = np.array(base + [(u + 0.5, v, w) for u, v, w in base])
    z = np.array([11] * 4 + [17] * 4)
    sx = np.concatenate([x / [2, 1, 1], (x + [1, 0, 0]) / [2, 1, 1]]) % 1.0
    sz = np.concatenate([z, z])
    L = np.diag([2 * a, a, a])
    r = featurize((L, sx, sz))
    rots, trans = r.operations()
    assert len(rots) == 384 and len(_op_set(rots, trans, 6)) == 384
    assert any(np.allclose(R, np.eye(3)) and np.allclose(t, [0.5, 0, 0]) for R, t in zip(rots, trans))
    for R, t in zip(rots, trans):
        img = (sx @ R.T + t) % 1.0
        d = img[:, None, :] - sx[None, :, :]
        d -= np.rint(d)
        hit = np.linalg.norm(d @ L, axis=-1) < 1e-6
        assert hit.any(axis=1).all() and (sz[hit.argmax(axis=1)] == sz).all()
