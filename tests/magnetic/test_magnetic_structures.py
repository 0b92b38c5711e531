"""featurize(structure, magmoms=...) for collinear magnets: detection, canonical BNS presentation, invariance.

References are independent of basisdb's canonicalisation: spglib's magnetic dataset (type, UNI/BNS
numbers and its operations with time reversal, in the input frame) and explicit re-presentations of
the input (origin shift, cell change, supercell, permutation, rotation, global moment flip)."""

from __future__ import annotations

import numpy as np
import pytest

spglib = pytest.importorskip("spglib")

import basisdb  # noqa: E402

KMAX = 3
A_MNF2, C_MNF2, U_MNF2 = 4.87, 3.31, 0.305


def mnf2():
    u = U_MNF2
    lat = np.diag([A_MNF2, A_MNF2, C_MNF2])
    pos = (
        np.array(
            [
                [0, 0, 0],
                [0.5, 0.5, 0.5],
                [u, u, 0],
                [-u, -u, 0],
                [0.5 + u, 0.5 - u, 0.5],
                [0.5 - u, 0.5 + u, 0.5],
            ]
        )
        % 1.0
    )
    num = np.array([25, 25, 9, 9, 9, 9])
    mag = np.array([1.0, -1.0, 0, 0, 0, 0])
    return lat, pos, num, mag


def feat(lat, pos, num, mag, **kw):
    kw.setdefault("kmax", KMAX)
    return basisdb.featurize((lat, pos, num), magmoms=mag, **kw)


def spglib_magnetic(lat, pos, num, mag, symprec=0.1):
    return spglib.get_magnetic_symmetry_dataset((lat, pos, num, mag), symprec=symprec)


def spglib_reference(lat, pos, num, mag):
    """spglib's magnetic dataset of the input; when spglib fails on it ("Failed to match with UNI
    number", spglib 2.x) and the structure repeats under (0, 0, 1/2), that of the halved cell."""
    try:
        return spglib_magnetic(lat, pos, num, mag)
    except Exception:
        lower = pos[:, 2] < 0.5 - 1e-9
        half = pos[lower] * [1, 1, 2]
        return spglib_magnetic(lat @ np.diag([1, 1, 0.5]), half, num[lower], mag[lower])


def rotation(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def assert_same(a, b, atol=1e-8):
    """Same magnetic features, atom by atom (a's atom i is b's atom i)."""
    ma, mb = a.magnetic, b.magnetic
    assert (ma.uni_number, ma.type) == (mb.uni_number, mb.type)
    np.testing.assert_allclose(ma.time_even_features, mb.time_even_features, atol=atol)
    np.testing.assert_allclose(ma.time_odd_features, mb.time_odd_features, atol=atol)


def rows_multiset(x, decimals=6):
    return sorted(map(tuple, np.round(x, decimals).tolist()))


# ------------------------------------------------------------------ detection
def test_mnf2_detected_as_spglib_says():
    lat, pos, num, mag = mnf2()
    r = feat(lat, pos, num, mag)
    ds = spglib_magnetic(lat, pos, num, mag)
    ref = spglib.get_magnetic_spacegroup_type(ds.uni_number)
    m = r.magnetic
    assert m.uni_number == ds.uni_number == 1158
    assert m.bns_number == ref.bns_number == "136.498"
    assert m.og_number == ref.og_number
    assert m.type == ds.msg_type == 3
    assert m.time_even_features.shape == (6, m.basis.time_even.n_basis)
    assert m.time_odd_features.shape == (6, m.basis.time_odd.n_basis)
    # the ordinary result is unchanged by magmoms
    plain = basisdb.featurize((lat, pos, num), kmax=KMAX)
    np.testing.assert_allclose(r.features, plain.features)
    assert plain.magnetic is None
    # the two Mn carry the same invariants (a primed operation swaps them); so do the four F
    np.testing.assert_allclose(m.time_odd_features[0], m.time_odd_features[1], atol=1e-9)
    np.testing.assert_allclose(
        m.time_even_features[2:],
        np.broadcast_to(m.time_even_features[2], (4, m.time_even_features.shape[1])),
        atol=1e-9,
    )
    # the time-odd features of Mn are not all zero: the spin density has a non-trivial basis there
    assert np.abs(m.time_odd_features[0]).max() > 1e-3


# ------------------------------------------------------------------ re-presentations
def test_mnf2_origin_shift_and_global_flip():
    lat, pos, num, mag = mnf2()
    base = feat(lat, pos, num, mag)
    # the down-moment Mn at the origin (spglib now puts the other Mn there)
    assert_same(feat(lat, (pos + 0.5) % 1.0, num, mag), base)
    for shift in ([0.1, 0.2, 0.3], [0.25, 0.5, 0.0], [-0.37, 0.11, 0.73]):
        assert_same(feat(lat, (pos + shift) % 1.0, num, mag), base)
    flipped = feat(lat, pos, num, -mag)
    assert_same(flipped, base)
    assert flipped.magnetic.flip == -base.magnetic.flip
    np.testing.assert_array_equal(flipped.magnetic.signs, base.magnetic.signs)


def test_mnf2_permutation_rotation_cell_change():
    lat, pos, num, mag = mnf2()
    base = feat(lat, pos, num, mag)
    perm = np.random.default_rng(1).permutation(len(pos))
    r = feat(lat, pos[perm], num[perm], mag[perm])
    np.testing.assert_allclose(r.magnetic.time_odd_features, base.magnetic.time_odd_features[perm], atol=1e-8)
    np.testing.assert_allclose(
        r.magnetic.time_even_features, base.magnetic.time_even_features[perm], atol=1e-8
    )
    # rotated Cartesian frame (fractional coordinates unchanged)
    assert_same(feat(lat @ rotation(2).T, pos, num, mag), base)
    # another cell of the same lattice: new rows = M @ old rows, x_new = x_old M^-1
    M = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    assert_same(feat(M @ lat, (pos @ np.linalg.inv(M)) % 1.0, num, mag), base)


def supercell(lat, pos, num, mag, reps=(2, 1, 1)):
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])])
    spos = ((pos[None, :, :] + shifts[:, None, :]) / np.array(reps)).reshape(-1, 3)
    return np.diag(reps) @ lat, spos, np.tile(num, len(shifts)), np.tile(mag, len(shifts)), len(shifts)


def test_mnf2_supercell():
    lat, pos, num, mag = mnf2()
    base = feat(lat, pos, num, mag)
    slat, spos, snum, smag, k = supercell(lat, pos, num, mag, (1, 2, 2))
    r = feat(slat, spos, snum, smag)
    assert r.magnetic.uni_number == base.magnetic.uni_number
    np.testing.assert_allclose(
        r.magnetic.time_odd_features, np.tile(base.magnetic.time_odd_features, (k, 1)), atol=1e-8
    )
    np.testing.assert_allclose(
        r.magnetic.time_even_features, np.tile(base.magnetic.time_even_features, (k, 1)), atol=1e-8
    )


# ------------------------------------------------------------------ random antiferromagnets
def random_afm(seed):
    """A tetragonal crystal (Fe at 0 and (1/2,1/2,1/2), O at (u,u,0), (-u,-u,0)) doubled along c, with
    random moment signs on the four Fe (doubling along c keeps the tetragonal metric: spglib's magnetic
    search then sees every operation, see ``_magnetic_structures._magnetic_primitive``)."""
    rng = np.random.default_rng(seed)
    a, c = 4.0 + rng.random(), 5.0 + rng.random()
    lat = np.diag([a, a, c])
    u = 0.1 + 0.3 * rng.random()
    pos = np.array([[0, 0, 0], [0.5, 0.5, 0.5], [u, u, 0], [-u, -u, 0]]) % 1.0
    num = np.array([26, 26, 8, 8])
    slat, spos, snum, _, _ = supercell(lat, pos, num, np.zeros(4), (1, 1, 2))
    signs = rng.choice([-1.0, 1.0], size=4)
    if seed % 3 == 0:
        signs = np.array([1.0, -1.0, -1.0, 1.0])  # antiferromagnetic in both halves
    smag = np.zeros(len(spos))
    smag[snum == 26] = 2.0 * signs
    return slat, spos, snum, smag


@pytest.mark.parametrize("seed", range(8))
def test_random_afm_invariance(seed):
    lat, pos, num, mag = random_afm(seed)
    base = feat(lat, pos, num, mag)
    ds = spglib_reference(lat, pos, num, mag)
    assert base.magnetic.uni_number == ds.uni_number
    assert base.magnetic.type == ds.msg_type
    rng = np.random.default_rng(100 + seed)
    perm = rng.permutation(len(pos))
    shift = rng.random(3)
    M = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]])
    variants = [
        (lat, (pos + shift) % 1.0, num, mag, np.arange(len(pos))),
        (lat, pos[perm], num[perm], mag[perm], perm),
        (lat @ rotation(seed).T, pos, num, mag, np.arange(len(pos))),
        (M @ lat, ((pos + shift) @ np.linalg.inv(M)) % 1.0, num, mag, np.arange(len(pos))),
        (lat, pos, num, -mag, np.arange(len(pos))),
        (lat, (pos + shift) % 1.0, num, -mag, np.arange(len(pos))),
    ]
    for vlat, vpos, vnum, vmag, idx in variants:
        r = feat(vlat, vpos, vnum, vmag)
        assert r.magnetic.uni_number == base.magnetic.uni_number
        np.testing.assert_allclose(
            r.magnetic.time_odd_features, base.magnetic.time_odd_features[idx], atol=1e-7
        )
        np.testing.assert_allclose(
            r.magnetic.time_even_features, base.magnetic.time_even_features[idx], atol=1e-7
        )
    # supercell: the same invariants per atom identity
    for reps in ((1, 1, 2), (2, 1, 1)):  # (2, 1, 1): spglib alone sees an orthorhombic cell
        slat, spos, snum, smag, k = supercell(lat, pos, num, mag, reps)
        r = feat(slat, spos, snum, smag)
        assert r.magnetic.uni_number == base.magnetic.uni_number
        np.testing.assert_allclose(
            r.magnetic.time_odd_features, np.tile(base.magnetic.time_odd_features, (k, 1)), atol=1e-7
        )
        np.testing.assert_allclose(
            r.magnetic.time_even_features, np.tile(base.magnetic.time_even_features, (k, 1)), atol=1e-7
        )


def test_type_iv_antiferromagnet_flip_by_translation():
    """Doubling a cell with opposite moments: the anti-translation maps the structure onto its flip."""
    lat = np.diag([3.0, 3.0, 3.0])
    pos = np.array([[0, 0, 0], [0, 0, 0.5], [0.5, 0.5, 0.25], [0.5, 0.5, 0.75]])
    num = np.array([26, 26, 8, 8])
    mag = np.array([1.0, -1.0, 0, 0])
    lat2 = lat @ np.diag([1, 1, 2])
    base = feat(lat2, pos, num, mag)
    assert base.magnetic.type == spglib_magnetic(lat2, pos, num, mag).msg_type == 4
    np.testing.assert_allclose(
        base.magnetic.time_odd_features[0], base.magnetic.time_odd_features[1], atol=1e-9
    )
    assert_same(feat(lat2, (pos + [0, 0, 0.5]) % 1.0, num, mag), base)


# ------------------------------------------------------------------ ferromagnet and non-magnetic
def test_ferromagnet_type_i():
    lat, pos, num, _ = mnf2()
    mag = np.array([1.5, 1.5, 0, 0, 0, 0])
    r = feat(lat, pos, num, mag)
    m = r.magnetic
    assert m.type == 1 == spglib_magnetic(lat, pos, num, mag).msg_type
    assert m.flip == 1
    np.testing.assert_array_equal(m.signs, [1, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(m.time_odd_features, m.time_even_features * m.signs[:, None], atol=1e-12)
    # the time-even features are the ordinary ones of the family group (here the crystal's own group)
    assert m.basis.group.family_number == r.number
    assert_same(feat(lat, pos, num, -mag), r)


def test_nonmagnetic_is_grey():
    lat, pos, num, _ = mnf2()
    r = feat(lat, pos, num, np.zeros(len(pos)))
    m = r.magnetic
    assert m.type == 2
    assert m.time_odd_features.shape == (len(pos), 0)
    assert m.time_even_features.shape[1] > 0
    np.testing.assert_array_equal(m.signs, 0)


# ------------------------------------------------------------------ transformation under spglib's operations
@pytest.mark.parametrize("case", ["mnf2", "afm0", "afm1", "afm2"])
def test_time_odd_transforms_with_sign_under_spglib_operations(case):
    if case == "mnf2":
        lat, pos, num, mag = mnf2()
        pos = (pos + [0.13, 0.41, 0.07]) % 1.0  # not the standard origin
    else:
        lat, pos, num, mag = random_afm(int(case[3:]))
    r = feat(lat, pos, num, mag)
    m = r.magnetic
    ds = spglib_magnetic(lat, pos, num, mag)  # the operations in the input frame
    assert len(ds.rotations) > 1
    pts = np.random.default_rng(7).random((20, 3))
    odd_pts = m.evaluate(pts, "odd")
    even_pts = m.evaluate(pts, "even")
    for R, t, theta in zip(ds.rotations, ds.translations, ds.time_reversals):
        sgn = -1.0 if theta else 1.0
        # atoms: the image of atom i is atom j with moment (-1)^theta m_i, and equal invariants
        img = pos @ R.T + t
        d = img[:, None, :] - pos[None, :, :]
        d -= np.rint(d)
        j = np.argmin((d**2).sum(axis=-1), axis=1)
        assert np.abs(d[np.arange(len(pos)), j]).max() < 1e-6
        np.testing.assert_allclose(mag[j], sgn * mag[np.arange(len(pos))])
        np.testing.assert_allclose(m.time_odd_features[j], m.time_odd_features, atol=1e-8)
        np.testing.assert_allclose(m.time_even_features[j], m.time_even_features, atol=1e-8)
        # the unsigned time-odd field at arbitrary points changes sign with theta; the even one does not
        np.testing.assert_allclose(m.evaluate(pts @ R.T + t, "odd"), sgn * odd_pts, atol=1e-8)
        np.testing.assert_allclose(m.evaluate(pts @ R.T + t, "even"), even_pts, atol=1e-8)


# ------------------------------------------------------------------ errors
def test_noncollinear_and_bad_magmoms_refused():
    lat, pos, num, mag = mnf2()
    with pytest.raises(ValueError, match="non-collinear"):
        basisdb.featurize((lat, pos, num), magmoms=np.zeros((len(pos), 3)), kmax=KMAX)
    with pytest.raises(ValueError, match="shape"):
        basisdb.featurize((lat, pos, num), magmoms=mag[:3], kmax=KMAX)
    with pytest.raises(ValueError, match="finite"):
        basisdb.featurize((lat, pos, num), magmoms=np.full(len(pos), np.nan), kmax=KMAX)
    with pytest.raises(ValueError, match="mag_symprec"):
        basisdb.featurize((lat, pos, num), magmoms=mag, mag_symprec=-1.0, kmax=KMAX)


# ------------------------------------------------------------------ magnetic CIFs: magmoms="cif"
FIELD = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "field_cases"
#: BNS 136.499 P4_2'/mnm' (the true group of MnF2 with axial moments along c), written out by hand in
#: the rutile setting of the field case; the test checks it against spglib's database (UNI 1159)
OPS_136_499 = [
    "x,y,z,+1",
    "y+1/2,-x+1/2,z+1/2,-1",
    "-x,-y,z,+1",
    "-y+1/2,x+1/2,z+1/2,-1",
    "y,x,-z,-1",
    "-y,-x,-z,-1",
    "-y,-x,z,-1",
    "-y+1/2,x+1/2,-z+1/2,-1",
    "x,y,-z,+1",
    "y,x,z,-1",
    "-x,-y,-z,+1",
    "y+1/2,-x+1/2,-z+1/2,-1",
    "x+1/2,-y+1/2,z+1/2,+1",
    "-x+1/2,y+1/2,-z+1/2,+1",
    "-x+1/2,y+1/2,z+1/2,+1",
    "x+1/2,-y+1/2,-z+1/2,+1",
]


def field_mcif():
    path = FIELD / "mnf2_magnetic.mcif"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    pytest.importorskip("gemmi")
    return path


def op_set(rot, tra, primed):
    return {
        tuple(np.asarray(r).ravel().tolist())
        + tuple((np.rint(np.asarray(t) * 24).astype(int) % 24).tolist())
        + (int(p),)
        for r, t, p in zip(rot, tra, primed)
    }


def database_op_set(uni):
    d = spglib.get_magnetic_symmetry_from_database(uni)
    return op_set(d["rotations"], d["translations"], d["time_reversals"])


def declared_op_set(crystal):
    rot, tra, theta = crystal.declared.time_reversals
    return op_set(rot, np.asarray(tra) / 24, np.asarray(theta) == -1)


def mnf2_mcif_136_499():
    """The field case with its operation loop replaced by the operations of 136.499 (which it names)."""
    text = field_mcif().read_text()
    head, rest = text.split("_space_group_symop_magn_operation.xyz\n")
    tail = rest.split("loop_\n", 1)[1]
    return (
        head
        + "_space_group_symop_magn_operation.xyz\n"
        + "".join(f"{i + 1} {op}\n" for i, op in enumerate(OPS_136_499))
        + "loop_\n"
        + tail
    )


def test_field_mcif_moments_contradict_its_operations():
    """The field case names BNS 136.499 but lists the operations of 136.498 (spglib's database); under
    them an axial moment along c at Mn (0,0,0) is forbidden (the unprimed 2-fold -y,-x,-z reverses it).
    The structure is read; magmoms="cif" is a clear error naming the operation and both groups."""
    from basisdb._cif import load_cif

    path = field_mcif()
    c = load_cif(path)
    assert declared_op_set(c) == database_op_set(1158) != database_op_set(1159)
    assert len(c.positions) == 6 and c.moments is None
    with pytest.raises(
        ValueError, match=r"moment of Mn1 is not allowed .*-y,-x,-z,\+1.*BNS 136\.498.*'136\.499'"
    ):
        basisdb.featurize(path, magmoms="cif", kmax=KMAX)
    assert basisdb.featurize(path, kmax=KMAX).magnetic is None  # the structure alone is still read


def test_mnf2_mcif_moments_expanded_as_axial_vectors():
    from basisdb._cif import load_cif

    text = mnf2_mcif_136_499()
    c = load_cif(text)
    assert declared_op_set(c) == database_op_set(1159)
    assert c.moment_error is None
    mn = np.flatnonzero(c.numbers == 25)
    at = {tuple(np.round(c.positions[i], 6)): c.moments[i] for i in mn}
    # independently: Mn at 0 keeps the listed (0, 0, 4.6) muB along c; Mn at (1/2,1/2,1/2) is opposite
    np.testing.assert_allclose(at[(0.0, 0.0, 0.0)], [0, 0, 4.6], atol=1e-12)
    np.testing.assert_allclose(at[(0.5, 0.5, 0.5)], [0, 0, -4.6], atol=1e-12)
    np.testing.assert_allclose(c.moments[c.numbers == 9], 0.0)
    # the axial moments have the group the file names (spglib, vector moments): 136.499
    ds_axial = spglib.get_magnetic_symmetry_dataset(
        (c.lattice, c.positions, c.numbers, c.moments), symprec=0.1
    )
    assert spglib.get_magnetic_spacegroup_type(ds_axial.uni_number).bns_number == "136.499"


def test_mnf2_mcif_featurize_cif_moments():
    """featurize(mcif, magmoms="cif"): the signed-scalar group (spglib on the expanded structure with
    signed moments, 136.498) and the same invariants as the array input, under every re-presentation."""
    from basisdb._cif import load_cif

    text = mnf2_mcif_136_499()
    r = basisdb.featurize(text, magmoms="cif", kmax=KMAX)
    c = load_cif(text)
    lat, pos, num = c.lattice, c.positions, c.numbers
    mag = c.moments[:, 2]
    ds = spglib_magnetic(lat, pos, num, mag)
    m = r.magnetic
    assert m.uni_number == ds.uni_number == 1158 and m.bns_number == "136.498" and m.type == ds.msg_type == 3
    np.testing.assert_allclose(m.magmoms, mag * np.sign(mag[0]))
    np.testing.assert_allclose(np.abs(m.moment_axis @ [0, 0, 1]), 1.0)
    base = feat(lat, pos, num, mag)
    assert_same(r, base)
    # the test's own MnF2 (another atom order and origin choice of the same crystal)
    lat0, pos0, num0, mag0 = mnf2()
    other = feat(lat0, pos0, num0, mag0)
    assert rows_multiset(other.magnetic.features) == rows_multiset(m.features)
    # re-presentations of the expanded structure
    perm = np.random.default_rng(3).permutation(len(pos))
    shift = np.array([0.31, -0.17, 0.45])
    M = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    for vlat, vpos, vnum, vmag, idx in [
        (lat, (pos + shift) % 1.0, num, mag, np.arange(len(pos))),
        (lat, pos[perm], num[perm], mag[perm], perm),
        (lat @ rotation(5).T, pos, num, mag, np.arange(len(pos))),
        (M @ lat, ((pos + shift) @ np.linalg.inv(M)) % 1.0, num, mag, np.arange(len(pos))),
        (lat, pos, num, -mag, np.arange(len(pos))),
    ]:
        v = feat(vlat, vpos, vnum, vmag)
        assert v.magnetic.uni_number == m.uni_number
        np.testing.assert_allclose(v.magnetic.time_odd_features, m.time_odd_features[idx], atol=1e-8)
        np.testing.assert_allclose(v.magnetic.time_even_features, m.time_even_features[idx], atol=1e-8)
    slat, spos, snum, smag, k = supercell(lat, pos, num, mag, (1, 2, 2))
    v = feat(slat, spos, snum, smag)
    np.testing.assert_allclose(v.magnetic.time_odd_features, np.tile(m.time_odd_features, (k, 1)), atol=1e-8)
    np.testing.assert_allclose(
        v.magnetic.time_even_features, np.tile(m.time_even_features, (k, 1)), atol=1e-8
    )
    # re-presented as a magnetic CIF: the origin moved by (1/2,1/2,1/2), so the listed Mn is the down one
    moved = text.replace("Mn1 Mn 0.0 0.0 0.0 1", "Mn1 Mn 0.5 0.5 0.5 1").replace(
        "F1 F 0.305 0.305 0.0 1", "F1 F 0.805 0.805 0.5 1"
    )
    moved = moved.replace("Mn1 0.0 0.0 4.6", "Mn1 0.0 0.0 -4.6")
    cm = load_cif(moved)
    assert cm.moment_error is None
    rm = basisdb.featurize(moved, magmoms="cif", kmax=KMAX)
    assert rows_multiset(rm.magnetic.features) == rows_multiset(m.features)


HEX_MCIF = """data_hex
_cell_length_a 5.0
_cell_length_b 5.0
_cell_length_c 4.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 120
loop_
_space_group_symop_magn_operation.id
_space_group_symop_magn_operation.xyz
1 x,y,z,+1
2 -y,x-y,z,+1
3 -x+y,-x,z,+1
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Fe1 Fe 0.1 0.2 0.0
loop_
_atom_site_moment_label
_atom_site_moment_crystalaxis_x
_atom_site_moment_crystalaxis_y
_atom_site_moment_crystalaxis_z
Fe1 2.0 0.0 0.0
"""


def test_crystalaxis_convention_and_noncollinear_refused():
    """Crystal-axis components are muB along the unit vectors a/|a|, b/|b|, c/|c| (older underscore tags):
    (2, 0, 0) is 2 muB along a, and the 3-fold turns it into 2 muB along b, then along -(a + b)."""
    pytest.importorskip("gemmi")
    from basisdb._cif import load_cif

    c = load_cif(HEX_MCIF)
    unit = c.lattice / np.linalg.norm(c.lattice, axis=1)[:, None]
    images = np.array(
        [[0.1, 0.2, 0], [-0.2, -0.1, 0], [0.1, -0.1, 0]]
    )  # x, then -y,x-y,z and -x+y,-x,z of it
    order = [int(np.argmin(np.linalg.norm((c.positions - p + 0.5) % 1.0 - 0.5, axis=1))) for p in images]
    np.testing.assert_allclose(c.moments[order[0]], 2 * unit[0], atol=1e-12)
    np.testing.assert_allclose(c.moments[order[1]], 2 * unit[1], atol=1e-12)
    np.testing.assert_allclose(
        c.moments[order[2]], -2 * (unit[0] + unit[1]) / np.linalg.norm(unit[0] + unit[1]), atol=1e-12
    )
    with pytest.raises(ValueError, match="non-collinear"):
        basisdb.featurize(HEX_MCIF, magmoms="cif", kmax=KMAX)
    lat, pos, num, _ = mnf2()
    with pytest.raises(ValueError, match="not a CIF"):
        basisdb.featurize((lat, pos, num), magmoms="cif", kmax=KMAX)
    with pytest.raises(ValueError, match="'cif'"):
        basisdb.featurize((lat, pos, num), magmoms="vasp", kmax=KMAX)
    with pytest.raises(ValueError, match="no magnetic moments"):
        basisdb.featurize(HEX_MCIF.split("loop_\n_atom_site_moment_label")[0], magmoms="cif", kmax=KMAX)
