"""The encoder as a library layer: basisdb.torch.InvariantEncoder, basisdb.jax.invariant_encoder_*,
the stacked plan they share (basisdb._routing.batch_plan) and basisdb.subgroup_settings.

References are independent where it matters: numpy's ``shared_encoding`` (through
``Basis.evaluate``), spglib's and gemmi's operation tables (not the artifact's).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import spglib_operations  # noqa: E402

import basisdb  # noqa: E402
import basisdb.torch as bt  # noqa: E402
from basisdb._routing import (  # noqa: E402
    batch_plan,
    encoding_table,
    evaluate_batch_plan,
    frequency_lengths,
    shared_encoding,
)

#: a mixed bag: triclinic, monoclinic, tetragonal, trigonal (H and R axes), hexagonal, cubic, both Fd-3m origins
HALLS = (1, 2, 81, 443, 460, 461, 480, 488, 523, 525, 526, 530)
KMAX = 3
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


@pytest.fixture(scope="module")
def encoder(db):
    torch.manual_seed(0)
    return bt.InvariantEncoder(16, kmax=KMAX, db=db, hall_numbers=HALLS, dtype=torch.float32)


def reference(db, x, hall, kmax=KMAX, packing="complex"):
    """numpy: [Re v, Im v] (or the real packing) of each crystal, v = P_G^T e(x) = shared_encoding(real=False)."""
    out = []
    for xi, h in zip(x, hall):
        b = db.get(hall=int(h), kmax=kmax)
        if packing == "real":
            out.append(shared_encoding(b, xi))
        else:
            v = shared_encoding(b, xi, real=False)
            out.append(np.concatenate([v.real, v.imag], axis=1))
    return np.stack(out)


def mixed_batch(seed=0, B: int | None = None, N=7, dtype=np.float32):
    B = len(HALLS) if B is None else B
    rng = np.random.default_rng(seed)
    x = (rng.random((B, N, 3)) * 3 - 1).astype(dtype)  # outside [0, 1) too
    hall = np.array(HALLS[:B]) if len(HALLS) >= B else rng.choice(HALLS, B)
    n_atoms = rng.integers(1, N + 1, B)
    n_atoms[0] = N
    mask = np.arange(N)[None, :] < n_atoms[:, None]
    lattice = np.stack(
        [np.diag(rng.uniform(3, 8, 3)) + rng.normal(size=(3, 3)) * 0.3 for _ in range(B)]
    ).astype(dtype)
    return x, hall, mask, lattice


# ---------------------------------------------------------------- agreement with numpy
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padded_batch_agrees_with_shared_encoding(db, dtype):
    x, hall, mask, _ = mixed_batch(dtype=np.float64)
    enc = bt.InvariantEncoder(4, kmax=KMAX, db=db, hall_numbers=HALLS, dtype=dtype)
    # padding rows hold garbage (NaN): they must come back as exact zeros, without NaN leaking
    xp = np.where(mask[..., None], x, np.nan)
    got = enc.encode(torch.tensor(xp, dtype=dtype), torch.tensor(hall), mask=torch.tensor(mask))
    assert got.dtype == dtype and got.shape == (len(HALLS), x.shape[1], 2 * (2 * KMAX + 1) ** 3)
    # float32 positions are rounded before they reach the layer; compare at the rounded points
    xr = torch.tensor(x, dtype=dtype).double().numpy()
    ref = reference(db, xr, hall) * mask[..., None]
    assert np.abs(got.numpy() - ref).max() <= TOL[dtype]
    assert torch.all(got[~torch.tensor(mask)] == 0)
    out = enc(torch.tensor(xp, dtype=dtype), torch.tensor(hall), mask=torch.tensor(mask))
    assert out.shape == (len(HALLS), x.shape[1], 4) and torch.all(out[~torch.tensor(mask)] == 0)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ragged_batch_agrees_with_padded(db, encoder, dtype):
    enc = (
        encoder
        if dtype == torch.float32
        else bt.InvariantEncoder(16, kmax=KMAX, db=db, hall_numbers=HALLS, dtype=dtype)
    )
    x, hall, mask, _ = mixed_batch(seed=1, dtype=np.float64)
    xt = torch.tensor(x, dtype=dtype)
    padded = enc(xt, torch.tensor(hall), mask=torch.tensor(mask))
    crystal = np.nonzero(mask)[0]
    flat = xt[torch.tensor(mask)]
    by_batch = enc(flat, torch.tensor(hall), batch=torch.tensor(crystal))
    per_atom = enc(flat, torch.tensor(hall[crystal]))
    assert by_batch.shape == (mask.sum(), 16)
    assert (by_batch - padded[torch.tensor(mask)]).abs().max() <= TOL[
        dtype
    ]  # the matmul may block differently
    assert (by_batch - per_atom).abs().max() <= TOL[dtype]
    e = enc.encode(flat, torch.tensor(hall[crystal]))
    want = np.concatenate(
        [reference(db, [flat.double().numpy()[crystal == i]], [hall[i]])[0] for i in range(len(hall))]
    )
    assert np.abs(e.numpy() - want).max() <= TOL[dtype]


def test_real_packing_and_numpy_backend_of_the_plan(db):
    x, hall, mask, _ = mixed_batch(seed=2, dtype=np.float64)
    enc = bt.InvariantEncoding(KMAX, db=db, hall_numbers=HALLS, packing="real", dtype=torch.float64)
    got = enc(torch.tensor(x), torch.tensor(hall), mask=torch.tensor(mask)).numpy()
    assert got.shape[-1] == (2 * KMAX + 1) ** 3
    assert np.abs(got - reference(db, x, hall, packing="real") * mask[..., None]).max() <= 1e-12
    # the numpy back-end of the same stacked plan, atom by atom
    plan = batch_plan([db.get(hall=h, kmax=KMAX) for h in HALLS], "complex")
    flat, per_atom = x.reshape(-1, 3), np.repeat(hall, x.shape[1])
    assert (
        np.abs(
            evaluate_batch_plan(plan, flat, per_atom) - reference(db, x, hall).reshape(len(flat), -1)
        ).max()
        <= 1e-12
    )
    with pytest.raises(ValueError, match="not in this plan"):
        evaluate_batch_plan(plan, flat[:1], [3])


def test_complex_packing_table_is_p_transpose_e(db):
    """encoding_table(packing="complex") is conj(B) phi = P_G^T e(x), checked with the dense projector."""
    rng = np.random.default_rng(3)
    for h in (81, 460, 526):
        b = db.get(hall=h, kmax=2)
        x = rng.random((5, 3))
        e = np.exp(2j * np.pi * x @ basisdb.box_frequencies(2).T)
        want = e @ b.projector().toarray()  # rows: (P^T e)^T = e^T P
        assert np.abs(shared_encoding(b, x, real=False) - want).max() < 1e-12
        t = encoding_table(b, "complex")
        assert t.n_out == 2 * b.n_box and len(np.unique(t.slot)) == len(t.slot)


def test_functional_form_matches_module(db, encoder):
    x, hall, mask, _ = mixed_batch(seed=4)
    a = bt.invariant_encoding(torch.tensor(x), torch.tensor(hall), kmax=KMAX, db=db, mask=torch.tensor(mask))
    b = encoder.encode(torch.tensor(x), torch.tensor(hall), mask=torch.tensor(mask))
    assert torch.equal(a, b)


# ---------------------------------------------------------------- invariance
@pytest.mark.parametrize("weighting", [None, "metric"])
def test_invariant_under_each_groups_operations(db, weighting):
    """Each crystal of a mixed batch moved by an operation of its own group (spglib's table) gives the same output."""
    torch.manual_seed(1)
    enc = bt.InvariantEncoder(
        8, kmax=KMAX, db=db, hall_numbers=HALLS, frequency_weighting=weighting, dtype=torch.float64
    )
    if weighting:
        with torch.no_grad():
            enc.radial.normal_()
    x, hall, mask, lattice = mixed_batch(seed=5, dtype=np.float64)
    rng = np.random.default_rng(5)
    args = dict(mask=torch.tensor(mask), lattice=torch.tensor(lattice) if weighting else None)
    base = enc(torch.tensor(x), torch.tensor(hall), **args)
    for _ in range(3):
        moved = np.empty_like(x)
        for i, h in enumerate(hall):
            rot, tra = spglib_operations(int(h))
            g = rng.integers(len(rot))
            moved[i] = x[i] @ rot[g].T + tra[g] + rng.integers(-2, 3, 3)  # plus a lattice translation
        out = enc(torch.tensor(moved), torch.tensor(hall), **args)
        assert (out - base).abs().max() < 1e-10
    # and it is not trivially constant: a generic move changes it
    assert (enc(torch.tensor(x + 0.1), torch.tensor(hall), **args) - base).abs().max() > 1e-3


def test_metric_weights(db):
    enc = bt.InvariantEncoder(
        3, kmax=2, db=db, hall_numbers=(1, 523), frequency_weighting="metric", n_radial=5, dtype=torch.float64
    )
    _, _, _, lattice = mixed_batch(seed=6, B=3, dtype=np.float64)
    q = enc.encoding.frequency_lengths(torch.tensor(lattice)).detach().numpy()
    k = basisdb.box_frequencies(2)
    for L, qi in zip(lattice, q):
        gstar = np.linalg.inv(L @ L.T)  # reciprocal metric
        assert np.allclose(qi, np.sqrt(np.einsum("ni,ij,nj->n", k, gstar, k)), atol=1e-12)
    assert np.allclose(q, frequency_lengths(lattice, 2), atol=1e-12)
    # starts at w = 1: the encoding equals the unweighted one
    x = torch.rand(3, 4, 3, dtype=torch.float64)
    hall = torch.tensor([1, 523, 523])
    plain = bt.InvariantEncoding(2, db=db, hall_numbers=(1, 523), dtype=torch.float64)(x, hall)
    assert torch.equal(enc.encode(x, hall, lattice=torch.tensor(lattice)), plain)
    with torch.no_grad():
        enc.radial.copy_(torch.tensor([0.5, -0.2, 0.1, 0.3, -0.4]))
    w = enc.radial_weights(torch.tensor(lattice), hall)
    assert w.shape == (3, 2 * 125) and torch.equal(w[:, :125], w[:, 125:])
    got = enc.encode(x, hall, lattice=torch.tensor(lattice))
    assert torch.allclose(got, plain * w[:, None, :], atol=1e-14)
    # with the settings, the metric is first averaged over each one's point group (spglib's operations)
    qs = enc.encoding.frequency_lengths(torch.tensor(lattice), hall).detach().numpy()
    for L, h, qi in zip(lattice, hall.tolist(), qs):
        rots = np.unique(spglib_operations(h)[0].reshape(-1, 9), axis=0).reshape(-1, 3, 3)
        gsym = sum(R.T @ (L @ L.T) @ R for R in rots) / len(rots)
        assert np.allclose(qi, np.sqrt(np.einsum("ni,ij,nj->n", k, np.linalg.inv(gsym), k)), atol=1e-12)
    assert np.allclose(qs[0], q[0], atol=1e-12)  # P 1: nothing to average
    # cubic lattice, cubic group: w depends on |k| only, so it is constant on each orbit of m-3m
    cubic = torch.tensor(np.eye(3) * 4.2)[None]
    wc = enc.radial_weights(cubic)[0, :125].detach().numpy()
    b = db.get(hall=523, kmax=2)
    for j in range(b.n_orbits):
        idx = b.box_indices[b.orbit_ptr[j] : b.orbit_ptr[j + 1]]
        assert np.ptp(wc[idx]) < 1e-12
    with pytest.raises(ValueError, match="needs the lattice"):
        enc(x, hall)


def test_metric_weights_do_not_depend_on_the_cell_choice(db):
    """A cell that is symmetric only within a tolerance (a DFT-relaxed C 2/m cell: small nonzero alpha - 90,
    gamma - 90), presented in two equivalent canonical cells ((a, b, c) and (-a, b, -c), both of which
    featurize may pick): the same metric-weighted output, because the metric is symmetrised over the
    point group first.  With the raw metric the weights differ (what the layer did before)."""
    torch.manual_seed(4)
    hall = 63  # C 1 2/m 1, unique axis b
    enc = bt.InvariantEncoder(
        5, kmax=3, db=db, hall_numbers=(hall,), frequency_weighting="metric", dtype=torch.float64
    )
    with torch.no_grad():
        enc.radial.normal_()
    L = np.array([[8.1, 0.02, 0.0], [0.03, 2.5, 0.01], [-2.9, 0.015, 4.4]])  # approximately monoclinic-b
    rng = np.random.default_rng(1)
    x = rng.random((1, 6, 3))
    flip = np.diag([-1.0, 1.0, -1.0])  # the 2-fold along b: a normaliser element of C 2/m
    h = torch.tensor([hall])
    one = enc(torch.tensor(x), h, lattice=torch.tensor(L[None]))
    other = enc(torch.tensor(x @ flip), h, lattice=torch.tensor((flip @ L)[None]))
    assert (one - other).abs().max() < 1e-12
    raw = enc.radial_weights(torch.tensor(L[None])) - enc.radial_weights(torch.tensor((flip @ L)[None]))
    assert raw.abs().max() > 1e-6  # the raw metric does change with the cell


# ---------------------------------------------------------------- gradients
def test_gradcheck_float64(db):
    enc = bt.InvariantEncoder(
        2,
        kmax=1,
        db=db,
        hall_numbers=(1, 460, 526),
        frequency_weighting="metric",
        n_radial=3,
        dtype=torch.float64,
    )
    with torch.no_grad():
        enc.radial.normal_()
    hall = torch.tensor([460, 526])
    mask = torch.tensor([[True, True], [True, False]])
    x = torch.rand(2, 2, 3, dtype=torch.float64, requires_grad=True)
    lat = (
        torch.eye(3, dtype=torch.float64) * 4 + 0.2 * torch.rand(2, 3, 3, dtype=torch.float64)
    ).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, L: enc(p, hall, lattice=L, mask=mask), (x, lat))
    xr = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda p: enc.encode(p, torch.tensor([1, 460, 526]), lattice=lat.detach()[[0, 1, 1]]), (xr,)
    )
    # every parameter gets a gradient, in float32 too
    enc32 = bt.InvariantEncoder(4, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    x32, h, m, L = mixed_batch(seed=7)
    xt = torch.tensor(x32, requires_grad=True)
    enc32(xt, torch.tensor(h), lattice=torch.tensor(L), mask=torch.tensor(m)).square().sum().backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
        for p in enc32.parameters()
    )
    assert torch.isfinite(xt.grad).all() and torch.all(xt.grad[~torch.tensor(m)] == 0)


# ---------------------------------------------------------------- module mechanics
def test_state_dict_holds_only_trainable_weights(db):
    enc = bt.InvariantEncoder(5, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    sd = enc.state_dict()
    assert set(sd) == {"linear.weight", "linear.bias", "radial"}
    assert set(sd) == {n for n, _ in enc.named_parameters()}
    assert sd["linear.weight"].shape == (5, 2 * 125)
    assert len(list(enc.buffers())) > 0 and all(not b.requires_grad for b in enc.buffers())
    other = bt.InvariantEncoder(5, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    other.load_state_dict(sd)
    x, h, m, L = mixed_batch(seed=8)
    args = (torch.tensor(x), torch.tensor(h))
    kw = dict(lattice=torch.tensor(L), mask=torch.tensor(m))
    assert torch.equal(enc(*args, **kw), other(*args, **kw))
    assert set(bt.InvariantEncoder(5, kmax=2, db=db, hall_numbers=HALLS, bias=False).state_dict()) == {
        "linear.weight"
    }


def test_dtype_and_device_moves(db, encoder):
    x, h, m, _ = mixed_batch(seed=9, dtype=np.float64)
    enc64 = pickle.loads(pickle.dumps(encoder)).to(torch.float64)
    assert enc64.encoding.dtype == torch.float64 and all(p.dtype == torch.float64 for p in enc64.parameters())
    got = enc64.encode(torch.tensor(x), torch.tensor(h), mask=torch.tensor(m)).numpy()
    assert np.abs(got - reference(db, x, h) * m[..., None]).max() <= 1e-12
    meta = pickle.loads(pickle.dumps(encoder)).to(
        "meta"
    )  # every table is a registered tensor: all of them move
    assert all(t.device.type == "meta" for t in list(meta.buffers()) + list(meta.parameters()))
    if torch.cuda.is_available():
        cuda = pickle.loads(pickle.dumps(encoder)).to("cuda")
        xs = torch.tensor(x, dtype=torch.float32)
        a = cuda(xs.cuda(), torch.tensor(h).cuda(), mask=torch.tensor(m).cuda()).cpu()
        assert torch.allclose(a, encoder(xs, torch.tensor(h), mask=torch.tensor(m)), atol=1e-5)


def test_pickle_roundtrip(encoder):
    x, h, m, _ = mixed_batch(seed=10)
    args = (torch.tensor(x), torch.tensor(h))
    copy = pickle.loads(pickle.dumps(encoder))
    assert torch.equal(copy(*args, mask=torch.tensor(m)), encoder(*args, mask=torch.tensor(m)))


def test_bad_input_is_refused(db, encoder):
    x = torch.rand(2, 3, 3)
    with pytest.raises(ValueError, match="not supported"):
        encoder(x, torch.tensor([1, 3]))
    with pytest.raises(ValueError, match="not supported"):
        encoder(x, torch.tensor([1, 999]))
    with pytest.raises(ValueError, match="integer"):
        encoder(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        encoder(torch.rand(2, 3, 2), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="one hall number per atom"):
        encoder(torch.rand(5, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="frequency_weighting"):
        bt.InvariantEncoder(2, kmax=1, db=db, hall_numbers=(1,), frequency_weighting="cosine")


def test_batch_needs_per_crystal_arguments(db):
    """With batch=, hall_number and lattice are per crystal: a per-atom one (what collate's 'hall' is) is
    refused, not read as per crystal (crystal c took atom c's group); the per-crystal call agrees with the
    per-atom call without batch=, and with collate's 'crystal_hall'."""
    torch.manual_seed(3)
    enc = bt.InvariantEncoder(4, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    with torch.no_grad():
        enc.radial.normal_()
    x, h, m, L = (torch.tensor(a) for a in mixed_batch(seed=5, B=5))
    crystal = torch.nonzero(m)[:, 0]
    pos = x[m]
    per_atom = enc(pos, h[crystal], lattice=L[crystal])
    per_crystal = enc(pos, h, lattice=L, batch=crystal)
    assert torch.allclose(per_atom, per_crystal, atol=1e-6)
    with pytest.raises(ValueError, match="one hall_number per atom"):
        enc(pos, h[crystal], lattice=L, batch=crystal)
    with pytest.raises(ValueError, match="one lattice per atom"):
        enc(pos, h, lattice=L[crystal], batch=crystal)
    with pytest.raises(ValueError, match="one entry per crystal"):
        enc(pos, h, lattice=L[:3], batch=crystal)
    with pytest.raises(ValueError, match="negative"):
        enc(pos, h, lattice=L, batch=crystal - 1)
    with pytest.raises(ValueError, match="one entry per crystal"):
        enc.encoding(pos, h[:4], batch=crystal)
    # collate's per-crystal hall numbers
    rs = [basisdb.featurize((np.eye(3) * 4.0, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17]), kmax=2, db=db),
          basisdb.featurize((np.eye(3) * 3.0, [[0, 0, 0]], [26]), kmax=2, db=db)]  # fmt: skip
    b = bt.collate(rs)
    assert b["crystal_hall"].tolist() == [r.hall_number for r in rs]
    assert torch.equal(b["crystal_hall"][b["crystal"]], b["hall"])


DATALOADER_SCRIPT = textwrap.dedent(
    """
    import json, numpy as np, torch, basisdb, basisdb.torch as bt

    HALLS = (1, 2, 81, 460, 488, 523, 526)
    enc = bt.InvariantEncoder(6, kmax=2, hall_numbers=HALLS)

    class Crystals(torch.utils.data.Dataset):
        def __len__(self):
            return 16
        def __getitem__(self, i):
            rng = np.random.default_rng(i)
            n = int(rng.integers(1, 6))
            return rng.random((n, 3)).astype(np.float32), HALLS[i % len(HALLS)]

    def collate(items):
        n = max(len(p) for p, _ in items)
        pos = torch.zeros(len(items), n, 3)
        mask = torch.zeros(len(items), n, dtype=torch.bool)
        for i, (p, _) in enumerate(items):
            pos[i, : len(p)] = torch.from_numpy(p)
            mask[i, : len(p)] = True
        hall = torch.tensor([h for _, h in items])
        with torch.no_grad():
            return enc(pos, hall, mask=mask), mask

    def run(workers):
        loader = torch.utils.data.DataLoader(Crystals(), batch_size=4, num_workers=workers, collate_fn=collate,
                                             multiprocessing_context="fork" if workers else None)
        return [out[mask].tolist() for out, mask in loader]

    print(json.dumps({"same": run(0) == run(2)}))
    """
)


def test_dataloader_workers_call_the_layer():
    """A collate function that calls the layer, in 2 forked DataLoader workers (fresh interpreter: clean fork)."""
    out = subprocess.run(
        [sys.executable, "-c", DATALOADER_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"same": True}


def test_torch_compile_cpu(db):
    """torch.compile (inductor on the CPU): same result, and a second mixed batch of the same shape reuses the graph."""
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile is not available")
    enc = bt.InvariantEncoder(8, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    with torch.no_grad():
        enc.radial.normal_()
    compiled = torch.compile(enc)
    x, h, m, L = mixed_batch(seed=11, B=6)
    args = lambda x, h: (torch.tensor(x), torch.tensor(h))  # noqa: E731
    kw = dict(lattice=torch.tensor(L), mask=torch.tensor(m))
    t0 = time.perf_counter()
    try:
        got = compiled(*args(x, h), **kw)
    except Exception as exc:  # pragma: no cover - no C++ compiler, unsupported platform
        pytest.skip(f"torch.compile does not work here: {type(exc).__name__}: {str(exc)[:200]}")
    first = time.perf_counter() - t0
    assert torch.allclose(got, enc(*args(x, h), **kw), atol=1e-5)
    h2 = np.array(HALLS[6:12])
    assert torch.allclose(compiled(*args(x, h2), **kw), enc(*args(x, h2), **kw), atol=1e-5)
    got.sum().backward()  # compiled backward
    assert enc.linear.weight.grad is not None
    print(f"torch.compile first call: {first:.1f} s")


# ---------------------------------------------------------------- JAX
def test_jax_agrees_with_torch(db):
    jax = pytest.importorskip("jax")
    import basisdb.jax as bj

    torch.manual_seed(2)
    enc = bt.InvariantEncoder(8, kmax=KMAX, db=db, hall_numbers=HALLS, frequency_weighting="metric")
    with torch.no_grad():
        enc.radial.normal_()
    tables = bj.invariant_encoder_tables(KMAX, db=db, hall_numbers=HALLS)
    params = {
        "weight": jax.numpy.asarray(enc.linear.weight.detach().numpy().T),
        "bias": jax.numpy.asarray(enc.linear.bias.detach().numpy()),
        "radial": jax.numpy.asarray(enc.radial.detach().numpy()),
    }
    x, h, m, L = mixed_batch(seed=12)
    want = (
        enc(torch.tensor(x), torch.tensor(h), lattice=torch.tensor(L), mask=torch.tensor(m)).detach().numpy()
    )
    apply = jax.jit(bj.invariant_encoder_apply)
    got = np.asarray(apply(params, tables, x, h, L, m))
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-5
    crystal = np.nonzero(m)[0]
    ragged = np.asarray(apply(params, tables, x[m], h, L, batch=crystal))
    assert np.abs(ragged - want[m]).max() <= 1e-5
    enc_np = np.asarray(jax.jit(bj.invariant_encoding)(tables, x, h, mask=m))
    assert np.abs(enc_np - reference(db, x.astype(np.float64), h) * m[..., None]).max() <= 1e-5
    init = bj.invariant_encoder_init(jax.random.PRNGKey(0), 8, kmax=KMAX, frequency_weighting="metric")
    assert {k: v.shape for k, v in init.items()} == {"weight": (2 * 343, 8), "bias": (8,), "radial": (8,)}
    grad = jax.jit(jax.grad(lambda p: bj.invariant_encoder_apply(p, tables, x, h, L, m).sum()))(init)
    assert all(np.isfinite(np.asarray(g)).all() for g in grad.values())
    with pytest.raises(ValueError, match="not supported"):
        bj.check_halls(tables, [1, 3])


def test_jax_refuses_what_torch_refuses(db):
    """Shapes always (static under jit); hall numbers and per-crystal counts when concrete; under jit a
    hall number outside the tables gives NaN rows, never another setting's encoding."""
    jax = pytest.importorskip("jax")
    import basisdb.jax as bj

    tables = bj.invariant_encoder_tables(2, db=db, hall_numbers=HALLS)
    x, h, m, L = mixed_batch(seed=13, B=5)
    crystal = np.nonzero(m)[0]
    with pytest.raises(ValueError, match=r"hall_number of shape \(5,\)"):
        bj.invariant_encoding(tables, x, h[:2])
    with pytest.raises(ValueError, match="mask must have shape"):
        bj.invariant_encoding(tables, x, h, mask=m[:, :2])
    with pytest.raises(ValueError, match="shape"):
        bj.invariant_encoding(tables, x[..., :2], h)
    with pytest.raises(ValueError, match="not supported"):
        bj.invariant_encoding(tables, x, np.array([1, 2, 81, 460, 999]))
    with pytest.raises(ValueError, match="one hall_number per atom"):
        bj.invariant_encoding(tables, x[m], h[crystal], batch=crystal)
    with pytest.raises(ValueError, match="one hall number per atom"):
        bj.invariant_encoding(tables, x[m], h)
    params = bj.invariant_encoder_init(jax.random.PRNGKey(1), 4, kmax=2, frequency_weighting="metric")
    with pytest.raises(ValueError, match=r"lattice must have shape \(5, 3, 3\)"):
        bj.invariant_encoder_apply(params, tables, x[m], h, L[crystal], batch=crystal)
    good = np.asarray(bj.invariant_encoding(tables, x, h, mask=m))
    traced = np.asarray(jax.jit(bj.invariant_encoding)(tables, x, h, mask=m))
    assert np.abs(good - traced).max() <= 1e-6
    bad_h = h.copy()
    bad_h[1] = 3  # not in the tables
    out = np.asarray(jax.jit(bj.invariant_encoding)(tables, x, bad_h))
    assert np.isnan(out[1]).all() and np.isfinite(np.delete(out, 1, axis=0)).all()


# ---------------------------------------------------------------- subgroups
SUBGROUP_HALLS = (1, 2, 81, 400, 460, 461, 488, 500, 523, 526, 530)


def _exact(rot, tra, den=24):
    return {
        tuple(np.asarray(r).reshape(-1).tolist()) + tuple(int(v) % den for v in np.rint(np.asarray(t) * den))
        for r, t in zip(rot, tra)
    }


@pytest.mark.parametrize("hall", SUBGROUP_HALLS)
def test_subgroup_settings_are_subsets_by_spglib(db, hall):
    subs = basisdb.subgroup_settings(db, hall)
    assert subs == sorted(set(subs)) and 1 in subs and hall in subs
    mine = _exact(*spglib_operations(hall))
    for h in subs:
        assert _exact(*spglib_operations(h)) <= mine, f"hall {h} is listed for {hall} but is not a subset"


def test_subgroup_counts_match_gemmi_brute_force(db):
    gemmi = pytest.importorskip("gemmi")
    table = list(gemmi.spacegroup_table_itb())
    assert len(table) == 530
    den = gemmi.Op.DEN
    ops = [
        {
            tuple(v // den for r in op.rot for v in r) + tuple(t % den for t in op.tran)
            for op in sg.operations()
        }
        for sg in table
    ]
    for hall in SUBGROUP_HALLS:
        brute = sorted(i + 1 for i, o in enumerate(ops) if o <= ops[hall - 1])
        assert basisdb.subgroup_settings(db, hall) == brute
    with pytest.raises(Exception):
        basisdb.subgroup_settings(db, 531)


def test_subgroup_routing_keeps_invariance(db):
    """A crystal of G routed through a listed subgroup H is invariant under H (and H's encoding differs from G's)."""
    hall = 488  # P 6_3/m m c
    subs = [h for h in basisdb.subgroup_settings(db, hall) if h not in (1, hall)]
    enc = bt.InvariantEncoding(2, db=db, hall_numbers=[hall, *subs], dtype=torch.float64)
    x = torch.rand(len(subs), 4, 3, dtype=torch.float64)
    rng = np.random.default_rng(0)
    base = enc(x, torch.tensor(subs))
    moved = x.clone()
    for i, h in enumerate(subs):
        rot, tra = spglib_operations(h)
        g = rng.integers(len(rot))
        moved[i] = x[i] @ torch.tensor(rot[g].T, dtype=torch.float64) + torch.tensor(tra[g])
    assert (enc(moved, torch.tensor(subs)) - base).abs().max() < 1e-10


def test_empty_batches_give_empty_outputs(db):
    """No atoms, no crystals, crystals of no atoms: empty results of the right shape (torch and JAX),
    as BatchedBasis.encode and FeatureDataset.collate([]) give."""
    enc = bt.InvariantEncoder(4, kmax=2, db=db, hall_numbers=HALLS)
    assert enc(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 4)
    assert enc(torch.zeros(0, 5, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 5, 4)
    assert enc(torch.zeros(2, 0, 3), torch.tensor([1, 2])).shape == (2, 0, 4)
    jax = pytest.importorskip("jax")
    import basisdb.jax as bj

    tables = bj.invariant_encoder_tables(2, db=db, hall_numbers=HALLS)
    assert bj.invariant_encoding(tables, np.zeros((0, 3)), np.zeros(0, np.int32)).shape == (0, 250)
    assert jax.jit(bj.invariant_encoding)(tables, np.zeros((2, 0, 3)), np.array([1, 2])).shape == (2, 0, 250)


def test_masked_padding_crystals_may_carry_any_hall_number(db):
    """A fixed-shape batch padded with an all-masked crystal whose hall number is 0 (no setting): its rows
    are zero and the rest is unchanged, in torch and JAX (eager and jit); an unmasked unknown hall number is
    still refused in eager mode, and is NaN (not another setting's encoding) where it cannot be refused."""
    enc = bt.InvariantEncoder(
        4, kmax=2, db=db, hall_numbers=HALLS, frequency_weighting="metric", dtype=torch.float64
    )
    with torch.no_grad():
        enc.radial.normal_()
    x, h, m, L = mixed_batch(seed=21, B=3, dtype=np.float64)
    xp, hp, mp, Lp = (np.concatenate([a, a[:1]]) for a in (x, h, m, L))
    hp[-1], mp[-1] = 0, False
    t = lambda *a: [torch.tensor(v) for v in a]  # noqa: E731
    want = enc(*t(x, h), lattice=torch.tensor(L), mask=torch.tensor(m))
    got = enc(*t(xp, hp), lattice=torch.tensor(Lp), mask=torch.tensor(mp))
    assert torch.allclose(got[:3], want, atol=1e-12) and torch.equal(got[3], torch.zeros_like(got[3]))
    with pytest.raises(ValueError, match=r"not supported by this encoder: \[0\]"):
        enc(*t(xp, hp), lattice=torch.tensor(Lp))  # unmasked
    import unittest.mock

    with unittest.mock.patch.object(bt, "_checking", lambda: False):  # as under torch.compile: no checks
        out = enc(*t(x[:2], np.array([0, h[0]])), lattice=torch.tensor(L[:2]))
    assert torch.isnan(out[0]).all() and torch.isfinite(out[1]).all()
    jax = pytest.importorskip("jax")
    import basisdb.jax as bj

    tables = bj.invariant_encoder_tables(2, db=db, hall_numbers=HALLS, dtype=np.float32)
    params = bj.invariant_encoder_init(jax.random.PRNGKey(0), 4, kmax=2, frequency_weighting="metric")
    params["radial"] = params["radial"] + 0.3
    for apply in (bj.invariant_encoder_apply, jax.jit(bj.invariant_encoder_apply)):
        out = np.asarray(apply(params, tables, xp.astype(np.float32), hp, Lp.astype(np.float32), mp))
        assert np.isfinite(out).all() and not out[3].any()
    loss = lambda p, lat: bj.invariant_encoder_apply(p, tables, xp.astype(np.float32), hp, lat, mp).sum()  # noqa: E731
    g_lat = jax.grad(loss, argnums=1)(params, Lp.astype(np.float32))
    assert np.isfinite(np.asarray(g_lat)).all()  # |k| at k = 0 has a finite gradient
