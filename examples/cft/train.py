"""Train and evaluate the reference model; writes report.json, PNG plots and checkpoints.

    python examples/cft/train.py --config examples/cft/config.toml

Every experiment in the config trains the invariant model ("cft": basisdb's library layer
``basisdb.torch.InvariantEncoder`` on canonical coordinates) and the same architecture fed
plain plane waves of the coordinates as written in the CIF ("plain"), next to trivial
baselines ("mean", and "composition" = ridge regression on element fractions).  Also
measured: the change of predictions under each crystal's own symmetry operations and
under random re-presentations, training time per epoch and inference throughput.

Reproducibility: every random number (splits, initialisation, batch order, augmentation)
comes from the config's seed, set before any model is built, and torch runs with
``torch.use_deterministic_algorithms(True)`` and the config's thread count.  The same
seed, thread count, torch build and machine reproduce every number exactly.
Checkpoints (``checkpoints/<experiment>_<kind>.pt``) carry the config, the model kind and
the input/target normalisation: ``examples/cft/predict.py`` predicts from them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import click
import numpy as np
import tomllib
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing the example

from basisdb.structures import as_cell  # noqa: E402
from examples.cft.data import featurize_cell, load_dataset  # noqa: E402
from examples.cft.model import KINDS, CFTRegressor  # noqa: E402

CHECKPOINT_FORMAT = "basisdb-cft-checkpoint-2"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, and make torch's kernels deterministic (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ------------------------------------------------------------------ splits
def make_split(records: list[dict], exp: dict, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    idx = np.arange(len(records))
    held = np.zeros(len(records), dtype=bool)
    if exp.get("split", "random") == "holdout_groups":
        groups = set(exp["holdout_groups"])
        held = np.array([r["number"] in groups for r in records])
    rest = rng.permutation(idx[~held])
    n_train, n_val = int(0.8 * len(rest)), int(0.1 * len(rest))
    split = {"train": rest[:n_train], "val": rest[n_train : n_train + n_val], "test": rest[n_train + n_val :]}
    if held.any():
        split["test_unseen_groups"] = idx[held]
    return split


# ------------------------------------------------------------------ training
def build_model(kind: str, cfg: dict) -> CFTRegressor:
    m = cfg["model"]
    return CFTRegressor(
        kind,
        int(cfg["kmax"]),
        7,
        m["d_model"],
        m["heads"],
        m["layers"],
        m["ff"],
        m.get("dropout", 0.0),
        m.get("n_radial", 8),
    )


def pad_records(records: list[dict], kind: str) -> dict[str, np.ndarray]:
    """Padded numpy arrays of a record list for one model kind (cell parameters not yet standardised)."""
    _, pos_key, cell_key, lat_key, _ = KINDS[kind]
    n = max((len(r["numbers"]) for r in records), default=1)
    b = len(records)
    out = {
        "species": np.zeros((b, n), np.int64),
        "positions": np.zeros((b, n, 3), np.float32),
        "mask": np.zeros((b, n), bool),
        "hall": np.array([int(r["hall_number"]) for r in records], np.int64),
        "cell": np.stack([r[cell_key] for r in records]).astype(np.float32)
        if b
        else np.zeros((0, 3, 3), np.float32),
        "lat": np.stack([r[lat_key] for r in records]).astype(np.float64) if b else np.zeros((0, 7)),
    }
    for i, r in enumerate(records):
        m = len(r["numbers"])
        out["species"][i, :m] = r["numbers"]
        out["positions"][i, :m] = r[pos_key]
        out["mask"][i, :m] = True
    return out


def tensor_batch(padded: dict, sel: np.ndarray, lat_mean: np.ndarray, lat_std: np.ndarray) -> dict:
    """Batch tensors for rows ``sel`` of ``pad_records`` output, trimmed to the largest structure."""
    n = max(int(padded["mask"][sel].sum(1).max()), 1) if len(sel) else 1
    return {
        "species": torch.from_numpy(padded["species"][sel, :n]),
        "positions": torch.from_numpy(padded["positions"][sel, :n]),
        "mask": torch.from_numpy(padded["mask"][sel, :n]),
        "hall": torch.from_numpy(padded["hall"][sel]),
        "cell": torch.from_numpy(padded["cell"][sel]),
        "lat": torch.from_numpy(((padded["lat"][sel] - lat_mean) / lat_std).astype(np.float32)),
    }


class Trainer:
    """Trains one model kind on one split; standardised targets, L1 loss, AdamW, one-cycle schedule.

    ``augment(trainer, batch, rng) -> batch`` (optional) changes each training batch (see study.py).
    The seed is set here, before the model is built.
    """

    def __init__(
        self,
        kind: str,
        records: list[dict],
        y: np.ndarray,
        split: dict,
        cfg: dict,
        ckpt: Path | None = None,
        seed: int | None = None,
        augment=None,
        progress: bool = True,
    ):
        self.seed = int(cfg.get("seed", 0) if seed is None else seed)
        seed_everything(self.seed)
        self.kind, self.records, self.y, self.split, self.cfg = kind, records, y, split, cfg
        self.augment, self.progress = augment, progress
        train = split["train"]
        lat = np.stack([records[i][self.lat_key()] for i in train])
        self.lat_mean, self.lat_std = lat.mean(0), lat.std(0) + 1e-6
        self.y_mean, self.y_std = float(y[train].mean()), float(y[train].std() + 1e-12)
        self.model = self.build()
        self.padded = self.pad(records)
        self.train_halls = sorted({int(records[i]["hall_number"]) for i in train})
        self.ckpt = ckpt

    # hooks (overridden by the distance-based baseline in study.py)
    def lat_key(self) -> str:
        return KINDS[self.kind][3]

    def build(self) -> torch.nn.Module:
        return build_model(self.kind, self.cfg)

    def pad(self, records: list[dict]) -> dict:
        return pad_records(records, self.kind)

    def make_batch(self, padded: dict, sel: np.ndarray) -> dict:
        return tensor_batch(padded, sel, self.lat_mean, self.lat_std)

    @staticmethod
    def subset(padded: dict, idx: np.ndarray) -> dict:
        return {k: v[idx] for k, v in padded.items()}

    def batch(self, sel: np.ndarray) -> dict:
        return self.make_batch(self.padded, sel)

    def predict_records(self, recs: list[dict], batch: int = 256) -> np.ndarray:
        return self.predict_padded(self.pad(recs), batch) if recs else np.zeros(0)

    def predict_padded(self, padded: dict, batch: int = 256) -> np.ndarray:
        self.model.eval()
        out = []
        with torch.no_grad():
            for lo in range(0, len(padded["hall"]), batch):
                sel = np.arange(lo, min(lo + batch, len(padded["hall"])))
                out.append(self.model(self.make_batch(padded, sel)).numpy() * self.y_std + self.y_mean)
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def predict(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return np.zeros(0)
        return self.predict_padded(self.subset(self.padded, idx))

    def checkpoint_state(self) -> dict:
        """What predict.py needs: the config, the kind, the normalisation and the weights."""
        return {
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "config": self.cfg,
            "seed": self.seed,
            "lat_mean": self.lat_mean.tolist(),
            "lat_std": self.lat_std.tolist(),
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "train_halls": self.train_halls,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }

    def fit(self) -> dict:
        t = self.cfg["train"]
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.AdamW(self.model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
        n_batches = int(np.ceil(len(self.split["train"]) / t["batch_size"]))
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=t["lr"], total_steps=max(1, t["epochs"] * n_batches), pct_start=0.1
        )
        history, best, best_state, epoch_times = [], np.inf, None, []
        ytr = torch.from_numpy(((self.y - self.y_mean) / self.y_std).astype(np.float32))
        start = 0
        if t.get("resume") and self.ckpt is not None and self.ckpt.is_file():
            state = torch.load(self.ckpt, weights_only=False)
            self.model.load_state_dict(state["last_model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
            history, best, best_state, start = (
                state["history"],
                state["best"],
                state["model"],
                state["epoch"] + 1,
            )
        bar = (
            click.progressbar(
                length=(t["epochs"] - start) * n_batches, label=f"  {self.kind:<15}", file=sys.stderr
            )
            if self.progress
            else None
        )
        try:
            for epoch in range(start, t["epochs"]):
                self.model.train()
                t0, losses = time.perf_counter(), []
                order = rng.permutation(self.split["train"])
                for lo in range(0, len(order), t["batch_size"]):
                    sel = order[lo : lo + t["batch_size"]]
                    b = self.batch(sel)
                    if self.augment is not None:
                        b = self.augment(self, b, rng)
                    loss = torch.nn.functional.l1_loss(self.model(b), ytr[sel])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                    losses.append(loss.item())
                    if bar is not None:
                        bar.update(1)
                epoch_times.append(time.perf_counter() - t0)
                val_mae = float(np.abs(self.predict(self.split["val"]) - self.y[self.split["val"]]).mean())
                history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae": val_mae})
                if val_mae < best:
                    best, best_state = (
                        val_mae,
                        {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                    )
                if self.ckpt is not None:
                    self.ckpt.parent.mkdir(parents=True, exist_ok=True)
                    tmp = self.ckpt.with_name(self.ckpt.name + ".partial")
                    torch.save(
                        {
                            **self.checkpoint_state(),
                            "model": best_state,
                            "last_model": self.model.state_dict(),
                            "opt": opt.state_dict(),
                            "sched": sched.state_dict(),
                            "rng": rng.bit_generator.state,
                            "torch_rng": torch.get_rng_state(),
                            "history": history,
                            "best": best,
                            "epoch": epoch,
                        },
                        tmp,
                    )
                    os.replace(tmp, self.ckpt)
        finally:
            if bar is not None:
                bar.render_finish()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return {
            "history": history,
            "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else None,
            "n_parameters": sum(p.numel() for p in self.model.parameters()),
        }


# ------------------------------------------------------------------ baselines
def composition_baseline(records, y, split) -> dict[str, np.ndarray]:
    """Ridge regression on element fractions (119 features + bias)."""

    def comp(r):
        v = np.bincount(r["numbers"], minlength=120)[:120].astype(float)
        return np.append(v / v.sum(), 1.0)

    X = np.stack([comp(r) for r in records])
    tr = split["train"]
    A = X[tr].T @ X[tr] + 1e-3 * np.eye(X.shape[1])
    w = np.linalg.solve(A, X[tr].T @ y[tr])
    return {name: X[idx] @ w for name, idx in split.items()}


# ------------------------------------------------------------------ invariance
def _random_unimodular(rng) -> np.ndarray:
    while True:
        m = np.eye(3, dtype=int)
        for _ in range(3):
            i, j = rng.choice(3, 2, replace=False)
            m[i] += rng.choice([-1, 1]) * m[j]
        if round(abs(np.linalg.det(m))) == 1:
            return m


def presentations(lattice, positions, numbers, rng, n_ops: int) -> list[tuple[str, tuple]]:
    """The same crystal written differently: own symmetry images and random re-presentations.

    The crystal's own operations come straight from spglib on the input cell (input frame).
    """
    import spglib

    out = []
    ds = spglib.get_symmetry_dataset(
        (lattice, positions, numbers), symprec=1e-5
    )  # exact crystal: tight tolerance
    rots, trans = ds.rotations, ds.translations
    for g in rng.permutation(len(rots))[:n_ops]:
        out.append(("own_operation", (lattice, (positions @ rots[g].T + trans[g]) % 1.0, numbers)))
    shift = rng.random(3)
    out.append(("origin_shift", (lattice, (positions + shift) % 1.0, numbers)))
    m = _random_unimodular(rng)
    out.append(("cell_choice", (m @ lattice, (positions @ np.linalg.inv(m)) % 1.0, numbers)))
    sup = np.concatenate([positions, positions + [1, 0, 0]]) / [2, 1, 1]
    out.append(("supercell_2x1x1", (np.diag([2, 1, 1]) @ lattice, sup, np.concatenate([numbers, numbers]))))
    perm = rng.permutation(len(numbers))
    out.append(("permutation", (lattice, positions[perm], numbers[perm])))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    out.append(("rotation", (lattice @ q.T, positions, numbers)))
    return out


def exact_crystal(lattice, positions, numbers, symprec: float):
    """The crystal symmetrised exactly (spglib's refined conventional cell).

    DFT-relaxed inputs are symmetric only to within ``symprec``; applying an approximate
    operation moves atoms by up to that much, which no model can be blind to.  The
    invariance test therefore starts from the exactly symmetric version of each crystal.
    """
    import spglib

    lat, pos, num = spglib.standardize_cell(
        (lattice, positions, numbers), to_primitive=False, no_idealize=False, symprec=symprec
    )
    return np.asarray(lat), np.asarray(pos), np.asarray(num)


def invariance_report(trainers: dict, structures, test_idx, cfg, seed: int) -> dict:
    """Max |change of prediction| per kind of re-presentation, for each model."""
    rng = np.random.default_rng(seed)
    inv = cfg.get("invariance", {})
    picked = rng.permutation(test_idx)[: inv.get("structures", 20)]
    worst: dict[str, dict[str, float]] = {k: {} for k in trainers}
    for i in picked:
        lattice, positions, numbers = exact_crystal(*as_cell(structures[i].cif), cfg["symprec"])
        base = featurize_cell(lattice, positions, numbers, cfg["kmax"], cfg["symprec"])
        variants = presentations(lattice, positions, numbers, rng, inv.get("operations", 8))
        recs = [featurize_cell(*cell, cfg["kmax"], cfg["symprec"]) for _, cell in variants]
        for kind, tr in trainers.items():
            preds = tr.predict_records([base] + recs)
            for (what, _), p in zip(variants, preds[1:]):
                worst[kind][what] = max(worst[kind].get(what, 0.0), float(abs(p - preds[0])))
    return {"structures": len(picked), "max_abs_change": worst}


# ------------------------------------------------------------------ plots
def plot_report(report: dict, predictions: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for name, exp in report["experiments"].items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for kind in ("cft", "plain"):
            if kind in exp["models"]:
                h = exp["models"][kind]["history"]
                axes[0].plot([e["epoch"] for e in h], [e["val_mae"] for e in h], label=f"{kind} val MAE")
                axes[0].plot(
                    [e["epoch"] for e in h],
                    [e["train_loss"] * exp["target_std"] for e in h],
                    "--",
                    label=f"{kind} train L1 (target units)",
                )
        (
            axes[0].set_xlabel("epoch"),
            axes[0].set_ylabel(exp["target"]),
            axes[0].set_title(f"{name}: learning curves"),
            axes[0].legend(fontsize=7),
        )
        for kind, marker in (("cft", "o"), ("plain", "x")):
            p = predictions[name].get(kind)
            if p is not None:
                axes[1].scatter(p["true"], p["pred"], s=6, marker=marker, alpha=0.6, label=kind)
        lims = axes[1].get_xlim()
        axes[1].plot(lims, lims, "k-", lw=0.5)
        (
            axes[1].set_xlabel("true"),
            axes[1].set_ylabel("predicted"),
            axes[1].set_title("parity (test)"),
            axes[1].legend(fontsize=7),
        )
        per = exp.get("mae_per_space_group", {})
        groups = sorted(per, key=int)
        xs = np.arange(len(groups))
        for off, kind in ((-0.2, "cft"), (0.2, "plain")):
            axes[2].bar(xs + off, [per[g].get(kind, np.nan) for g in groups], width=0.4, label=kind)
        unseen = set(str(g) for g in exp.get("holdout_groups", []))
        axes[2].set_xticks(xs, [g + "*" if g in unseen else g for g in groups], rotation=90, fontsize=6)
        (
            axes[2].set_xlabel("space group (test structures; * = unseen in training)"),
            axes[2].set_ylabel("MAE"),
            axes[2].legend(fontsize=7),
        )
        for lab in axes[2].get_xticklabels():
            if lab.get_text().endswith("*"):
                lab.set_color("red")
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    return files


# ------------------------------------------------------------------ main
def run(cfg: dict, out: Path, limit: int | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)  # and again in every Trainer, before its model is built
    data_dir = Path(cfg["data_dir"])
    if not data_dir.is_absolute():
        data_dir = (HERE.parents[1] / data_dir).resolve()
    report = {
        "config": cfg,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "experiments": {},
    }
    predictions: dict = {}
    loaded: dict = {}
    for exp in cfg["experiment"]:
        name = exp["name"]
        click.echo(f"== {name}: {exp['dataset']} / {exp['target']}", err=True)
        key = (exp["dataset"], exp["target"], limit or exp.get("limit"))
        if key not in loaded:
            loaded[key] = load_dataset(
                data_dir,
                exp["dataset"],
                exp["target"],
                cfg["symprec"],
                cfg.get("cache"),
                cfg.get("jobs", 1),
                limit=limit or exp.get("limit"),
            )
        structures, records, y, feat_secs, failures = loaded[key]
        if failures:
            click.echo(
                f"   {len(failures)} structures could not be featurised and are skipped (see report.json)",
                err=True,
            )
        split = make_split(records, exp, seed)
        res = {
            "dataset": exp["dataset"],
            "target": exp["target"],
            "split_sizes": {k: len(v) for k, v in split.items()},
            "featurisation_failures": failures,
            "featurize_seconds": feat_secs,
            "featurize_ms_per_structure": 1e3 * feat_secs / len(records) if feat_secs else None,
            "target_std": float(y[split["train"]].std()),
            "models": {},
            "holdout_groups": exp.get("holdout_groups", []),
        }
        predictions[name] = {}
        trainers = {}
        for kind in exp["models"]:
            if kind == "mean":
                mae = {
                    s: float(np.abs(y[idx] - y[split["train"]].mean()).mean())
                    for s, idx in split.items()
                    if s != "train"
                }
                res["models"]["mean"] = {"mae": mae}
                continue
            if kind == "composition":
                pred = composition_baseline(records, y, split)
                res["models"]["composition"] = {
                    "mae": {
                        s: float(np.abs(pred[s] - y[idx]).mean()) for s, idx in split.items() if s != "train"
                    }
                }
                continue
            ecfg = {
                **cfg,
                "train": {**cfg["train"], **exp.get("train", {})},
            }  # per-experiment training overrides
            tr = Trainer(
                kind, records, y, split, ecfg, ckpt=out / "checkpoints" / f"{name}_{kind}.pt", seed=seed
            )
            fit = tr.fit()
            mae = {}
            for s, idx in split.items():
                if s != "train":
                    mae[s] = float(np.abs(tr.predict(idx) - y[idx]).mean())
            t0 = time.perf_counter()
            tr.predict(split["test"])
            thr = len(split["test"]) / (time.perf_counter() - t0)
            res["models"][kind] = {**fit, "mae": mae, "inference_structures_per_second_cpu": thr}
            test_all = np.concatenate(
                [split["test"], split.get("test_unseen_groups", np.zeros(0, dtype=int))]
            )
            predictions[name][kind] = {"true": y[test_all], "pred": tr.predict(test_all), "idx": test_all}
            trainers[kind] = tr
            click.echo(f"   {kind}: " + ", ".join(f"{s} MAE {v:.4f}" for s, v in mae.items()), err=True)
        per: dict[str, dict[str, float]] = {}
        for kind, p in predictions[name].items():
            groups = np.array([records[i]["number"] for i in p["idx"]])
            for g in np.unique(groups):
                per.setdefault(str(int(g)), {})[kind] = float(
                    np.abs(p["pred"] - p["true"])[groups == g].mean()
                )
        res["mae_per_space_group"] = per
        if exp.get("invariance") and trainers:
            res["invariance"] = invariance_report(
                trainers, [structures[r["index"]] for r in records], split["test"], cfg, seed
            )
        report["experiments"][name] = res
    report["plots"] = plot_report(report, predictions, out)
    tmp = out / "report.json.partial"
    tmp.write_text(json.dumps(report, indent=1, default=float))
    os.replace(tmp, out / "report.json")
    return report


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(HERE / "config.toml"))
    ap.add_argument("--output", default=None, help="output folder (default: the config's)")
    ap.add_argument(
        "--limit", type=int, default=None, help="only the first N structures of each dataset (smoke runs)"
    )
    ap.add_argument("--epochs", type=int, default=None)
    args = ap.parse_args(argv)
    cfg = tomllib.loads(Path(args.config).read_text())
    if args.epochs is not None:
        cfg["train"]["epochs"] = args.epochs
    torch.set_num_threads(int(cfg.get("threads", os.cpu_count() or 1)))
    out = Path(args.output or cfg["output"])
    t0 = time.perf_counter()
    report = run(cfg, out, args.limit)
    click.echo(
        f"wrote {out / 'report.json'} and {len(report['plots'])} plots in {time.perf_counter() - t0:.0f} s",
        err=True,
    )


if __name__ == "__main__":
    main()
