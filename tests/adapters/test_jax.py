"""basisdb.jax: agreement with numpy (float32 and, with x64, float64), gradients, mixed batches."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # float64 checks; float32 is requested explicitly below
import jax.numpy as jnp  # noqa: E402

import basisdb  # noqa: E402
import basisdb.jax as bj  # noqa: E402
from basisdb._routing import shared_encoding  # noqa: E402

HALLS = (1, 443, 523)  # each setting and shape compiles a kernel (~0.3 s)
TOL = {"float32": 1e-6, "float64": 1e-12}


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


@pytest.mark.parametrize("hall", HALLS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_agrees_with_numpy(db, hall, dtype):
    b = db.get(hall=hall)
    x = np.random.default_rng(hall).random((40, 3))
    jb = bj.to_jax(b, dtype=dtype)
    f = jb.evaluate(x)
    assert f.dtype == jnp.dtype(dtype) and f.shape == (40, b.n_basis)
    assert np.abs(np.asarray(f) - b.evaluate(x)).max() <= TOL[dtype]
    assert np.abs(np.asarray(jb.evaluate(x, real=False)) - b.evaluate(x, real=False)).max() <= TOL[dtype]
    assert np.abs(np.asarray(jb.encode(x)) - shared_encoding(b, x)).max() <= TOL[dtype]


def test_gradients(db):
    from jax.test_util import check_grads

    jb = bj.to_jax(db.get(hall=480, kmax=2), dtype="float64")
    x = jnp.asarray(np.random.default_rng(0).random((2, 3)))
    check_grads(jb.evaluate, (x,), order=1, modes=["rev"])
    for f in (jb.evaluate, jb.encode):
        g = jax.grad(lambda p, f=f: jnp.sum(f(p) ** 2))(x)
        assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0


def test_sparse_and_batched(db):
    b = db.get(hall=488, kmax=3)
    jb = b.to_jax(dtype="float64")
    assert np.allclose(np.asarray(jb.complex_basis().todense()), b.complex_basis().toarray())
    assert np.allclose(np.asarray(jb.projector().todense()), b.projector().toarray())
    batched = bj.BatchedBasis(db, kmax=3, dtype="float64")
    rng = np.random.default_rng(1)
    halls = rng.choice((1, 523), size=16)
    x = rng.random((16, 3))
    feats, mask = batched.features(x, halls)
    enc = batched.encode(x, halls)
    for h in np.unique(halls):
        bb = db.get(hall=int(h), kmax=3)
        sel = np.flatnonzero(halls == h)
        assert np.abs(np.asarray(feats)[sel, : bb.n_basis] - bb.evaluate(x[sel])).max() < 1e-12
        assert np.asarray(mask)[sel].sum(1).tolist() == [bb.n_basis] * len(sel)
        assert np.abs(np.asarray(enc)[sel] - shared_encoding(bb, x[sel])).max() < 1e-12
    g = jax.grad(lambda p: jnp.sum(batched.features(p, halls)[0] ** 2))(jnp.asarray(x))
    assert np.abs(np.asarray(g)).sum() > 0


def test_float64_needs_x64(db):
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="jax_enable_x64"):
            bj.to_jax(db.get(hall=2), dtype="float64")
        assert bj.to_jax(db.get(hall=2, kmax=2)).dtype == jnp.dtype("float32")
    finally:
        jax.config.update("jax_enable_x64", True)
