"""The shared box encoding (routing for weight sharing) and the framework term tables (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

import basisdb
from basisdb._routing import encoding_table, half_box, shared_encoding, term_table

HALLS = (1, 2, 81, 350, 443, 460, 461, 480, 488, 523, 526, 530)
K = 4


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


def _plane_waves(x, kmax):
    return np.exp(2j * np.pi * x @ basisdb.box_frequencies(kmax).T)


@pytest.mark.parametrize("hall", HALLS)
def test_encoding_is_projector_transpose_times_plane_waves(db, hall):
    b = db.get(hall=hall, kmax=K)
    x = np.random.default_rng(hall).random((7, 3))
    P = b.projector().toarray()
    expected = (P.T @ _plane_waves(x, K).T).T  # conj(u_G(x)) = P_G^T e(x)
    assert np.abs(shared_encoding(b, x, real=False) - expected).max() < 1e-12
    real = shared_encoding(b, x)
    assert real.shape == (7, b.n_box) and real.dtype == np.float64
    assert np.allclose(np.linalg.norm(real, axis=1), np.linalg.norm(expected, axis=1))
    # the real packing: sqrt2 Re / sqrt2 Im of the half box, the k = 0 entry as is
    pos, neg, zero = half_box(K)
    assert np.allclose(real[:, pos], np.sqrt(2) * expected[:, pos].real)
    assert np.allclose(real[:, neg], np.sqrt(2) * expected[:, pos].imag)
    assert np.allclose(real[:, zero], expected[:, zero].real)
    # entries outside the setting's kept, non-extinct frequencies are zero
    outside = np.setdiff1d(np.arange(b.n_box), b.box_indices)
    assert not shared_encoding(b, x, real=False)[:, outside].any()


@pytest.mark.parametrize("hall", HALLS)
def test_encoding_is_invariant(db, hall):
    b = db.get(hall=hall, kmax=K)
    x = np.random.default_rng(1).random((5, 3))
    ref = shared_encoding(b, x)
    rots, trans = b.operations()
    worst = max(np.abs(shared_encoding(b, x @ R.T + t) - ref).max() for R, t in zip(rots, trans))
    assert worst < 1e-11


def test_projector_times_plane_waves_is_not_invariant_in_p61(db):
    """docs/CONVENTIONS.md section 8: P_G e(x) is invariant only for centrosymmetric-like groups."""
    b = db.get("P6_1", kmax=K)
    x = np.random.default_rng(2).random((5, 3))
    P = b.projector()
    rots, trans = b.operations()
    diff = max(
        np.abs(P @ _plane_waves(x @ R.T + t, K).T - P @ _plane_waves(x, K).T).max()
        for R, t in zip(rots, trans)
    )
    assert diff > 0.1


@pytest.mark.parametrize("hall", (1, 81, 480, 523))
@pytest.mark.parametrize("real", (True, False))
def test_term_table_reproduces_evaluate(db, hall, real):
    b = db.get(hall=hall, kmax=K)
    x = np.random.default_rng(3).random((6, 3))
    t = term_table(b, real=real)
    ang = 2 * np.pi * x @ t.freq.T
    out = np.zeros((6, t.n_out))
    np.add.at(out, (slice(None), t.column), t.alpha * np.cos(ang) + t.beta * np.sin(ang))
    ref = b.evaluate(x, real=real)
    if not real:
        ref = np.stack([ref.real, ref.imag], axis=-1).reshape(6, -1)
    assert np.abs(out - ref).max() < 1e-12
    e = encoding_table(b)
    assert len(np.unique(e.slot)) == len(e.slot)
    assert not t.alpha.flags.writeable and not e.slot.flags.writeable


def test_features_from_featurize_share_one_space(db):
    """Crystals of different groups: encodings of their atoms have the same length (n_box)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: crystals.py
    import crystals

    encs = []
    for name in ("NaCl", "wurtzite-ZnO", "alpha-quartz"):
        r = basisdb.featurize(crystals.literature(name), kmax=K)
        encs.append(shared_encoding(r.basis, r.positions))
    assert {e.shape[1] for e in encs} == {(2 * K + 1) ** 3}
