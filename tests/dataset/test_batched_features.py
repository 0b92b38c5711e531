"""The many-structure path evaluates the features of a whole partition per basis in one call
(``dataset._evaluate_pending``); each structure's features must be bit-identical (float64) to what
``featurize`` computes for it alone, whatever the other structures of the batch.  Checked on carbon_24
and perov_5 rows of several settings, mixed in one batch, and in a different batch composition.
"""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import _dataset_io, dataset

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"
pytestmark = pytest.mark.skipif(not (SHARED / "perov_5").is_dir(), reason="../shared/datasets not present")
csv.field_size_limit(sys.maxsize)


def _cifs(name, n):
    with open(SHARED / name / f"{name}.csv", newline="") as fh:
        return [r["cif"] for _, r in zip(range(n), csv.DictReader(fh))]


@pytest.mark.parametrize("kmax", [2, 4])
def test_batched_features_equal_featurize_bit_for_bit(kmax):
    pytest.importorskip("gemmi")
    cifs = _cifs("carbon_24", 40) + _cifs("perov_5", 40)
    opts = dict(
        features=True,
        encoding=False,
        kmax=kmax,
        symprec=0.1,
        min_distance=0.1,
        angle_tolerance=5.0,
        on_mismatch="warn",
    )
    db = basisdb.open()
    items = [_dataset_io.Item(i, str(i), f"item {i}", c) for i, c in enumerate(cifs)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = [basisdb.featurize(c, kmax=kmax, db=db).features for c in cifs]
        for batch in (items, items[::-1][:37]):  # two batch compositions
            pending: dict = {}
            rows = [dataset._featurize_item(it, opts, db, pending) for it in batch]
            assert all(r["features"] is None for r in rows)
            assert len(pending) > 3  # several settings in one batch
            assert sum(len(v[1]) for v in pending.values()) == len(rows)
            dataset._evaluate_pending(pending)
            for it, r in zip(batch, rows):
                want = alone[it.index]
                assert r["features"].dtype == want.dtype and r["features"].shape == want.shape
                assert np.array_equal(r["features"], want)
                assert r["n_basis"] == want.shape[1]
