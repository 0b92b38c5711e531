"""basisdb.torch: agreement with numpy, gradients, batches of mixed settings, copies, DataLoader workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import basisdb  # noqa: E402
import basisdb.torch as bt  # noqa: E402
from basisdb._routing import shared_encoding  # noqa: E402

HERE = Path(__file__).resolve().parent
HALLS = (1, 2, 81, 443, 460, 480, 488, 523, 526)
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


@pytest.mark.parametrize("hall", HALLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_agrees_with_numpy(db, hall, dtype):
    b = db.get(hall=hall)
    x = np.random.default_rng(hall).random((40, 3))
    tb = b.to_torch(dtype=dtype)
    assert tb.n_basis == b.n_basis and tb.dtype == dtype
    f = tb.evaluate(torch.as_tensor(x))
    assert f.dtype == dtype and f.shape == (40, b.n_basis)
    assert np.abs(f.numpy() - b.evaluate(x)).max() <= TOL[dtype]
    c = tb.evaluate(x, real=False)
    assert np.abs(c.numpy() - b.evaluate(x, real=False)).max() <= TOL[dtype]
    e = tb.encode(x)
    assert e.shape == (40, b.n_box)
    assert np.abs(e.numpy() - shared_encoding(b, x)).max() <= TOL[dtype]


def test_gradients_flow(db):
    tb = bt.to_torch(db.get(hall=480, kmax=3), dtype=torch.float64)
    x = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tb.evaluate, (x,))
    assert torch.autograd.gradcheck(tb.encode, (x,))
    x32 = torch.rand(5, 3, requires_grad=True)
    bt.to_torch(db.get(hall=523), dtype=torch.float32).evaluate(x32).square().sum().backward()
    assert x32.grad is not None and torch.isfinite(x32.grad).all() and x32.grad.abs().sum() > 0


def test_sparse_tensors_and_copies(db):
    b = db.get(hall=488, kmax=3)
    tb = b.to_torch(dtype=torch.float64)
    assert np.allclose(tb.complex_basis().to_dense().numpy(), b.complex_basis().toarray())
    assert np.allclose(tb.real_basis().to_dense().numpy(), b.real_basis().toarray())
    assert np.allclose(tb.projector().to_dense().numpy(), b.projector().toarray())
    tb.frequencies.zero_()  # a copy: neither the Basis nor a new conversion changes
    tb.coefficients.zero_()
    assert np.abs(b.frequencies).sum() > 0
    again = b.to_torch(dtype=torch.float64)
    assert torch.equal(again.frequencies, torch.as_tensor(np.array(b.frequencies)))
    x = np.random.default_rng(0).random((3, 3))
    out = again.evaluate(x)
    out.zero_()  # results are fresh tensors too
    assert np.abs(again.evaluate(x).numpy() - b.evaluate(x)).max() < 1e-12


def test_batched_mixed_settings(db):
    kmax = 4
    batched = bt.BatchedBasis(db, kmax=kmax, dtype=torch.float64)
    rng = np.random.default_rng(5)
    halls = rng.choice(HALLS, size=120)
    x = torch.tensor(rng.random((120, 3)), requires_grad=True)
    feats, mask = batched.features(x, torch.as_tensor(halls))
    width = max(db.get(hall=int(h), kmax=kmax).n_basis for h in np.unique(halls))
    assert feats.shape == mask.shape == (120, width)
    enc = batched.encode(x, halls)
    assert enc.shape == (120, (2 * kmax + 1) ** 3)
    for h in np.unique(halls):
        b = db.get(hall=int(h), kmax=kmax)
        sel = np.flatnonzero(halls == h)
        xs = x.detach().numpy()[sel]
        assert np.abs(feats.detach().numpy()[sel, : b.n_basis] - b.evaluate(xs)).max() < 1e-12
        assert not feats.detach().numpy()[sel, b.n_basis :].any() and mask[sel].sum(1).eq(b.n_basis).all()
        assert np.abs(enc.detach().numpy()[sel] - shared_encoding(b, xs)).max() < 1e-12
    support = batched.support(halls)
    assert torch.equal(batched.encode(x, halls, index=support), enc[:, support])
    assert not enc.detach()[:, np.setdiff1d(np.arange(enc.shape[1]), support.numpy())].any()
    (feats.square().sum() + enc.square().sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="width"):
        batched.features(x, halls, width=3)
    with pytest.raises(ValueError, match="hall numbers"):
        batched.features(x, halls[:5])


def test_collate_featurized():
    sys.path.insert(0, str(HERE.parent))  # tests/: crystals.py
    import crystals

    results = [basisdb.featurize(crystals.literature(n), kmax=3) for n in ("NaCl", "wurtzite-ZnO")]
    batch = bt.collate(results, dtype=torch.float64)
    assert batch["positions"].shape == (12, 3) and batch["crystal"].tolist() == [0] * 8 + [1] * 4
    feats, _mask = bt.BatchedBasis(kmax=3, dtype=torch.float64).features(batch["positions"], batch["hall"])
    assert np.abs(feats[:8, : results[0].features.shape[1]].numpy() - results[0].features).max() < 1e-12
    assert np.abs(feats[8:, : results[1].features.shape[1]].numpy() - results[1].features).max() < 1e-12


def test_device_argument(db):
    tb = db.get(hall=2, kmax=2).to_torch(device="cpu")
    assert tb.frequencies.device.type == "cpu" and tb.evaluate(torch.rand(2, 3)).device.type == "cpu"
    if torch.cuda.is_available():  # pragma: no cover - needs a GPU
        tc = db.get(hall=523).to_torch(dtype=torch.float32, device="cuda")
        x = np.random.default_rng(0).random((50, 3))
        assert np.abs(tc.evaluate(x).cpu().numpy() - db.get(hall=523).evaluate(x)).max() <= 1e-6


def test_bad_arguments(db):
    with pytest.raises(ValueError, match="dtype"):
        bt.to_torch(db.get(hall=2), dtype=torch.int64)
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        bt.to_torch(db.get(hall=2)).evaluate(torch.rand(4, 2))


def test_dataloader_workers_match_single_process():
    if not (HERE.parents[2] / "shared" / "datasets").is_dir():
        pytest.skip("../shared/datasets is not available")
    out = subprocess.run(
        [sys.executable, str(HERE / "dataloader_check.py")], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same"] and result["n"] == 24 and result["worker_pids"] == 2
    assert len(result["halls"]) >= 2  # several groups read concurrently from the file


def test_dtype_names_and_one_line_repr(db):
    """dtype names are accepted like torch dtypes; the repr is one line, never a tensor dump."""
    b = db.get(225, kmax=3)
    assert bt.to_torch(b, dtype="float32").dtype == torch.float32
    assert bt.to_torch(b, dtype="float64").dtype == torch.float64
    r = repr(bt.to_torch(b, dtype="float32"))
    assert "\n" not in r and "tensor(" not in r and "hall_number=523" in r
    with pytest.raises(ValueError, match=r"float32 or torch\.float64"):
        bt.to_torch(b, dtype="int32")
