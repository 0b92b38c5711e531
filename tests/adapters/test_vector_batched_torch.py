"""``basisdb.torch.BatchedVectorBasis``: vector features of atoms from crystals of mixed settings,
against the numpy ``VectorBasis.evaluate`` of each atom's own setting and ``Featurized.vector_features``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import basisdb  # noqa: E402
from basisdb.torch import BatchedVectorBasis  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: crystals.py
import crystals  # noqa: E402

K = 3
#: P 1, P -1, P 1 2_1 1 (screw), P 1 2/m 1, B b e m (centred, non-standard axes), P m m 2 (polar),
#: P 4_3 2_1 2, P 4/m m m, R -3 m and R 3 on hexagonal and rhombohedral axes, P 6_3 m c (polar),
#: F d -3 m (both origin choices), I a -3 d
HALLS = (1, 2, 6, 57, 308, 125, 373, 400, 458, 459, 433, 434, 480, 525, 526, 530)


@pytest.mark.parametrize("kind", ("polar", "axial"))
def test_mixed_settings_agree_with_numpy_float32(kind):
    db = basisdb.open()
    rng = np.random.default_rng(8)
    hall = rng.choice(HALLS, size=60)
    x = rng.random((60, 3))
    bv = BatchedVectorBasis(kind, db=db, kmax=K, dtype=torch.float32)
    vals, mask = bv.features(x, hall)
    width = max(db.get(hall=int(h), kmax=K).vector(kind).n_basis for h in HALLS if h in hall)
    assert vals.shape == (60, width, 3) and mask.shape == (60, width) and vals.dtype == torch.float32
    lat = np.stack([crystals.random_rotation(rng) * rng.uniform(3, 7) for _ in range(60)])  # any cells
    lat[::2] = -lat[::2]  # left-handed ones too (the axial sign)
    cart, _ = bv.features(x, hall, lattice=lat)
    worst = 0.0
    for i in range(60):
        v = db.get(hall=int(hall[i]), kmax=K).vector(kind)
        ref = v.evaluate(x[i : i + 1])[0]
        nb = v.n_basis
        assert mask[i, :nb].all() and not mask[i, nb:].any()
        assert (vals[i, nb:] == 0).all()
        worst = max(worst, np.abs(vals[i, :nb].double().numpy() - ref).max())
        sign = np.sign(np.linalg.det(lat[i])) if kind == "axial" else 1.0
        ref_c = sign * v.evaluate(x[i : i + 1], lattice=lat[i])[0]
        scale = np.abs(lat[i]).max()
        assert np.abs(cart[i, :nb].double().numpy() - ref_c).max() <= 1e-6 * scale * 3
    assert worst <= 1e-6, worst
    print(f"{kind}: float32 worst {worst:.2e}")


def test_float64_and_gradients():
    db = basisdb.open()
    rng = np.random.default_rng(9)
    hall = np.array([6, 6, 480, 525, 2])
    x = rng.random((5, 3))
    bv = BatchedVectorBasis("polar", db=db, kmax=K, dtype=torch.float64)
    xt = torch.tensor(x, requires_grad=True)
    vals, mask = bv.features(xt, hall)
    for i in range(5):
        ref = db.get(hall=int(hall[i]), kmax=K).vector("polar").evaluate(x[i : i + 1])[0]
        assert np.abs(vals[i, : len(ref)].detach().numpy() - ref).max() <= 1e-12
    (vals * mask[..., None]).pow(2).sum().backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all() and xt.grad.abs().max() > 0
    lat = torch.tensor(np.stack([np.diag(rng.uniform(3, 6, 3)) for _ in range(5)]), requires_grad=True)
    cart, _ = bv.features(x, hall, lattice=lat)
    cart.pow(2).sum().backward()
    assert lat.grad is not None and torch.isfinite(lat.grad).all() and lat.grad.abs().max() > 0
    with pytest.raises(ValueError):
        bv.features(x, hall, width=1)
    with pytest.raises(ValueError):
        bv.features(x, hall[:3])
    with pytest.raises(ValueError):
        BatchedVectorBasis("tensor", db=db, kmax=K)


@pytest.mark.parametrize("kind", ("polar", "axial"))
def test_featurized_crystals_in_one_batch(kind):
    """Several crystals (different settings, rotated inputs) in one call = numpy vector_features."""
    cells = [
        crystals.literature(n) for n in ("NaCl", "wurtzite-ZnO", "rutile-TiO2", "alpha-quartz", "beta-Ga2O3")
    ]
    rng = np.random.default_rng(12)
    results = [basisdb.featurize((L @ crystals.random_rotation(rng).T, x, z), kmax=K) for L, x, z in cells]
    bv = BatchedVectorBasis(kind, kmax=K, dtype=torch.float64)
    vals, mask = bv.featurized(results)
    ref = [r.vector_features(kind) for r in results]
    row = 0
    for r, v in zip(results, ref):
        got = vals[row : row + r.n_atoms, : v.shape[1]].numpy()
        assert np.abs(got - v).max(initial=0.0) <= 1e-10
        assert int(mask[row : row + r.n_atoms].sum()) == v.shape[0] * v.shape[1]
        row += r.n_atoms
    assert row == vals.shape[0]
    v32, _ = BatchedVectorBasis(kind, kmax=K, dtype=torch.float32).featurized(results)
    assert np.abs(v32.double().numpy() - vals.numpy()).max() <= 1e-4  # Angstrom-scaled components, float32
