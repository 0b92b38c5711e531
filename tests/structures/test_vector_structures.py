"""Per-atom equivariant features of crystals (``Featurized.vector_features``), against independent references.

References: hand-written site symmetries of the International Tables (which directions a polar
or an axial vector may take at each occupied Wyckoff position), proper rotations of the input,
re-presentations of the same crystal with a known atom map (tests/crystals.py), and spglib's
idealised standard lattice rotated back into the input frame (``std_rotation_matrix``).
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import featurize
from basisdb._vector_structures import ideal_lattice

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: crystals.py
import crystals

K = 3  # small cut-off: the checks are exact identities, the size of the basis does not matter
TOL = 1e-10  # Angstrom-scaled Cartesian components (features are O(1..20))
BIG = 1e-3  # a direction counts as present when some feature has a component above this
KINDS = ("polar", "axial")
# random low-symmetry cells can have a lattice of higher symmetry: that is what they are meant to be
pytestmark = pytest.mark.filterwarnings("ignore::basisdb.LowSymmetryWarning")


def _hall(symbol: str) -> int:
    return basisdb.open().get(symbol).setting.hall_number


def _triclinic_p1bar():
    return crystals.expand(
        2,
        (5.1, 6.3, 7.2, 81.0, 97.0, 104.0),
        [("Fe", (0, 0, 0)), ("O", (0.21, 0.33, 0.12)), ("S", (0.61, 0.14, 0.83))],
    )


def _p4():
    return crystals.expand(
        _hall("P 4"),
        (5.0, 5.0, 4.0, 90, 90, 90),
        [("Fe", (0, 0, 0)), ("O", (0.5, 0.5, 0.3)), ("S", (0.21, 0.37, 0.61))],
    )


def _chalcopyrite():
    return crystals.expand(
        _hall("I -4 2 d"),
        (5.289, 5.289, 10.423, 90, 90, 90),
        [("Cu", (0, 0, 0)), ("Fe", (0, 0, 0.5)), ("S", (0.2574, 0.25, 0.125))],
    )


# ---------------------------------------------------------------- site symmetries, by hand (ITA)
# Per atom: (polar, axial) allowed subspaces, each one of
#   "0"                 nothing (every feature of the atom vanishes),
#   ("line", d)         one direction, d = fractional direction [uvw] of the input cell,
#   ("plane", h)        the plane normal to the reciprocal vector (hkl) of the input cell,
#   "all"               all three.
# The rule, for site-symmetry point group S: polar vectors fixed by S, axial vectors fixed by
# det(R) R.  m-3m, -43m, mmm, -6m2, -4m2: none; 3m / 4mm / 2mm: polar along the axis, axial none;
# m: polar in the mirror, axial along its normal; 2/m: polar none, axial along the axis;
# -1: polar none, axial all; 2, 3, 4: both along the axis; -4: polar none, axial along the axis.
def _rutile_o(
    x,
):  # 4f m.2m at (x, x, 0), (-x, -x, 0): 2-fold along [110]; at (1/2+x, 1/2-x, 1/2), ...: [1-10]
    on110 = abs(((x[0] - x[1]) + 0.5) % 1.0 - 0.5) < 1e-6
    d = (1, 1, 0) if on110 else (1, -1, 0)
    return ("line", d), "0"


def _corundum_o(
    x,
):  # 18e .2 at (x, 0, 1/4), (0, x, 1/4), (-x, -x, 1/4) (+ rhombohedral centring, z + 1/2 ...):
    # 2-fold along a, b, or a + b; which one: the coordinate pattern modulo the R centring
    for cen in ((0, 0, 0), (2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)):
        y = (np.asarray(x) - cen) % 1.0
        y = np.where(y > 1 - 1e-6, 0.0, y)
        for cond, d in (
            (abs(y[1]) < 1e-6, (1, 0, 0)),
            (abs(y[0]) < 1e-6, (0, 1, 0)),
            (abs(((y[0] - y[1]) + 0.5) % 1.0 - 0.5) < 1e-6, (1, 1, 0)),
        ):
            if cond and (abs(y[2] - 0.25) < 1e-6 or abs(y[2] - 0.75) < 1e-6):
                return ("line", d), ("line", d)
    raise AssertionError(f"corundum O at {x} is not on a 2-fold axis")


def _quartz_si(x):  # P 3_2 2 1, 3a .2.: (x, 0, 2/3) along a, (0, x, 1/3) along b, (-x, -x, 0) along a + b
    if abs(x[1]) < 1e-6:
        d = (1, 0, 0)
    elif abs(x[0]) < 1e-6:
        d = (0, 1, 0)
    else:
        d = (1, 1, 0)
    return ("line", d), ("line", d)


def _const(polar, axial):
    return lambda x: (polar, axial)


C = ("line", (0, 0, 1))
SITES = {
    # name: (cell builder, {species: rule(x) -> (polar, axial)})
    "NaCl": (
        lambda: crystals.literature("NaCl"),
        {11: _const("0", "0"), 17: _const("0", "0")},
    ),  # 4a, 4b m-3m
    "diamond-1": (lambda: crystals.literature("diamond-1"), {6: _const("0", "0")}),  # 8a -43m
    "wurtzite-ZnO": (
        lambda: crystals.literature("wurtzite-ZnO"),
        {30: _const(C, "0"), 8: _const(C, "0")},
    ),  # 2b 3m.
    "rutile-TiO2": (
        lambda: crystals.literature("rutile-TiO2"),
        {22: _const("0", "0"), 8: _rutile_o},
    ),  # 2a m.mm, 4f m.2m
    "anatase-1": (
        lambda: crystals.literature("anatase-1"),
        {22: _const("0", "0"), 8: _const(C, "0")},
    ),  # 4a -4m2, 8e 2mm.
    "Mg-hcp": (lambda: crystals.literature("Mg-hcp"), {12: _const("0", "0")}),  # 2c -6m2
    "marcasite-FeS2": (
        lambda: crystals.literature("marcasite-FeS2"),  # 2a ..2/m, 4g ..m
        {26: _const("0", C), 16: _const(("plane", (0, 0, 1)), C)},
    ),
    "beta-Ga2O3": (
        lambda: crystals.literature("beta-Ga2O3"),  # every atom on 4i, site m (mirror normal to b)
        {
            31: _const(("plane", (0, 1, 0)), ("line", (0, 1, 0))),
            8: _const(("plane", (0, 1, 0)), ("line", (0, 1, 0))),
        },
    ),
    "alpha-U": (lambda: crystals.literature("alpha-U"), {92: _const(("line", (0, 1, 0)), "0")}),  # 4c m2m
    "corundum-H": (
        lambda: crystals.literature("corundum-H"),
        {13: _const(C, C), 8: _corundum_o},
    ),  # 12c 3., 18e .2
    "alpha-quartz": (
        lambda: crystals.literature("alpha-quartz"),
        {14: _quartz_si, 8: _const("all", "all")},
    ),  # 3a .2., 6c 1
    "P-1": (
        _triclinic_p1bar,
        {26: _const("0", "all"), 8: _const("all", "all"), 16: _const("all", "all")},
    ),  # 1a -1, 2i 1
    "P4": (_p4, {26: _const(C, C), 8: _const(C, C), 16: _const("all", "all")}),  # 1a 4.., 1b 4.., 4d 1
    "chalcopyrite": (
        _chalcopyrite,
        {
            29: _const("0", C),
            26: _const("0", C),  # 4a -4.., 4b -4..
            16: lambda x: (lambda d: (("line", d), ("line", d)))(  # 8d .2.: (x,1/4,1/8) along a
                (1, 0, 0) if min(abs(x[1] - 0.25), abs(x[1] - 0.75)) < 1e-6 else (0, 1, 0)
            ),
        },
    ),
}


def _check_site(V: np.ndarray, spec, L: np.ndarray, where: str) -> None:
    """V (n_basis, 3) Cartesian features of one atom against an allowed subspace ``spec``."""
    s = np.linalg.svd(V, compute_uv=False) if len(V) else np.zeros(3)
    s = np.concatenate([s, np.zeros(3)])[:3]
    if spec == "0":
        assert np.abs(V).max(initial=0.0) <= TOL, where
        return
    if spec == "all":
        assert s[2] > BIG, (where, s)
        return
    what, v = spec
    if what == "line":
        u = np.asarray(v, float) @ L  # Cartesian direction u a + v b + w c
        u /= np.linalg.norm(u)
        resid = V - np.outer(V @ u, u)
        assert np.abs(resid).max() <= TOL, (where, np.abs(resid).max())
        assert np.abs(V @ u).max() > BIG, where
    else:  # plane normal to the reciprocal vector h
        n = np.linalg.inv(L) @ np.asarray(v, float)  # Cartesian h1 a* + h2 b* + h3 c*
        n /= np.linalg.norm(n)
        assert np.abs(V @ n).max() <= TOL, (where, np.abs(V @ n).max())
        assert s[1] > BIG, (where, s)


@pytest.mark.parametrize("name", sorted(SITES))
def test_site_symmetry_allows_exactly_the_ita_directions(name):
    build, rules = SITES[name]
    L0, x, z = build()
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # stable across processes
    Q = crystals.random_rotation(rng)
    L = L0 @ Q.T  # a rotated input: the allowed directions are the rotated crystal axes
    r = featurize((L, x, z), kmax=K)
    vecs = {kind: r.vector_features(kind) for kind in KINDS}
    for i in range(len(x)):
        polar, axial = rules[int(z[i])](x[i] % 1.0)
        _check_site(vecs["polar"][i], polar, L, f"{name} atom {i} (Z={z[i]}) polar")
        _check_site(vecs["axial"][i], axial, L, f"{name} atom {i} (Z={z[i]}) axial")


def _pair_forces(L, x, z, sigma=1.6):
    """Cartesian forces of a species-weighted Gaussian pair potential V = sum_{pairs} w_a w_b exp(-r^2/sigma^2)
    (all images within 3 cells): an invariant potential, so each force is a polar vector fixed by the
    atom's site symmetry; computed from the Cartesian positions only."""
    X = np.asarray(x, float) @ L
    w = 1.0 + 0.1 * np.asarray(z, float)
    n = np.arange(-3, 4)
    shifts = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3) @ L
    d = X[:, None, None, :] - X[None, :, None, :] - shifts[None, None, :, :]  # (i, j, image, 3)
    r2 = (d * d).sum(-1)
    g = np.exp(-r2 / sigma**2) * (w[:, None] * w[None, :])[:, :, None]
    g[r2 < 1e-12] = 0.0  # the atom itself
    return (2.0 / sigma**2 * g[..., None] * d).sum(axis=(1, 2))


@pytest.mark.parametrize("name", sorted(SITES))
def test_forces_of_an_invariant_potential_lie_in_each_atoms_polar_span(name):
    """Physical oracle: the force on every atom of a symmetric crystal under any invariant pair
    potential lies in the span of that atom's polar features (and is zero where they all vanish)."""
    L0, x, z = SITES[name][0]()
    Q = crystals.random_rotation(np.random.default_rng(zlib.crc32(name.encode()) + 1))
    L = L0 @ Q.T
    F = _pair_forces(L, x, z)
    V = featurize((L, x, z), kmax=K).vector_features("polar")
    scale = np.abs(F).max()  # O(1) where the site allows a force; round-off (1e-16) at centrosymmetric sites
    for i in range(len(x)):
        _u, s, vt = np.linalg.svd(V[i], full_matrices=False)
        span = vt[s > 1e-6 * max(s.max(initial=0.0), 1.0)]  # orthonormal rows spanning the atom's vectors
        resid = F[i] - span.T @ (span @ F[i])
        assert np.abs(resid).max() <= 1e-10 * max(scale, 1.0), (name, i, z[i], F[i], resid)


# ---------------------------------------------------------------- equivariance and invariance
def _random_cells():
    db = basisdb.open()
    rng = np.random.default_rng(2026)
    out = {}
    for symbol in (
        "P 1",
        "P 1 2_1 1",
        "C 1 2/m 1",
        "P m m 2",
        "P 4_3 2_1 2",
        "R -3 m:H",
        "R 3:R",
        "P 6_3 m c",
        "F d -3 m:2",
        "I a -3 d",
    ):
        s = db.get(symbol).setting
        out[symbol] = crystals.random_crystal(s, rng)
    return out


CELLS = {
    name: crystals.literature(name)
    for name in ("NaCl", "wurtzite-ZnO", "rutile-TiO2", "corundum-H", "alpha-quartz", "beta-Ga2O3")
}
CELLS["corundum-R"] = crystals.corundum_rhombohedral()
CELLS.update(_random_cells())


@pytest.mark.parametrize("name", sorted(CELLS))
def test_features_rotate_with_the_input(name):
    L, x, z = CELLS[name]
    rng = np.random.default_rng(7)
    r0 = featurize((L, x, z), kmax=K)
    for _ in range(2):
        Q = crystals.random_rotation(rng)
        r1 = featurize((L @ Q.T, x, z), kmax=K)
        for kind in KINDS:
            v0, v1 = r0.vector_features(kind), r1.vector_features(kind)
            assert v0.shape == v1.shape and v0.dtype == np.float64
            assert np.abs(v1 - v0 @ Q.T).max(initial=0.0) <= TOL, (name, kind, np.abs(v1 - v0 @ Q.T).max())
            c0, c1 = r0.vector_features(kind, real=False), r1.vector_features(kind, real=False)
            assert np.abs(c1 - c0 @ Q.T).max(initial=0.0) <= TOL


REPRESENTATIONS = (
    ("shift",),
    ("cell",),
    ("supercell",),
    ("permute",),
    ("lefthanded",),
    ("unwrap",),
    ("shift", "cell", "supercell", "permute"),
    ("shift", "lefthanded", "supercell", "permute"),
)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_representations_leave_every_atoms_vectors_unchanged(name):
    """Same crystal, same Cartesian frame, another description: every physical atom keeps its vectors
    (atom by atom through the known map, hence also as multisets)."""
    cell = CELLS[name]
    rng = np.random.default_rng(11)
    r0 = featurize(cell, kmax=K)
    ref = {kind: r0.vector_features(kind) for kind in KINDS}
    for kinds in REPRESENTATIONS:
        L, x, z, index = crystals.represent(cell, rng, kinds=kinds)
        r1 = featurize((L, x, z), kmax=K)
        for kind in KINDS:
            v = r1.vector_features(kind)
            err = np.abs(v - ref[kind][index]).max(initial=0.0)
            assert err <= TOL, (name, kinds, kind, err)
            # multisets: the sorted rows agree (each original atom repeated by the supercell factor)
            key = lambda a: np.round(a.reshape(len(a), -1), 8)  # noqa: E731
            a, b = key(v), key(np.repeat(ref[kind], len(x) // len(cell[1]), axis=0))
            assert np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])])


def test_rotation_and_representation_together():
    L, x, z = CELLS["P 1 2_1 1"]
    rng = np.random.default_rng(5)
    r0 = featurize((L, x, z), kmax=K)
    L1, x1, z1, index = crystals.represent(
        (L, x, z), rng, kinds=("shift", "lefthanded", "supercell", "permute")
    )
    Q = crystals.random_rotation(rng)
    r1 = featurize((L1 @ Q.T, x1, z1), kmax=K)
    for kind in KINDS:
        assert np.abs(r1.vector_features(kind) - r0.vector_features(kind)[index] @ Q.T).max() <= TOL


# ---------------------------------------------------------------- the lattice and the frame
def test_ideal_lattice_is_symmetric_and_in_the_input_frame():
    """Noisy input: the idealised canonical cell has an exactly invariant metric, it is the cell's own
    (L' = L for an exact input), and it agrees with spglib's idealised standard lattice rotated back
    into the input frame (std_lattice @ std_rotation_matrix) to the order of the noise."""
    spglib = crystals._spglib()
    rng = np.random.default_rng(3)
    for name in ("rutile-TiO2", "wurtzite-ZnO", "beta-Ga2O3", "NaCl"):
        L, x, z = crystals.literature(name)
        r = featurize((L, x, z), kmax=K)
        assert np.abs(ideal_lattice(r.lattice, r.basis.rotations) - r.lattice).max() <= 1e-10
        noise = 2e-3
        Ln = (L + rng.normal(scale=noise, size=(3, 3))) @ crystals.random_rotation(rng).T
        xn = x + rng.normal(scale=noise / 5, size=x.shape)
        rn = featurize((Ln, xn, z), kmax=K)
        Li = ideal_lattice(rn.lattice, rn.basis.rotations)
        G = Li @ Li.T
        for R in rn.basis.rotations:
            assert np.abs(R.T @ G @ R - G).max() <= 1e-10
        ds = spglib.get_symmetry_dataset((Ln, xn, z), symprec=0.1)
        back = np.asarray(ds.std_lattice) @ np.asarray(ds.std_rotation_matrix)  # standard cell, input frame
        A = rn.transformation_matrix @ np.linalg.inv(np.asarray(ds.transformation_matrix))  # std -> canonical
        spg = np.linalg.inv(A).T @ back
        assert np.abs(spg - Li).max() <= 20 * noise, (name, np.abs(spg - Li).max())
        # the frame test has teeth: the un-rotated std_lattice is far off
        assert np.abs(np.linalg.inv(A).T @ np.asarray(ds.std_lattice) - Li).max() > 0.1
        # features of the noisy crystal keep the site-symmetry zeros exactly (NaCl) and are
        # close to the clean crystal's, rotated
        for kind in KINDS:
            v = rn.vector_features(kind)
            assert np.all(np.isfinite(v))


def test_axial_features_do_not_depend_on_handedness_of_the_canonical_cell():
    """P m m 2: two presentations may reach canonical cells of opposite handedness (the canonical
    choice applies an improper element: they differ by a mirror of the group). An axial field's
    Cartesian components carry sign(det L), a polar field's do not, so both are
    presentation-independent (without the sign, the axial features of the left-handed ones flip)."""
    L, x, z = CELLS["P m m 2"]
    rng = np.random.default_rng(19)
    r0 = featurize((L, x, z), kmax=K)
    dets = {float(np.sign(np.linalg.det(r0.lattice)))}
    for _ in range(6):
        L1, x1, z1, index = crystals.represent((L, x, z), rng, kinds=("lefthanded", "shift", "permute"))
        r1 = featurize((L1, x1, z1), kmax=K)
        dets.add(float(np.sign(np.linalg.det(r1.lattice))))
        for kind in KINDS:
            assert np.abs(r1.vector_features(kind) - r0.vector_features(kind)[index]).max() <= TOL
    assert dets == {1.0, -1.0}  # both handednesses were exercised


def test_mirror_image_of_a_p1_crystal():
    """x -> -x (same lattice) is the mirror image of a P 1 crystal: at the inverted atoms its polar
    vectors are reversed and its axial ones are not."""
    L, x, z = CELLS["P 1"]
    r0 = featurize((L, x, z), kmax=K)
    r2 = featurize((L, -x, z), kmax=K)
    d = r2.vector_features("polar") + r0.vector_features("polar")
    a = r2.vector_features("axial") - r0.vector_features("axial")
    assert np.abs(d).max() <= TOL and np.abs(a).max() <= TOL
    assert np.abs(r0.vector_features("polar")).max() > BIG


def test_points_and_shapes():
    L, x, z = crystals.literature("wurtzite-ZnO")
    r = featurize((L, x, z), kmax=K)
    v = r.vector_features("polar")
    assert v.shape == (len(x), r.basis.vector("polar").n_basis, 3) and not v.flags.writeable
    at = r.vector_features("polar", points=x)
    assert np.abs(at - v).max() <= 1e-8  # the literature positions are already symmetric
    raw = r.vector_features("polar", idealize=False)
    assert np.abs(raw - v).max() <= 1e-10  # an exact hexagonal cell is its own idealisation
    c = r.vector_features("axial", real=False)
    assert c.dtype == np.complex128
    with pytest.raises(ValueError):
        r.vector_features("tensor")
