"""Equivariant polar and axial vector-field bases (``Basis.vector``), against independent references.

References used here, none of which goes through the dual frequency graph or ``basisdb._vector``:
spglib's operation lists (equivariance, the character formula), the closed frequency set
recomputed in numpy, hand-written point-group tables (International Tables) for uniform
fields, a Gaussian crystal potential's Fourier coefficients (its force field), and
hand-derived screw / glide cases.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import closed_set, flat_index, spglib_exact_operations, spglib_operations

KINDS = ("polar", "axial")
K_SWEEP = 2  # the fast sweep over all 530 settings

# Invariant uniform vectors (k = 0) per crystallographic point group, written by hand from the
# International Tables: polar = the 10 pyroelectric classes (3 for 1, 2 for m, 1 for the polar
# axis of the other 8); axial = the classes that allow a uniform magnetisation without time
# reversal (3 for 1 and -1, 1 for the 11 groups with a single principal axis and no
# perpendicular 2-fold axis or parallel mirror).
POLAR_K0 = {"1": 3, "m": 2, "2": 1, "mm2": 1, "4": 1, "4mm": 1, "3": 1, "3m": 1, "6": 1, "6mm": 1}
AXIAL_K0 = {
    "1": 3,
    "-1": 3,
    "2": 1,
    "m": 1,
    "2/m": 1,
    "4": 1,
    "-4": 1,
    "4/m": 1,
    "3": 1,
    "-3": 1,
    "6": 1,
    "-6": 1,
    "6/m": 1,
}
ALL_POINT_GROUPS = {
    "1",
    "-1",
    "2",
    "m",
    "2/m",
    "222",
    "mm2",
    "mmm",
    "4",
    "-4",
    "4/m",
    "422",
    "4mm",
    "-42m",
    "4/mmm",
    "3",
    "-3",
    "32",
    "3m",
    "-3m",
    "6",
    "-6",
    "6/m",
    "622",
    "6mm",
    "-6m2",
    "6/mmm",
    "23",
    "m-3",
    "432",
    "-43m",
    "m-3m",
}


def _m(rot: np.ndarray, kind: str) -> np.ndarray:
    """M_g = R (polar) or det(R) R (axial), float."""
    r = np.asarray(rot, dtype=np.float64)
    return r if kind == "polar" else r * np.linalg.det(r)[:, None, None]


@pytest.fixture(scope="module")
def sweep(db):
    """(hall, basis at K_SWEEP) for all 530 settings."""
    return [(h, db.get(hall=h, kmax=K_SWEEP)) for h in range(1, 531)]


# ---------------------------------------------------------------- equivariance
@pytest.mark.parametrize("kind", KINDS)
def test_equivariance_every_operation_of_every_setting(sweep, kind):
    rng = np.random.default_rng(13)
    worst = 0.0
    for hall, b in sweep:
        rot, tra = spglib_operations(hall)  # spglib's list, not the artifact's
        v = b.vector(kind)
        x = rng.random((3, 3))
        images = (np.einsum("gij,nj->gni", rot, x) + tra[:, None, :]).reshape(-1, 3)
        m = _m(rot, kind)
        for real in (True, False):
            f = v.evaluate(x, real=real)  # (3, nb, 3)
            fg = v.evaluate(images, real=real).reshape(len(rot), 3, v.n_basis, 3)
            err = np.abs(fg - np.einsum("gij,nbj->gnbi", m, f)).max(initial=0.0)
            worst = max(worst, err)
            assert err <= 1e-12, f"hall {hall} {kind} real={real}: equivariance error {err:.2e}"
    assert worst > 0  # the check is not vacuous


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_equivariance_full_cutoff_sample(db, kind):
    rng = np.random.default_rng(5)
    for hall in (1, 2, 81, 115, 350, 460, 488, 523, 525, 526, 530):
        b = db.get(hall=hall)
        rot, tra = spglib_operations(hall)
        v = b.vector(kind)
        x = rng.random((2, 3))
        images = (np.einsum("gij,nj->gni", rot, x) + tra[:, None, :]).reshape(-1, 3)
        f = v.evaluate(x)
        fg = v.evaluate(images).reshape(len(rot), 2, v.n_basis, 3)
        assert np.abs(fg - np.einsum("gij,nbj->gnbi", _m(rot, kind), f)).max() <= 1e-11


@pytest.mark.slow
def test_all_settings_at_the_shipped_cutoff(db):
    """All 530 settings at the artifact's K, polar and axial: equivariance under every spglib
    operation (1e-12) and the dimension against the character formula."""
    rng = np.random.default_rng(8)
    for hall in range(1, 531):
        b = db.get(hall=hall)
        rot, tra = spglib_operations(hall)
        x = rng.random((1, 3))
        images = np.einsum("gij,nj->gni", rot, x).reshape(-1, 3) + tra
        for kind in KINDS:
            v = b.vector(kind)
            expected = _character_dimension(hall, b.kmax, kind)
            assert v.n_basis == round(expected.real), (hall, kind)
            f = v.evaluate(x)
            fg = v.evaluate(images).reshape(len(rot), 1, v.n_basis, 3)
            err = np.abs(fg - np.einsum("gij,nbj->gnbi", _m(rot, kind), f)).max(initial=0.0)
            assert err <= 1e-12, (hall, kind, err)


# ---------------------------------------------------------------- orthonormality
@pytest.mark.parametrize("kind", KINDS)
def test_orthonormal_in_the_invariant_metric(sweep, kind):
    for hall, b in sweep[::7] + [s for s in sweep if s[0] in (460, 461, 488, 526)]:
        v = b.vector(kind)
        rot, _ = spglib_operations(hall)
        pts = np.unique(rot.reshape(-1, 9), axis=0).reshape(-1, 3, 3).astype(float)
        w = np.einsum("gji,gjk->ik", pts, pts) / len(pts)
        assert np.allclose(np.einsum("gji,jk,gkl->gil", pts, w, pts), w[None])  # W is invariant
        big = sp.kron(sp.eye_array(len(v.frequencies)), w, format="csr")
        for real in (False, True):
            c = v.coefficients(real)
            gram = (c.conj().T @ (big @ c)).toarray()
            assert np.abs(gram - np.eye(v.n_basis)).max(initial=0.0) < 1e-12, (hall, kind, real)
            if real and v.n_basis:  # conjugate-symmetric coefficients: real fields
                neg = {tuple(k): i for i, k in enumerate(v.frequencies.tolist())}
                perm = np.array([neg[tuple((-k).tolist())] for k in v.frequencies])
                c3 = c.toarray().reshape(len(v.frequencies), 3, -1)
                assert np.allclose(c3[perm], c3.conj(), atol=1e-14)


# ---------------------------------------------------------------- completeness
def _character_dimension(hall: int, kmax: int, kind: str) -> float:
    """(1/|G|) sum_g sum_{k in F_G : R^T k = k} e(k.t_g) tr(M_g^-1): the trace of the Reynolds
    operator on vector fields over the closed frequency set, from spglib's operations only."""
    rot, num = spglib_exact_operations(hall)
    freqs = closed_set(rot, kmax)
    minv = np.linalg.inv(_m(rot, kind))
    total = 0.0 + 0.0j
    for r, t, mi in zip(rot, num, minv):
        fixed = np.all(freqs @ r == freqs, axis=1)
        total += np.exp(2j * np.pi * (freqs[fixed] @ t) / 24.0).sum() * np.trace(mi)
    return total / len(rot)


@pytest.mark.parametrize("kind", KINDS)
def test_completeness_against_the_character_formula(sweep, kind):
    for hall, b in sweep:
        expected = _character_dimension(hall, K_SWEEP, kind)
        assert abs(expected.imag) < 1e-9 and abs(expected.real - round(expected.real)) < 1e-9
        assert b.vector(kind).n_basis == round(expected.real), (hall, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_orbit_dimensions_against_the_stabiliser_character(sweep, kind):
    """Per orbit: dim = (1/|S|) sum_{g in S} e(k0.t_g) tr(M_g), at every representative."""
    for hall, b in sweep[::5]:
        rot, num = spglib_exact_operations(hall)
        v = b.vector(kind)
        m = _m(rot, kind)
        for j in range(v.n_orbits):
            k0 = v.frequencies[v.orbit_ptr[j]]
            s = np.all(k0 @ rot == k0, axis=1)
            d = (np.exp(2j * np.pi * (num[s] @ k0) / 24.0) * np.trace(m[s], axis1=1, axis2=2)).sum() / s.sum()
            assert abs(d - v.orbit_dim[j]) < 1e-9, (hall, kind, j)
            assert len(set(map(tuple, (k0 @ rot).tolist()))) == v.orbit_sizes[j]


# ---------------------------------------------------------------- uniform fields
@pytest.mark.parametrize("kind, table", [("polar", POLAR_K0), ("axial", AXIAL_K0)])
def test_uniform_fields_match_the_point_group_tables(sweep, kind, table):
    seen = set()
    for hall, b in sweep:
        pg = b.setting.point_group
        assert pg in ALL_POINT_GROUPS, pg
        seen.add(pg)
        v = b.vector(kind)
        at0 = int(v.orbit_dim[0]) if v.n_orbits and not np.any(v.frequencies[0]) else 0
        assert at0 == table.get(pg, 0), (hall, pg, kind, at0)
    assert seen == ALL_POINT_GROUPS
    assert len(POLAR_K0) == 10 and len(AXIAL_K0) == 13


def test_uniform_polar_field_lies_along_the_polar_axis(db):
    v = db.get("P6_3mc").vector("polar")  # 6mm: the polar axis is c
    freqs, coef = v.orbit(0)
    assert freqs.tolist() == [[0, 0, 0]] and coef.shape == (1, 3, 1)
    assert np.allclose(np.abs(coef[0, :, 0]), [0, 0, 1])


# ---------------------------------------------------------------- screw and glide, by hand
def test_2_1_screw_scalar_extinct_00l_carries_in_plane_fields(db):
    b = db.get("P 1 2_1 1")  # -x, y+1/2, -z: scalar 0k0 with k odd is extinct
    assert any((f == [0, 1, 0]).all() for f in b.extinct)
    for kind, expect_odd, expect_even in (("polar", (0, 2), (1,)), ("axial", (0, 2), (1,))):
        v = b.vector(kind)
        for kk in range(-3, 4):
            if kk == 0:
                continue
            rows = np.nonzero((v.frequencies == [0, kk, 0]).all(axis=1))[0]
            assert len(rows) == 1, (kind, kk)
            j = v.orbit_of[rows[0]]
            _, coef = v.orbit(j)
            span = np.abs(coef[0]).sum(axis=1) > 1e-12  # which components are used
            assert v.scalar_extinct[j] == (kk % 2 == 1)
            # the screw multiplies c_k by e(k/2) = -1 for odd k: M v = -v, i.e. v in the a-c plane;
            # for even k, M v = v: v along b (the 2-fold axis); polar and axial agree (det R = 1)
            assert tuple(np.nonzero(span)[0]) == (expect_odd if kk % 2 else expect_even), (kind, kk)
    # and the evaluated fields at l odd really are in-plane travelling waves along b
    v = b.vector("polar")
    x = np.random.default_rng(0).random((4, 3))
    j = v.orbit_of[np.nonzero((v.frequencies == [0, 1, 0]).all(axis=1))[0][0]]
    cols = np.nonzero(v.complex_layout[0] == j)[0]
    f = v.evaluate(x, real=False)[:, cols]
    assert np.abs(f[:, :, 1]).max() < 1e-14 and np.abs(f[:, :, [0, 2]]).max() > 0.1


def test_c_glide_scalar_extinct_h0l_odd(db):
    b = db.get("P 1 c 1")  # x, -y, z+1/2: scalar h0l with l odd is extinct
    assert any((f == [1, 0, 1]).all() for f in b.extinct)
    for kind, comps in (("polar", (1,)), ("axial", (0, 2))):
        v = b.vector(kind)
        row = np.nonzero((v.frequencies == [1, 0, 1]).all(axis=1))[0][0]
        j = v.orbit_of[row]
        assert v.scalar_extinct[j] and v.orbit_dim[j] == len(comps)
        coef = v.orbit(j)[1]
        # e(l/2) = -1: polar M = R = diag(1,-1,1) needs R v = -v (v along b);
        # axial M = -R = diag(-1,1,-1) needs M v = -v (v in the a-c plane)
        assert tuple(np.nonzero(np.abs(coef).sum(axis=(0, 2)) > 1e-12)[0]) == comps


# ---------------------------------------------------------------- physical oracle
def test_force_of_a_symmetric_gaussian_crystal_lies_in_the_polar_span(sweep):
    """V(x) = sum_g sum_n exp(-|x - g x_a - n|_W^2 / 2 s^2) on the invariant metric W: its
    Fourier coefficients c_k ~ exp(-2 pi^2 s^2 k.W^-1 k) sum_g e(-k.(g x_a)) on the closed set;
    the force -grad V in contravariant components, -W^-1 2 pi i k c_k, must lie in the span."""
    rng = np.random.default_rng(7)
    for hall, b in sweep[::3]:
        rot, tra = spglib_operations(hall)
        v = b.vector("polar")
        pts = np.unique(rot.reshape(-1, 9), axis=0).reshape(-1, 3, 3).astype(float)
        w = np.einsum("gji,gjk->ik", pts, pts) / len(pts)
        winv = np.linalg.inv(w)
        freqs = closed_set(rot, K_SWEEP)
        xa = rng.random(3)
        orbit_x = np.einsum("gij,j->gi", rot, xa) + tra
        dens = np.exp(-2j * np.pi * freqs @ orbit_x.T).sum(axis=1)
        c = np.exp(-2 * np.pi**2 * 0.04 * np.einsum("ki,ij,kj->k", freqs, winv, freqs)) * dens
        force = -(2j * np.pi) * (freqs @ winv.T) * c[:, None]  # (n, 3) contravariant
        row = {tuple(k): i for i, k in enumerate(v.frequencies.tolist())}
        g = np.zeros((len(v.frequencies), 3), complex)
        for k, fk in zip(freqs.tolist(), force):
            if tuple(k) in row:
                g[row[tuple(k)]] = fk
            else:  # a frequency that carries no vector function must have zero force
                assert np.abs(fk).max() < 1e-9 * max(1.0, np.abs(force).max()), (hall, k)
        g = g.ravel()
        cm = v.coefficients(False)
        big = sp.kron(sp.eye_array(len(v.frequencies)), w, format="csr")
        resid = g - cm @ (cm.conj().T @ (big @ g))
        assert np.abs(resid).max() <= 1e-12 * max(1.0, np.abs(g).max()), hall


def test_gradients_of_scalar_basis_functions_lie_in_the_polar_span(sweep):
    """grad phi_j of every scalar basis function, made contravariant with W^-1, is in the span."""
    for hall, b in sweep[::2]:
        v = b.vector("polar")
        winv = np.linalg.inv(v.metric)
        row = np.full((2 * K_SWEEP + 1) ** 3, -1)
        row[flat_index(v.frequencies, K_SWEEP)] = np.arange(len(v.frequencies))
        r = row[flat_index(b.frequencies, K_SWEEP)]
        assert np.all((r >= 0) | ~b.frequencies.any(axis=1)), hall  # only k = 0 may be missing
        ok = r >= 0
        grad = 2j * np.pi * (b.frequencies @ winv.T) * np.exp(2j * np.pi * b.phases / 24)[:, None]
        orbit = np.repeat(np.arange(b.n_orbits), np.diff(b.orbit_ptr))
        g = sp.csc_array(
            (grad[ok].ravel(), ((3 * r[ok, None] + np.arange(3)).ravel(), np.repeat(orbit[ok], 3))),
            shape=(3 * len(v.frequencies), b.n_orbits),
        ).toarray()
        cm = v.coefficients(False)
        big = sp.kron(sp.eye_array(len(v.frequencies)), v.metric, format="csr")
        resid = g - cm @ (cm.conj().T @ (big @ g))
        assert np.abs(resid).max(initial=0.0) < 1e-11, hall


# ---------------------------------------------------------------- API
def test_api_shapes_cartesian_cache_and_errors(db):
    b = db.get(227, kmax=4)
    v = b.vector()
    assert v is b.vector("polar") and v.kind == "polar" and b.vector("axial").kind == "axial"
    x = np.random.default_rng(1).random((5, 3))
    f = v.evaluate(x)
    assert f.shape == (5, v.n_basis, 3) and f.dtype == np.float64
    assert v.evaluate(x, real=False).dtype == np.complex128
    assert v.evaluate(x[0]).shape == (v.n_basis, 3)
    lat = np.diag([5.0, 5.0, 5.0]) + 0.1 * np.eye(3)[::-1]
    assert np.allclose(v.evaluate(x, lattice=lat), f @ lat)
    assert not v.frequencies.flags.writeable
    with pytest.raises(ValueError, match="kind must be one of"):
        b.vector("tensor")
    with pytest.raises(ValueError, match="shape"):
        v.evaluate(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="plane groups"):
        db.get(plane=1).vector()
    assert "VectorBasis(kind='polar'" in repr(v)


def test_cli_show_vector():
    from click.testing import CliRunner

    from basisdb.cli import cli

    r = CliRunner().invoke(cli, ["show", "P2_1", "--vector", "--kmax", "2", "--limit", "4"])
    assert r.exit_code == 0, r.output
    assert "polar vector fields" in r.output and "scalar-extinct" in r.output
    r = CliRunner().invoke(cli, ["show", "227", "--vector", "axial", "--kmax", "3"])
    assert r.exit_code == 0 and "axial vector fields" in r.output


def test_fixed_space_is_decided_exactly_in_the_cyclotomic_ring():
    from basisdb._vector import fixed_space

    e = np.eye(3, dtype=int)
    four = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 4-fold about c
    s4 = np.array([np.linalg.matrix_power(four, n) for n in range(4)])
    # 4_1 screw at (0,0,1): character e(n/4) = i^n; polar fixed space: the eigenvalue-i line in the a-b plane
    assert fixed_space(s4, 6 * np.arange(4)) == (1, (0,))
    assert fixed_space(s4, np.zeros(4, int)) == (1, (2,))  # no screw phase: along c
    # 4_2 at l odd: character (-1)^n, but a 4-fold has eigenvalues 1, i, -i only on C^3
    assert fixed_space(s4, 12 * np.arange(4)) == (0, ())
    d = sum(np.exp(-2j * np.pi * 12 * n / 24) * np.trace(m) for n, m in enumerate(s4)) / 4
    assert abs(d) < 1e-12
    # a mirror x <-> y (hexagonal axes): the first two columns of Pi are equal, the pivots skip column 1
    swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    assert fixed_space(np.array([e, swap]), np.array([0, 0])) == (2, (0, 2))
    assert fixed_space(np.array([e, swap]), np.array([0, 12])) == (1, (0,))
    assert fixed_space(np.array([e]), np.array([0])) == (3, (0, 1, 2))


def test_real_layout(db):
    v = db.get("P 1 2_1 1", kmax=2).vector()
    j, _a, part = v.real_layout
    assert len(j) == v.n_basis and set(part.tolist()) <= {0, 1, 2}
    assert (j[0], part[0]) == (0, 0)  # k = 0 is self-conjugate
    # the scalar-extinct (0,1,0) and (0,-1,0) are a pair O != -O: sqrt2 Re, sqrt2 Im of 2 functions
    jj = v.orbit_of[np.nonzero((v.frequencies == [0, 1, 0]).all(axis=1))[0][0]]
    assert sorted(part[j == jj].tolist()) == [1, 1, 2, 2]


def test_readme_vector_example():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("## Equivariant vector fields")[1].split("```python")[1].split("```")[0]
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert ns["f"].shape == (100, ns["v"].n_basis, 3) and np.allclose(ns["f_cart"], ns["f"] @ ns["L"])


# ---------------------------------------------------------------- torch and JAX
def test_torch_agrees_with_numpy_and_is_equivariant_and_differentiable(db):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    lat = np.array([[4.0, 0, 0], [-2.0, 3.4, 0], [0, 0, 5.0]])
    for hall, kind in ((6, "polar"), (488, "axial"), (526, "polar")):
        v = db.get(hall=hall, kmax=4).vector(kind)
        tv = v.to_torch(dtype=torch.float64)
        x = rng.random((6, 3))
        for real in (True, False):
            got = tv.evaluate(torch.tensor(x), real=real, lattice=lat).numpy()
            assert np.abs(got - v.evaluate(x, real=real, lattice=lat)).max() < 1e-12, (hall, kind, real)
        # float32: equivariance to float32 round-off under the setting's own operations
        t32 = v.to_torch(dtype=torch.float32)
        rot, tra = spglib_operations(hall)
        f = t32.evaluate(torch.tensor(x, dtype=torch.float32)).double().numpy()
        g = len(rot) - 1
        fg = t32.evaluate(torch.tensor(x @ rot[g].T + tra[g], dtype=torch.float32)).double().numpy()
        assert np.abs(fg - np.einsum("ij,nbj->nbi", _m(rot, kind)[g], f)).max() < 1e-4
        xt = torch.tensor(x, requires_grad=True)
        tv.evaluate(xt).sum().backward()
        assert xt.grad is not None and torch.isfinite(xt.grad).all()


def test_jax_agrees_with_numpy():
    jax = pytest.importorskip("jax")
    import basisdb

    db = basisdb.open()
    rng = np.random.default_rng(4)
    x = rng.random((5, 3))
    x64 = bool(jax.config.read("jax_enable_x64"))
    for hall, kind in ((6, "polar"), (488, "axial")):
        v = db.get(hall=hall, kmax=3).vector(kind)
        jv = v.to_jax()
        for real in (True, False):
            got = np.asarray(jv.evaluate(x, real=real))
            assert np.abs(got - v.evaluate(x, real=real)).max() < (1e-12 if x64 else 1e-5), (hall, kind, real)


# ---------------------------------------------------------------- pictures
def test_plot_vector(db, tmp_path):
    pytest.importorskip("matplotlib")
    from basisdb._plot_vector import plot_vector, vector_panels

    b = db.get(hall=488, kmax=3)
    # z = 1/4 is a mirror plane of P 6_3/m m c: axial fields are perpendicular to it, polar ones lie in it
    x = np.column_stack([np.random.default_rng(2).random((20, 2)), np.full(20, 0.25)])
    assert np.abs(b.vector("axial").evaluate(x)[:, :, :2]).max() < 1e-12
    assert np.abs(b.vector("polar").evaluate(x)[:, :, 2]).max() < 1e-12
    panels = vector_panels(b, "axial", n=3)
    assert [p["zero"] for p in panels if p["z"] == 0.25] == [True, True, False]
    out = plot_vector(b, tmp_path / "v.png", kind="axial", n=3, dpi=40)
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="out of range"):
        vector_panels(b, "axial", functions=[10**6])


def test_cli_plot_vector(tmp_path):
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from basisdb.cli import cli

    r = CliRunner().invoke(
        cli,
        ["plot", "P2_1", "--vector", "--kmax", "2", "--n", "2", "--dpi", "40", "-o", str(tmp_path / "p.svg")],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "p.svg").exists()
