"""Smoke tests of the reference model (examples/cft): a few steps on a tiny subset of real data.

Asserts that the training loss decreases; that the invariant model's predictions do not
change (float32 round-off) under each crystal's own symmetry operations and under random
re-presentations, while the plain-Fourier baseline's do; that a fixed seed reproduces a
run exactly; that a checkpoint predicts from a folder of CIFs (predict.py) with bad files
recorded and skipped; and the fold construction of the transfer study (study.py).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spglib")
pytest.importorskip("matplotlib")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "datasets"
sys.path.insert(0, str(REPO))

needs_data = pytest.mark.skipif(
    not (DATA / "carbon_24" / "carbon_24.csv").is_file(), reason="../shared/datasets not present"
)

SMOKE = {
    "seed": 0,
    "kmax": 2,
    "symprec": 0.1,
    "jobs": 1,
    "threads": 1,
    "data_dir": str(DATA),
    "cache": None,
    "model": {"d_model": 32, "heads": 2, "layers": 1, "ff": 64},
    "train": {"epochs": 6, "batch_size": 8, "lr": 3e-3, "weight_decay": 0.0},
    "invariance": {"structures": 4, "operations": 3},
    "experiment": [
        {
            "name": "smoke",
            "dataset": "carbon_24",
            "target": "energy_per_atom",
            "split": "random",
            "models": ["cft", "plain", "mean"],
            "invariance": True,
            "limit": 48,
        },
    ],
}


@needs_data
def test_cft_smoke(tmp_path):
    from examples.cft.data import load_csv
    from examples.cft.predict import main as predict_main
    from examples.cft.predict import predict_folder
    from examples.cft.train import run

    report = run(SMOKE, tmp_path)
    exp = report["experiments"]["smoke"]
    for kind in ("cft", "plain"):
        losses = [h["train_loss"] for h in exp["models"][kind]["history"]]
        assert min(losses[1:]) < losses[0], (kind, losses)
    changes = exp["invariance"]["max_abs_change"]
    assert set(changes["cft"]) >= {
        "own_operation",
        "origin_shift",
        "cell_choice",
        "supercell_2x1x1",
        "permutation",
        "rotation",
    }
    assert max(changes["cft"].values()) < 1e-4, changes["cft"]  # float32 round-off (energies ~ -150 eV)
    assert max(changes["plain"].values()) > 10 * max(max(changes["cft"].values()), 1e-6), changes
    assert (tmp_path / "report.json").is_file() and json.loads((tmp_path / "report.json").read_text())
    assert all(Path(p).is_file() for p in report["plots"])
    assert exp["featurisation_failures"] == []

    # the checkpoint carries config and normalisation; predict.py uses it on a folder of CIFs
    ckpt = tmp_path / "checkpoints" / "smoke_cft.pt"
    state = torch.load(ckpt, weights_only=False)
    assert state["config"]["kmax"] == 2 and state["kind"] == "cft"
    assert {"lat_mean", "lat_std", "y_mean", "y_std", "model"} <= set(state)
    rows = load_csv(DATA / "carbon_24" / "carbon_24.csv", ["energy_per_atom"], limit=3)
    cifs = tmp_path / "cifs"
    cifs.mkdir()
    for i, r in enumerate(rows):
        (cifs / f"s{i}.cif").write_text(r.cif)
    (cifs / "broken.cif").write_text("data_x\n_cell_length_a 3\n")  # unreadable: recorded, not fatal
    out = predict_folder(ckpt, cifs)
    assert [o["file"] for o in out] == ["broken.cif", "s0.cif", "s1.cif", "s2.cif"]
    assert out[0]["prediction"] is None and out[0]["error"]
    assert all(o["prediction"] is not None and not o["error"] for o in out[1:])
    # the same crystal in predict.py and in a fresh model restored twice: identical
    again = predict_folder(ckpt, cifs)
    assert [o["prediction"] for o in again] == [o["prediction"] for o in out]
    assert (
        abs(
            np.mean([o["prediction"] for o in out[1:]])
            - np.mean([r.targets["energy_per_atom"] for r in rows])
        )
        < 2.0
    )
    csv_path = tmp_path / "pred.csv"
    assert predict_main(["--checkpoint", str(ckpt), "--cifs", str(cifs), "--output", str(csv_path)]) == 0
    assert len(list(csv.DictReader(open(csv_path)))) == 4


@needs_data
def test_fixed_seed_reproduces_and_failures_are_skipped(tmp_path):
    from examples.cft.data import Structure, featurize_dataset, load_csv
    from examples.cft.train import Trainer

    rows = load_csv(DATA / "carbon_24" / "carbon_24.csv", ["energy_per_atom"], limit=24)
    rows.insert(5, Structure("bad", "not a cif", {"energy_per_atom": 0.0}))
    records, _, failures = featurize_dataset(rows, 2, 0.1, tmp_path / "cache")
    assert [f["index"] for f in failures] == [5] and failures[0]["material_id"] == "bad"
    assert len(records) == 24 and 5 not in [r["index"] for r in records]
    cached, secs, failures2 = featurize_dataset(rows, 2, 0.1, tmp_path / "cache")
    assert secs == 0.0 and failures2 == failures and len(cached) == 24  # from the cache
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    featurize_dataset(rows, 2, 0.05, tmp_path / "cache")  # another symprec: another cache entry
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2

    y = np.array([rows[r["index"]].targets["energy_per_atom"] for r in records])
    split = {"train": np.arange(16), "val": np.arange(16, 20), "test": np.arange(20, 24)}
    cfg = {**SMOKE, "train": {**SMOKE["train"], "epochs": 2}}
    preds = []
    for _ in range(2):
        tr = Trainer("cft", records, y, split, cfg, seed=3, progress=False)
        tr.fit()
        preds.append(tr.predict(split["test"]))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_study_folds():
    from examples.cft.study import FAMILIES, fold_split, make_folds, point_group_of

    rng = np.random.default_rng(0)
    counts = {12: 300, 2: 150, 1: 90, 63: 40, 166: 30, 227: 25, 194: 21, 178: 12, 179: 9, 25: 19, 221: 3}
    numbers = rng.permutation(np.concatenate([np.full(n, g) for g, n in counts.items()]))
    cfg = {"min_group_size": 20, "k_folds": 3, "point_groups": ["622"], "families": ["hexagonal"]}
    folds = make_folds(numbers, cfg)
    sg = [f for f in folds if f["type"] == "space_group"]
    held = sorted(g for f in sg for g in f["held_out"])
    assert held == sorted(g for g, n in counts.items() if n >= 20)  # every big group held out exactly once
    assert len(sg) == 3 and all(f["held_out"] for f in sg)
    pg = next(f for f in folds if f["name"] == "pg-622")
    assert pg["held_out"] == [178, 179] and point_group_of(178) == "622"
    fam = next(f for f in folds if f["name"] == "family-hexagonal")
    assert fam["held_out"] == [166, 178, 179, 194] and FAMILIES["hexagonal"] == (143, 194)
    for f in folds:
        s = fold_split(numbers, f["held_out"], 0)
        allidx = np.concatenate(list(s.values()))
        assert len(allidx) == len(numbers) == len(np.unique(allidx))  # a partition
        assert set(numbers[s["test_unseen"]]) == set(f["held_out"])
        assert not set(numbers[np.concatenate([s["train"], s["val"], s["test_seen"]])]) & set(f["held_out"])
        np.testing.assert_array_equal(
            s["train"], fold_split(numbers, f["held_out"], 0)["train"]
        )  # fixed split seed
