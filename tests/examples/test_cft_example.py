"""Smoke tests of the reference model (examples/cft): a few steps on a tiny subset of real data.

Asserts that the training loss decreases; that the invariant model's predictions do not
change (float32 round-off) under each crystal's own symmetry operations and under random
re-presentations, while the plain-Fourier baseline's do; that a fixed seed reproduces a
run exactly; that a checkpoint predicts from a folder of CIFs (predict.py) with bad files
recorded and skipped; that the feature cache (a basisdb Parquet dataset keyed by inputs and
options) gives what featurising each crystal directly gives, is read back without featurising,
is never reused for another option, and resumes a run that lost a partition; and the fold
construction of the transfer study (study.py).
"""

from __future__ import annotations

import contextlib
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
    with open(csv_path, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 4


@needs_data
def test_fixed_seed_reproduces_and_failures_are_skipped(tmp_path):
    from examples.cft.data import Structure, featurize_structures, load_csv
    from examples.cft.train import Trainer

    rows = load_csv(DATA / "carbon_24" / "carbon_24.csv", ["energy_per_atom"], limit=24)
    rows.insert(5, Structure("bad", "not a cif", {"energy_per_atom": 0.0}))
    records, secs, failures = featurize_structures(rows, 0.1, tmp_path / "cache")
    assert [f["index"] for f in failures] == [5] and failures[0]["material_id"] == "bad"
    assert "no such CIF file" in failures[0]["error"]
    assert len(records) == 24 and 5 not in [r["index"] for r in records] and secs > 0

    y = np.array([rows[r["index"]].targets["energy_per_atom"] for r in records])
    split = {"train": np.arange(16), "val": np.arange(16, 20), "test": np.arange(20, 24)}
    cfg = {**SMOKE, "train": {**SMOKE["train"], "epochs": 2}}
    preds = []
    for _ in range(2):
        tr = Trainer("cft", records, y, split, cfg, seed=3, progress=False)
        tr.fit()
        preds.append(tr.predict(split["test"]))
    np.testing.assert_array_equal(preds[0], preds[1])


@needs_data
def test_feature_cache(tmp_path, monkeypatch):
    import basisdb
    from examples.cft.data import (
        Structure,
        as_cell,
        cache_key,
        featurize_cell,
        featurize_structures,
        load_csv,
    )

    rows = load_csv(DATA / "carbon_24" / "carbon_24.csv", ["energy_per_atom"], limit=24)
    rows.insert(3, Structure("garbage", "data_x\n_cell_length_a 3\n", {"energy_per_atom": 0.0}))
    cache = tmp_path / "cache"

    def featurize(*args, **kwargs):  # 8 structures per partition: 4 partitions, shared out to workers
        return featurize_structures(*args, partition_size=8, **kwargs)

    def direct(symprec):  # the reference: basisdb.featurize on each crystal, no dataset machinery, K = 3
        out = []
        for i, s in enumerate(rows):
            with contextlib.suppress(Exception):
                out.append({**featurize_cell(*as_cell(s.cif), kmax=3, symprec=symprec), "index": i})
        return out

    def same(recs, ref):
        assert [r["index"] for r in recs] == [r["index"] for r in ref]
        for a, b in zip(recs, ref):
            assert set(a) == set(b)
            for k in a:  # bit for bit, dtypes included (the models' inputs must not change)
                va, vb = np.asarray(a[k]), np.asarray(b[k])
                assert va.dtype == vb.dtype and va.shape == vb.shape and np.array_equal(va, vb), (
                    a["index"],
                    k,
                )

    recs, secs, fails = featurize(rows, 0.1, cache)
    assert secs > 0 and [f["index"] for f in fails] == [3] and fails[0]["material_id"] == "garbage"
    same(recs, direct(0.1))  # records do not depend on K: the dataset is featurised without features

    # a second run reads the cache: the library is not called
    def refuse(*args, **kwargs):
        raise AssertionError("featurised again instead of reading the cache")

    monkeypatch.setattr(basisdb, "featurize_many", refuse)
    again, secs2, fails2 = featurize(rows, 0.1, cache)
    assert secs2 == 0.0 and fails2 == fails
    same(again, recs)
    # a changed option or input never reuses the rows: a looser symprec finds other groups here
    with pytest.raises(AssertionError, match="featurised again"):
        featurize(rows, 0.2, cache)
    with pytest.raises(AssertionError, match="featurised again"):
        featurize(rows[:-1], 0.1, cache)
    monkeypatch.undo()
    loose, _, _ = featurize(rows, 0.2, cache)
    ref = direct(0.2)
    assert [r["hall_number"] for r in ref] != [r["hall_number"] for r in recs]  # the check below can fail
    same(loose, ref)
    assert len(list(cache.glob("features-*"))) == 3  # 0.1, 0.2, and the shorter input (refused unfinished)

    # a run that lost a partition (killed before writing it) is completed, and only that partition
    parts = sorted(
        (cache / f"features-{cache_key(rows, 0.1, 8)[:20]}" / "dataset" / "features").glob("*.parquet")
    )
    assert len(parts) == 4
    kept = {p: p.stat().st_mtime_ns for p in parts if p != parts[1]}
    parts[1].unlink()
    resumed, secs3, fails3 = featurize(rows, 0.1, cache)
    assert secs3 > 0 and fails3 == fails and parts[1].is_file()
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    same(resumed, recs)

    # two Dask workers (a LocalCluster) give the same records and failures as this process
    schedulers, real = [], basisdb.featurize_many
    monkeypatch.setattr(
        basisdb, "featurize_many", lambda *a, **k: schedulers.append(k["scheduler"]) or real(*a, **k)
    )
    par, _, pfails = featurize(rows, 0.1, None, jobs=2)
    assert schedulers == [None] and pfails == fails  # None: a LocalCluster of `workers` processes
    same(par, recs)


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
