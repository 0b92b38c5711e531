"""Transfer study of the reference model: rotating held-out folds, several seeds, baselines.

    python examples/cft/study.py --config examples/cft/study.toml          # run (resumes), then JSON + plots
    python examples/cft/study.py --config examples/cft/study.toml --plots  # only remake the plots / summary from the JSON

Folds on carbon_24 (symmetry detected at the config's symprec):
  sg-k      grouped K-fold over the space groups with >= min_group_size structures: every such
            group is held out exactly once (greedy balancing of the held-out sizes)
  pg-X      every space group of point group X held out
  family-X  every space group of crystal family X held out
In every fold the remaining structures are split 80/10/10 into train / val / test_seen with a
fixed split seed; the held-out structures form test_unseen.  The model seeds change the
initialisation, batch order and augmentation only.

Every model is also evaluated on re-presented test sets (``*_re``): each test crystal written
with a random origin shift, a random unimodular cell change and a random rotation (fixed
per structure), re-read through the same pipeline.  Invariant models (cft*, mpnn) should not
notice; the plain models see different numbers.

Models: mean; cft (basisdb.torch.InvariantEncoder); cft_metric (the layer's metric frequency
weighting); cft_subgroup (training crystals presented in random subgroups H of their group G,
same frame, from basisdb.subgroup_settings); plain (as written); plain_aug (fresh random
re-presentations every batch); plain_canonical (plane waves of the canonical coordinates:
the hypothesis test); mpnn (SchNet-style, torch_geometric, periodic ASE neighbour lists).
cft models are also evaluated with every unseen group routed through its largest seen
subgroup (``test_unseen_routed``).

Also on perov_5: how the detected group and the invariant encoding jump under small
random displacements (against amplitude and symprec), and cft vs plain / plain_aug on a
random split.  Results are written to JSON after every run, so a partial study is usable;
a rerun skips finished runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import click
import numpy as np
import tomllib
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

import basisdb  # noqa: E402
from examples.cft.data import cell_parameters, featurize_cell, load_dataset  # noqa: E402
from examples.cft.model import DistanceMPNN, periodic_edges  # noqa: E402
from examples.cft.train import Trainer, _random_unimodular, seed_everything  # noqa: E402

FAMILIES = {
    "triclinic": (1, 2),
    "monoclinic": (3, 15),
    "orthorhombic": (16, 74),
    "tetragonal": (75, 142),
    "hexagonal": (143, 194),
    "cubic": (195, 230),
}
REPRESENTED = "_re"


# ------------------------------------------------------------------ folds
def point_group_of(number: int) -> str:
    import spglib

    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        if t.number == number:
            return t.pointgroup_international
    raise ValueError(number)


def family_of(number: int) -> str:
    return next(name for name, (lo, hi) in FAMILIES.items() if lo <= number <= hi)


def make_folds(numbers: np.ndarray, cfg: dict) -> list[dict]:
    """Held-out space groups of every fold (see the module docstring); ``numbers``: group of each structure."""
    groups, counts = np.unique(numbers, return_counts=True)
    big = sorted(
        [(int(c), int(g)) for g, c in zip(groups, counts) if c >= cfg["min_group_size"]],
        key=lambda t: (-t[0], t[1]),
    )
    k = int(cfg["k_folds"])
    folds = [{"name": f"sg-{i}", "type": "space_group", "held_out": [], "size": 0} for i in range(k)]
    for c, g in big:
        f = min(folds, key=lambda f: (f["size"], f["name"]))
        f["held_out"].append(g)
        f["size"] += c
    present = [int(g) for g in groups]
    for pg in cfg.get("point_groups", []):
        held = [g for g in present if point_group_of(g) == pg]
        folds.append(
            {
                "name": f"pg-{pg}",
                "type": "point_group",
                "held_out": held,
                "size": int(np.isin(numbers, held).sum()),
            }
        )
    for fam in cfg.get("families", []):
        held = [g for g in present if family_of(g) == fam]
        folds.append(
            {
                "name": f"family-{fam}",
                "type": "crystal_family",
                "held_out": held,
                "size": int(np.isin(numbers, held).sum()),
            }
        )
    for f in folds:
        f["held_out"] = sorted(f["held_out"])
    return folds


def fold_split(numbers: np.ndarray, held_out: list[int], split_seed: int) -> dict[str, np.ndarray]:
    """train / val / test_seen (80/10/10 of the seen groups) and test_unseen (every held-out structure)."""
    idx = np.arange(len(numbers))
    held = np.isin(numbers, held_out)
    rest = np.random.default_rng(split_seed).permutation(idx[~held])
    n_tr, n_va = int(0.8 * len(rest)), int(0.1 * len(rest))
    return {
        "train": np.sort(rest[:n_tr]),
        "val": np.sort(rest[n_tr : n_tr + n_va]),
        "test_seen": np.sort(rest[n_tr + n_va :]),
        "test_unseen": idx[held],
    }


# ------------------------------------------------------------------ re-presentation
def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.sign(np.linalg.det(q))


def represent(record: dict, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crystal as written, re-written with a random origin, unimodular cell and rotation."""
    m = _random_unimodular(rng)
    lattice = m @ record["raw_cell"] @ random_rotation(rng).T
    positions = (record["raw_positions"] @ np.linalg.inv(m) + rng.random(3)) % 1.0
    return lattice, positions, record["numbers"]


def represented_records(records: list[dict], cfg: dict, seed: int) -> list[dict | None]:
    """One random re-presentation of every structure, featurised (None where that fails)."""
    rng = np.random.default_rng(seed)
    out = []
    for r in records:
        cell = represent(r, rng)
        try:
            rec = featurize_cell(*cell, kmax=cfg["kmax"], symprec=cfg["symprec"])
            rec["index"] = r["index"]
        except Exception:
            rec = None
        out.append(rec)
    return out


# ------------------------------------------------------------------ augmentation (per training batch)
_UNIMODULAR: list[np.ndarray] = []


def unimodular_pool() -> list[np.ndarray]:
    """4096 random unimodular integer matrices (fixed seed) that plain_aug draws its cell changes from."""
    if not _UNIMODULAR:
        pool_rng = np.random.default_rng(12345)
        _UNIMODULAR.extend(_random_unimodular(pool_rng) for _ in range(4096))
    return _UNIMODULAR


def augment_representation(trainer: Trainer, batch: dict, rng) -> dict:
    """plain_aug: a fresh random origin shift, unimodular cell change and rotation per crystal."""
    pool = unimodular_pool()
    pos = batch["positions"].numpy().astype(np.float64)
    cell = batch["cell"].numpy().astype(np.float64)
    mask = batch["mask"].numpy()
    lat = np.empty((len(pos), 7))
    for b in range(len(pos)):
        m = pool[rng.integers(len(pool))]
        pos[b] = (pos[b] @ np.linalg.inv(m) + rng.random(3)) % 1.0
        cell[b] = m @ cell[b] @ random_rotation(rng).T
        lat[b] = cell_parameters(cell[b], int(mask[b].sum()))
    pos[~mask] = 0.0
    return {
        **batch,
        "positions": torch.from_numpy(pos.astype(np.float32)),
        "cell": torch.from_numpy(cell.astype(np.float32)),
        "lat": torch.from_numpy(((lat - trainer.lat_mean) / trainer.lat_std).astype(np.float32)),
    }


def augmented_lattice_stats(trainer: Trainer, rng, copies: int = 4) -> None:
    """Standardise plain_aug's cell parameters with the statistics of the re-presented training cells
    it trains on (the as-written cells of perov_5 all have 90 degree angles: their std is 0)."""
    params, pool = [], unimodular_pool()
    for i in trainer.split["train"]:
        r = trainer.records[i]
        for _ in range(copies):
            m = pool[rng.integers(len(pool))]
            params.append(cell_parameters(m @ r["raw_cell"], len(r["numbers"])))
    params = np.array(params)
    trainer.lat_mean, trainer.lat_std = params.mean(0), params.std(0) + 1e-6


_SUBGROUPS: dict[int, np.ndarray] = {}
_DB: list = []


def database():
    if not _DB:
        _DB.append(basisdb.open())
    return _DB[0]


def subgroups(hall: int) -> np.ndarray:
    """Hall numbers of the subgroup settings of ``hall`` in its frame (basisdb.subgroup_settings), cached."""
    if hall not in _SUBGROUPS:
        _SUBGROUPS[hall] = np.asarray(basisdb.subgroup_settings(database(), hall), dtype=np.int64)
    return _SUBGROUPS[hall]


def augment_subgroup(trainer: Trainer, batch: dict, rng, p_keep: float = 0.5) -> dict:
    """cft_subgroup: with probability 1 - p_keep route a crystal of G through a random subgroup H
    (same frame; its canonical coordinates are valid coordinates of H)."""
    hall = batch["hall"].numpy().copy()
    for b in range(len(hall)):
        if rng.random() >= p_keep:
            subs = subgroups(int(hall[b]))
            hall[b] = subs[rng.integers(len(subs))]
    return {**batch, "hall": torch.from_numpy(hall)}


def route_unseen(records: list[dict], train_halls: list[int]) -> list[dict]:
    """Each crystal of a setting not seen in training routed through its largest seen subgroup setting."""
    db, seen, out = database(), set(train_halls), []
    for r in records:
        h = int(r["hall_number"])
        if h not in seen:
            cands = [s for s in subgroups(h) if int(s) in seen]
            if cands:
                h = max(cands, key=lambda s: (db.get_setting(hall=int(s)).order, -int(s)))
        out.append({**r, "hall_number": int(h)})
    return out


# ------------------------------------------------------------------ distance-based baseline
class MPNNTrainer(Trainer):
    """The same training loop for the distance-based message-passing baseline (no space group)."""

    def lat_key(self) -> str:
        return "lattice"

    def build(self) -> torch.nn.Module:
        m = self.cfg["mpnn"]
        return DistanceMPNN(m["hidden"], m["gaussians"], m["cutoff"], m["interactions"])

    def pad(self, records: list[dict]) -> dict:
        cutoff = self.cfg["mpnn"]["cutoff"]
        graphs = np.empty(len(records), dtype=object)
        for i, r in enumerate(records):
            if "_edges" not in r:
                r["_edges"] = periodic_edges(r["raw_cell"], r["raw_positions"], cutoff)
            graphs[i] = (r["numbers"], *r["_edges"])
        return {
            "graphs": graphs,
            "hall": np.array([r["hall_number"] for r in records]),
            "lat": np.stack([r["lattice"] for r in records]) if records else np.zeros((0, 7)),
        }

    def make_batch(self, padded: dict, sel: np.ndarray) -> dict:
        species, graph, src, dst, dist, off = [], [], [], [], [], 0
        for b, i in enumerate(sel):
            z, s, d, r = padded["graphs"][i]
            species.append(z)
            graph.append(np.full(len(z), b))
            src.append(s + off)
            dst.append(d + off)
            dist.append(r)
            off += len(z)
        # messages flow j -> i (source j = neighbour, target i)
        return {
            "species": torch.from_numpy(np.concatenate(species)),
            "graph": torch.from_numpy(np.concatenate(graph)),
            "edge_index": torch.from_numpy(np.stack([np.concatenate(dst), np.concatenate(src)])),
            "distance": torch.from_numpy(np.concatenate(dist)),
            "lat": torch.from_numpy(((padded["lat"][sel] - self.lat_mean) / self.lat_std).astype(np.float32)),
        }


# ------------------------------------------------------------------ runs
class Results:
    """The study's JSON, written atomically after every run."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.data = json.loads(path.read_text()) if path.is_file() else {"runs": []}
        self.data.update(meta)

    def done(self, **key) -> bool:
        return any(all(r.get(k) == v for k, v in key.items()) for r in self.data["runs"])

    def add(self, row: dict) -> None:
        self.data["runs"].append(row)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".partial")
        tmp.write_text(json.dumps(self.data, indent=1, default=float))
        os.replace(tmp, self.path)


def evaluate(
    trainer: Trainer | None,
    y: np.ndarray,
    sets: dict,
    records: list[dict],
    re_records: list,
    mean: float | None = None,
) -> dict:
    mae = {}
    for name, idx in sets.items():
        if name == "train" or not len(idx):
            continue
        pred = np.full(len(idx), mean) if trainer is None else trainer.predict(idx)
        mae[name] = float(np.abs(pred - y[idx]).mean())
        ok = np.array([re_records[i] is not None for i in idx], dtype=bool)
        if name != "val" and ok.any():
            recs = [re_records[i] for i in idx[ok]]
            pred_re = np.full(ok.sum(), mean) if trainer is None else trainer.predict_records(recs)
            mae[name + REPRESENTED] = float(np.abs(pred_re - y[idx[ok]]).mean())
            if trainer is not None:
                mae[name + "_max_change_re"] = float(np.abs(pred_re - pred[ok]).max())
        if trainer is not None and name == "test_unseen" and trainer.kind.startswith("cft"):
            pred_r = trainer.predict_records(route_unseen([records[i] for i in idx], trainer.train_halls))
            mae["test_unseen_routed"] = float(np.abs(pred_r - y[idx]).mean())
    return mae


def train_and_eval(kind: str, records, y, split, cfg: dict, seed: int, re_records) -> dict:
    t0 = time.perf_counter()
    if kind == "mean":
        return {
            "mae": evaluate(None, y, split, records, re_records, mean=float(y[split["train"]].mean())),
            "seconds": 0.0,
        }
    # a variant (e.g. cft_k5) is a base kind with other settings: [variants.<name>] base, kmax, model, train
    v = cfg.get("variants", {}).get(kind, {})
    base = v.get("base", kind)
    augment = {
        "plain_aug": augment_representation,
        "cft_subgroup": lambda tr, b, rng: augment_subgroup(tr, b, rng, cfg.get("subgroup_p_keep", 0.5)),
    }.get(base)
    tcfg = {
        **cfg,
        "kmax": v.get("kmax", cfg["kmax"]),
        "model": {**cfg["model"], **v.get("model", {})},
        "train": {**cfg["train"], **v.get("train", {})},
    }
    cls = MPNNTrainer if base == "mpnn" else Trainer
    tr = cls(base, records, y, split, tcfg, ckpt=None, seed=seed, augment=augment, progress=False)
    if base == "plain_aug":
        augmented_lattice_stats(tr, np.random.default_rng(seed + 7919))
    fit = tr.fit()
    return {
        "mae": evaluate(tr, y, split, records, re_records),
        "seconds": time.perf_counter() - t0,
        "seconds_per_epoch": fit["seconds_per_epoch"],
        "n_parameters": fit["n_parameters"],
        "best_epoch": int(np.argmin([h["val_mae"] for h in fit["history"]])),
        "val_curve": [round(h["val_mae"], 5) for h in fit["history"]],
    }


def perov_jumps(records: list[dict], cfg: dict) -> dict:
    """Detected group and invariant-encoding change under random displacements (perov_5)."""
    from basisdb.torch import InvariantEncoder

    j = cfg["perov"]["jumps"]
    rng = np.random.default_rng(0)
    picked = rng.permutation(len(records))[: j["structures"]]
    enc = InvariantEncoder(1, kmax=cfg["kmax"])

    def encoding(rec):
        x = torch.tensor(rec["positions"], dtype=torch.float32)[None]
        with torch.no_grad():
            return enc.encode(
                x, torch.tensor([rec["hall_number"]]), mask=torch.ones(1, len(x[0]), dtype=torch.bool)
            )[0].numpy()

    out = []
    for symprec in j["symprecs"]:
        base = {}
        for i in picked:
            r = records[i]
            with contextlib.suppress(Exception):  # a structure this symprec cannot featurize is left out
                base[i] = featurize_cell(
                    r["raw_cell"], r["raw_positions"], r["numbers"], cfg["kmax"], symprec
                )
        base_enc = {i: encoding(b) for i, b in base.items()}
        for amp in j["amplitudes"]:
            changed, rel, fails = [], [], 0
            for i, b in base.items():
                r = records[i]
                cart = r["raw_positions"] @ r["raw_cell"] + rng.normal(
                    size=r["raw_positions"].shape
                ) * amp / np.sqrt(3)
                try:
                    d = featurize_cell(
                        r["raw_cell"],
                        cart @ np.linalg.inv(r["raw_cell"]) % 1.0,
                        r["numbers"],
                        cfg["kmax"],
                        symprec,
                    )
                except Exception:
                    fails += 1
                    continue
                changed.append(d["hall_number"] != b["hall_number"])
                e0, e1 = base_enc[i], encoding(d)
                rel.append(float(np.linalg.norm(e1 - e0) / max(np.linalg.norm(e0), 1e-12)))
            out.append(
                {
                    "symprec": symprec,
                    "amplitude": amp,
                    "structures": len(changed),
                    "failures": fails,
                    "group_changed": float(np.mean(changed)) if changed else None,
                    "encoding_rel_change_median": float(np.median(rel)) if rel else None,
                    "encoding_rel_change_p90": float(np.percentile(rel, 90)) if rel else None,
                }
            )
            click.echo(f"   jumps symprec={symprec} amp={amp}: {out[-1]}", err=True)
    return {"rows": out}


def run_study(cfg: dict, out: Path) -> Results:
    data_dir = Path(cfg["data_dir"])
    if not data_dir.is_absolute():
        data_dir = (HERE.parents[1] / data_dir).resolve()
    res = Results(
        out / "study.json", {"config": cfg, "torch": torch.__version__, "threads": torch.get_num_threads()}
    )
    c = cfg["carbon"]
    _, records, y, _, failures = load_dataset(
        data_dir, c["dataset"], c["target"], cfg["symprec"], cfg.get("cache"), cfg.get("jobs", 1)
    )
    numbers = np.array([r["number"] for r in records])
    folds = make_folds(numbers, c)
    re_records = represented_records(records, cfg, seed=cfg.get("split_seed", 0) + 1)
    res.data["carbon"] = {
        "dataset": c["dataset"],
        "target": c["target"],
        "structures": len(records),
        "featurisation_failures": failures,
        "representation_failures": int(sum(r is None for r in re_records)),
        "groups": {str(int(g)): int(n) for g, n in zip(*np.unique(numbers, return_counts=True))},
        "folds": [
            {
                **f,
                "split_sizes": {
                    k: len(v) for k, v in fold_split(numbers, f["held_out"], cfg.get("split_seed", 0)).items()
                },
            }
            for f in folds
        ],
    }
    res.save()
    p = cfg.get("perov")
    perov = None
    if p and "jumps" in p and "perov_jumps" not in res.data:
        perov = load_dataset(
            data_dir,
            p["dataset"],
            p["target"],
            cfg["symprec"],
            cfg.get("cache"),
            cfg.get("jobs", 1),
        )
        res.data["perov_jumps"] = perov_jumps(perov[1], cfg)
        res.save()
    for stage in cfg["stage"]:
        if stage["dataset"] == c["dataset"]:
            for seed in stage["seeds"]:
                for fold in folds:
                    split = fold_split(numbers, fold["held_out"], cfg.get("split_seed", 0))
                    for kind in stage["models"]:
                        if res.done(dataset=c["dataset"], fold=fold["name"], model=kind, seed=seed):
                            continue
                        row = train_and_eval(kind, records, y, split, cfg, seed, re_records)
                        res.add(
                            {
                                "dataset": c["dataset"],
                                "fold": fold["name"],
                                "model": kind,
                                "seed": seed,
                                **row,
                            }
                        )
                        click.echo(
                            f"[{time.strftime('%H:%M:%S')}] {fold['name']:<18} {kind:<16} seed {seed}: "
                            + ", ".join(
                                f"{k} {v:.4f}" for k, v in row["mae"].items() if "max_change" not in k
                            )
                            + f" ({row['seconds']:.0f} s)",
                            err=True,
                        )
        elif p and stage["dataset"] == p["dataset"]:
            if perov is None:
                perov = load_dataset(
                    data_dir,
                    p["dataset"],
                    p["target"],
                    cfg["symprec"],
                    cfg.get("cache"),
                    cfg.get("jobs", 1),
                )
            _, precs, py, _, pfail = perov[:5]
            if len(perov) == 5:
                pre = represented_records(precs, cfg, seed=cfg.get("split_seed", 0) + 1)
                idx = np.random.default_rng(cfg.get("split_seed", 0)).permutation(len(precs))
                n_tr, n_va = int(0.8 * len(idx)), int(0.1 * len(idx))
                psplit = {
                    "train": np.sort(idx[:n_tr]),
                    "val": np.sort(idx[n_tr : n_tr + n_va]),
                    "test_seen": np.sort(idx[n_tr + n_va :]),
                }
                perov = (*perov, pre, psplit)
                res.data["perov"] = {
                    "dataset": p["dataset"],
                    "target": p["target"],
                    "structures": len(precs),
                    "featurisation_failures": pfail,
                    "representation_failures": int(sum(r is None for r in pre)),
                    "split_sizes": {k: len(v) for k, v in psplit.items()},
                }
                res.save()
            pre, psplit = perov[5], perov[6]
            pcfg = {**cfg, "train": {**cfg["train"], **p.get("train", {})}}
            for seed in stage["seeds"]:
                for kind in stage["models"]:
                    if res.done(dataset=p["dataset"], fold="random", model=kind, seed=seed):
                        continue
                    row = train_and_eval(kind, precs, py, psplit, pcfg, seed, pre)
                    res.add({"dataset": p["dataset"], "fold": "random", "model": kind, "seed": seed, **row})
                    click.echo(
                        f"[{time.strftime('%H:%M:%S')}] perov {kind:<16} seed {seed}: "
                        + ", ".join(f"{k} {v:.4f}" for k, v in row["mae"].items() if "max_change" not in k)
                        + f" ({row['seconds']:.0f} s)",
                        err=True,
                    )
    return res


# ------------------------------------------------------------------ summary and plots
def aggregate(data: dict) -> dict:
    """{dataset: {fold: {model: {set: {mean, std, min, max, n}}}}} over seeds."""
    acc: dict = {}
    for r in data["runs"]:
        for s, v in r["mae"].items():
            acc.setdefault(r["dataset"], {}).setdefault(r["fold"], {}).setdefault(r["model"], {}).setdefault(
                s, []
            ).append(v)
    return {
        d: {
            f: {
                m: {
                    s: {
                        "mean": float(np.mean(v)),
                        "std": float(np.std(v)),
                        "min": float(np.min(v)),
                        "max": float(np.max(v)),
                        "n": len(v),
                    }
                    for s, v in sets.items()
                }
                for m, sets in models.items()
            }
            for f, models in folds.items()
        }
        for d, folds in acc.items()
    }


MODEL_ORDER = [
    "mean",
    "cft",
    "cft_metric",
    "cft_subgroup",
    "cft_k5",
    "plain",
    "plain_aug",
    "plain_canonical",
    "mpnn",
]


def _models(folds: dict) -> list[str]:
    present = {m for f in folds.values() for m in f}
    return [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER))


def headline(
    data: dict,
    dataset: str,
    sets=("test_seen", "test_unseen", "test_seen_re", "test_unseen_re", "test_unseen_routed"),
) -> str:
    """Per model: the mean over folds of each set's MAE, as mean ± std over the seeds that finished
    every fold, and the ratio unseen / seen."""
    runs = [r for r in data["runs"] if r["dataset"] == dataset]
    folds = sorted({r["fold"] for r in runs})
    by: dict = {}
    for r in runs:
        by.setdefault(r["model"], {}).setdefault(r["seed"], {})[r["fold"]] = r["mae"]
    models = [m for m in MODEL_ORDER if m in by] + sorted(set(by) - set(MODEL_ORDER))
    lines = [
        f"\n**{dataset}: mean over the {len(folds)} folds** (MAE; mean ± std over seeds; only seeds with every fold)\n",
        "| model | seeds | " + " | ".join(sets) + " | unseen / seen |",
        "|---" * (len(sets) + 3) + "|",
    ]
    for m in models:
        seeds = [sd for sd, fs in by[m].items() if set(fs) == set(folds)]
        if not seeds:
            continue
        cells, per = [], {}
        for s in sets:
            vals = [
                np.mean([by[m][sd][f][s] for f in folds])
                for sd in seeds
                if all(s in by[m][sd][f] for f in folds)
            ]
            per[s] = vals
            cells.append(f"{np.mean(vals):.4f} ± {np.std(vals):.4f}" if vals else "–")
        ratio = [u / v for u, v in zip(per.get("test_unseen", []), per.get("test_seen", []))]
        lines.append(
            f"| {m} | {len(seeds)} | "
            + " | ".join(cells)
            + (f" | {np.mean(ratio):.2f}" if ratio else " | –")
            + " |"
        )
    return "\n".join(lines)


def summary_markdown(
    data: dict, sets=("test_seen", "test_seen_re", "test_unseen", "test_unseen_re", "test_unseen_routed")
) -> str:
    agg = aggregate(data)
    lines = [headline(data, d) for d in agg if any(f != "random" for f in agg[d])]
    for ds, folds in agg.items():
        models = _models(folds)
        for s in sets:
            if not any(s in folds[f].get(m, {}) for f in folds for m in models):
                continue
            lines.append(f"\n**{ds}, {s}** (MAE, mean ± std over seeds; n = seeds)\n")
            lines.append("| fold | " + " | ".join(models) + " |")
            lines.append("|---" * (len(models) + 1) + "|")
            for f, ms in folds.items():
                cells = []
                for m in models:
                    v = ms.get(m, {}).get(s)
                    cells.append("–" if v is None else f"{v['mean']:.4f} ± {v['std']:.4f} ({v['n']})")
                lines.append(f"| {f} | " + " | ".join(cells) + " |")
            if len(folds) > 1:
                cells = []
                for m in models:
                    vals = [ms[m][s]["mean"] for ms in folds.values() if s in ms.get(m, {})]
                    cells.append(f"{np.mean(vals):.4f} ({len(vals)} folds)" if vals else "–")
                lines.append("| **mean over folds** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_study(data: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg, files = aggregate(data), []
    for ds, folds in agg.items():
        models = _models(folds)
        sets = [
            s
            for s in ("test_seen", "test_unseen", "test_seen_re", "test_unseen_re")
            if any(s in ms.get(m, {}) for ms in folds.values() for m in models)
        ]
        fig, axes = plt.subplots(
            len(sets), 1, figsize=(max(8, 1.3 * len(folds) * len(models) / 4), 3.2 * len(sets)), squeeze=False
        )
        names = list(folds)
        xs = np.arange(len(names))
        w = 0.8 / len(models)
        for ax, s in zip(axes[:, 0], sets):
            for j, m in enumerate(models):
                vals = [folds[f].get(m, {}).get(s) for f in names]
                mean = [np.nan if v is None else v["mean"] for v in vals]
                lo = [0 if v is None else max(v["mean"] - v["min"], 0.0) for v in vals]
                hi = [0 if v is None else max(v["max"] - v["mean"], 0.0) for v in vals]
                ax.bar(xs + (j - (len(models) - 1) / 2) * w, mean, w, yerr=[lo, hi], capsize=1.5, label=m)
            ax.set_xticks(xs, names, fontsize=8)
            ax.set_ylabel("MAE")
            ax.set_title(f"{ds}: {s} (bars: mean over seeds, whiskers: min-max)", fontsize=9)
        axes[0, 0].legend(fontsize=7, ncol=len(models))
        fig.tight_layout()
        path = out / f"study_{ds}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    jumps = data.get("perov_jumps")
    if jumps:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for sp in sorted({r["symprec"] for r in jumps["rows"]}):
            rows = [r for r in jumps["rows"] if r["symprec"] == sp and r["amplitude"] > 0]
            a = [r["amplitude"] for r in rows]
            axes[0].plot(a, [r["group_changed"] for r in rows], "o-", label=f"symprec {sp}")
            axes[1].plot(
                a, [r["encoding_rel_change_median"] for r in rows], "o-", label=f"median, symprec {sp}"
            )
            axes[1].plot(
                a, [r["encoding_rel_change_p90"] for r in rows], "x--", label=f"90th pct, symprec {sp}"
            )
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("random displacement (rms, A)")
            ax.legend(fontsize=7)
        axes[0].set_ylabel("fraction with a different detected setting")
        axes[1].set_ylabel("relative change of the invariant encoding")
        axes[1].set_yscale("log")
        fig.suptitle("perov_5: symmetry detection and encoding under small distortions", fontsize=9)
        fig.tight_layout()
        path = out / "study_perov_jumps.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(str(path))
    return files


def fold_target_stats(cfg: dict, folds: list[dict]) -> str:
    """How far each fold's held-out targets are from the training targets (a table in study.md)."""
    c = cfg["carbon"]
    data_dir = Path(cfg["data_dir"])
    if not data_dir.is_absolute():
        data_dir = (HERE.parents[1] / data_dir).resolve()
    _, records, y, _, _ = load_dataset(
        data_dir, c["dataset"], c["target"], cfg["symprec"], cfg.get("cache"), cfg.get("jobs", 1)
    )
    numbers = np.array([r["number"] for r in records])
    lines = [
        f"\n**{c['dataset']}: targets of the held-out structures** ({c['target']})\n",
        "| fold | held-out groups | n | mean held-out | mean train | MAE of the train mean | MAE of the held-out median (best constant) |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in folds:
        s = fold_split(numbers, f["held_out"], cfg.get("split_seed", 0))
        yt, yu = y[s["train"]], y[s["test_unseen"]]
        lines.append(
            f"| {f['name']} | {', '.join(map(str, f['held_out']))} | {len(yu)} | {yu.mean():.3f} | {yt.mean():.3f} | "
            f"{np.abs(yu - yt.mean()).mean():.4f} | {np.abs(yu - np.median(yu)).mean():.4f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(HERE / "study.toml"))
    ap.add_argument(
        "--plots", action="store_true", help="only remake plots and summary from the existing JSON"
    )
    args = ap.parse_args(argv)
    cfg = tomllib.loads(Path(args.config).read_text())
    torch.set_num_threads(int(cfg.get("threads", os.cpu_count() or 1)))
    seed_everything(int(cfg.get("split_seed", 0)))
    out = Path(cfg["output"])
    if not out.is_absolute():
        out = HERE.parents[1] / out
    if args.plots:
        data = json.loads((out / "study.json").read_text())
    else:
        data = run_study(cfg, out).data
    files = plot_study(data, out)
    md = summary_markdown(data)
    if "carbon" in data:
        md += "\n" + fold_target_stats(cfg, data["carbon"]["folds"])
    # the title makes study.md a page of its own in the docs site (make docs)
    (out / "study.md").write_text("# Transfer study: all tables\n" + md + "\n")
    click.echo(f"wrote {out / 'study.json'}, {out / 'study.md'} and {len(files)} plots", err=True)


if __name__ == "__main__":
    main()
