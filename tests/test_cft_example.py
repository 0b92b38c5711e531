"""Smoke test of the reference model (examples/cft): a few steps on a tiny subset of real data.

Asserts that the training loss decreases and that the invariant model's predictions do
not change (float32 round-off) under each crystal's own symmetry operations and under
random re-presentations, while the plain-Fourier baseline's do.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spglib")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets"
sys.path.insert(0, str(REPO))


@pytest.mark.skipif(not (DATA / "carbon_24" / "carbon_24.csv").is_file(), reason="../shared/datasets not present")
def test_cft_smoke(tmp_path):
    from examples.cft.train import run

    cfg = {
        "seed": 0,
        "kmax": 2,
        "symprec": 0.1,
        "jobs": 1,
        "data_dir": str(DATA),
        "cache": None,
        "model": {"d_model": 32, "heads": 2, "layers": 1, "ff": 64},
        "train": {"epochs": 6, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0},
        "invariance": {"structures": 4, "operations": 3},
        "experiment": [
            {"name": "smoke", "dataset": "carbon_24", "target": "energy_per_atom", "split": "random",
             "models": ["cft", "plain", "mean"], "invariance": True, "limit": 48},
        ],
    }
    report = run(cfg, tmp_path)
    exp = report["experiments"]["smoke"]
    for kind in ("cft", "plain"):
        losses = [h["train_loss"] for h in exp["models"][kind]["history"]]
        assert min(losses[1:]) < losses[0], (kind, losses)
    changes = exp["invariance"]["max_abs_change"]
    assert set(changes["cft"]) >= {"own_operation", "origin_shift", "cell_choice", "supercell_2x1x1", "permutation", "rotation"}
    assert max(changes["cft"].values()) < 1e-4, changes["cft"]  # float32 round-off (energies ~ -150 eV)
    assert max(changes["plain"].values()) > 10 * max(max(changes["cft"].values()), 1e-6), changes
    assert (tmp_path / "report.json").is_file() and json.loads((tmp_path / "report.json").read_text())
    assert all(Path(p).is_file() for p in report["plots"])
    assert (tmp_path / "checkpoints" / "smoke_cft.pt").is_file()
