"""Benchmark: from crystal structures to features (issue 3).  Prints throughput per stage.

1. Featurise every structure of ../shared/datasets/carbon_24 (2,032 CIFs): CIF parsing,
   input validation, symmetry detection (spglib), canonicalisation (symmetrisation +
   normaliser search, ours) and feature evaluation (numpy), timed separately.
2. Presentation invariance: random re-presentations (origin shift, cell change, supercell,
   permutation, rotation, unwrapped coordinates) of dataset crystals; pass fraction, split
   into "spglib detected another symmetry" and "canonicalisation failed".
3. Batched torch evaluation of N crystals (default 10,000, the carbon_24 results recycled)
   against a per-crystal Python loop over the same cached torch bases.

Not a test; numbers vary with the machine.  Usage:
    python bench/bench_structures.py [--symprec 1e-5 0.1] [--kmax 8] [--torch-kmax 4] [--crystals 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import crystal_sets as crystals  # noqa: E402  (bench/crystal_sets.py: datasets and presentations)

import basisdb  # noqa: E402
from basisdb import structures as S  # noqa: E402


def stage_featurise(cells, texts, symprec: float, kmax: int, db) -> tuple[dict, list]:
    stages = dict(parse=0.0, validate=0.0, detect=0.0, lookup=0.0, canonicalise=0.0, evaluate=0.0)
    results = []
    for text in texts:
        t0 = time.perf_counter()
        L, x, z = basisdb.read_cif(text)
        t1 = time.perf_counter()
        S._validate(L, x, z, 0.1)
        t2 = time.perf_counter()
        ds = S._detect(L, x, z, symprec)
        t3 = time.perf_counter()
        b = db.get(hall=int(ds.hall_number), kmax=kmax)
        t4 = time.perf_counter()
        can = S._canonicalize(b, ds, L, x, z, symprec)
        t5 = time.perf_counter()
        f = b.evaluate(can["positions"])
        t6 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
            stages[k] += v
        results.append((b.setting.hall_number, can["positions"], f.shape[1]))
    return stages, results


def stage_invariance(dataset: str, symprec: float, n: int, reps: int, seed: int = 0) -> dict:
    rows = crystals.dataset_rows(dataset)
    rng = np.random.default_rng(seed)
    out = dict(total=0, passed=0, detection=0, canonical=0, worst=0.0)
    for i in rng.choice(len(rows), size=min(n, len(rows)), replace=False):
        cell = basisdb.read_cif(rows[i]["cif"])
        ref = basisdb.featurize(cell, symprec=symprec)
        fp = _fingerprint(ref)
        for _ in range(reps):
            L, x, z, index = crystals.represent(cell, rng)
            out["total"] += 1
            try:
                r = basisdb.featurize((L, x, z), symprec=symprec)
            except ValueError:
                out["detection"] += 1
                continue
            same = (
                r.hall_number == ref.hall_number
                and len(r.cell_numbers) == len(ref.cell_numbers)
                and np.abs(_fingerprint(r) - fp).max() < 1e-6
            )
            err = (
                float(np.abs(r.features - ref.features[index]).max())
                if r.features.shape[1] == ref.features.shape[1]
                else np.inf
            )
            if err <= 1e-9:
                out["passed"] += 1
                out["worst"] = max(out["worst"], err)
            elif not same:
                out["detection"] += 1
            else:
                out["canonical"] += 1
    return out


def _fingerprint(r) -> np.ndarray:
    x = r.cell_positions
    d = x[:, None, :] - x[None, :, :]
    d -= np.rint(d)
    shifts = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T
    return np.sort(np.linalg.norm((d[:, :, None, :] + shifts) @ r.lattice, axis=-1).min(axis=-1).ravel())


def stage_torch(results, n_crystals: int, kmax: int, db) -> dict:
    import torch

    import basisdb.torch as bt

    picks = [results[i % len(results)] for i in range(n_crystals)]
    x = np.concatenate([p[1] for p in picks])
    hall = np.concatenate([np.full(len(p[1]), p[0]) for p in picks])
    batched = bt.BatchedBasis(db, kmax=kmax, dtype=torch.float32)
    xt = torch.as_tensor(x, dtype=torch.float32)
    batched.features(xt[:2000], hall[:2000])  # build every table once (not timed)
    for h in np.unique(hall):
        batched.basis(h)._kernel("real")

    def best(fn, repeats=3):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            value = fn()
            times.append(time.perf_counter() - t0)
        return min(times), value

    t_batch, (feats, _mask) = best(lambda: batched.features(xt, hall))
    t_enc, enc = best(lambda: batched.encode(xt, hall))
    bases = [batched.basis(p[0]) for p in picks]
    sizes = [len(p[1]) for p in picks]

    def loop():  # per-crystal Python loop over the same cached bases
        out, lo = [], 0
        for tb, n in zip(bases, sizes):
            out.append(tb.evaluate(xt[lo : lo + n]))
            lo += n
        return out

    t_loop, loop_out = best(loop)
    check = max(
        float(
            (
                loop_out[i]
                - feats[sum(len(q[1]) for q in picks[:i]) :][: len(picks[i][1]), : loop_out[i].shape[1]]
            )
            .abs()
            .max()
        )
        for i in range(0, min(50, len(picks)))
    )
    return dict(
        crystals=n_crystals,
        atoms=len(x),
        groups=len(np.unique(hall)),
        kmax=kmax,
        width=feats.shape[1],
        batched_s=t_batch,
        encode_s=t_enc,
        loop_s=t_loop,
        speedup=t_loop / t_batch,
        max_diff=check,
        enc_shape=tuple(enc.shape),
        threads=torch.get_num_threads(),
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symprec", type=float, nargs="+", default=[1e-5, 0.1])
    ap.add_argument(
        "--kmax", type=int, default=None, help="cut-off for the numpy features (default: the artifact's)"
    )
    ap.add_argument("--torch-kmax", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--crystals", type=int, default=10_000)
    ap.add_argument(
        "--invariance", type=int, default=200, help="structures per dataset for the invariance stage"
    )
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: reproducible on a shared machine)"
    )
    args = ap.parse_args(argv)
    db = basisdb.open()
    rows = crystals.dataset_rows("carbon_24")
    texts = [r["cif"] for r in rows]
    print(
        f"carbon_24: {len(texts)} structures, {sum(len(basisdb.read_cif(t)[2]) for t in texts[:200]) / 200:.1f} atoms on average (first 200)"
    )
    results_for_torch = None
    for symprec in args.symprec:
        stage_featurise(None, texts[:100], symprec, args.kmax, db)  # warm caches (group tables, plans)
        stages, results = stage_featurise(None, texts, symprec, args.kmax, db)
        total = sum(stages.values())
        halls = {r[0] for r in results}
        print(
            f"\n== featurise all {len(texts)} carbon_24 structures, symprec={symprec} ({len(halls)} settings found) =="
        )
        print(f"{'stage':14s} {'total s':>8s} {'ms/struct':>10s} {'struct/s':>10s} {'share':>6s}")
        for k, v in stages.items():
            print(
                f"{k:14s} {v:8.2f} {v / len(texts) * 1e3:10.3f} {len(texts) / v if v else float('inf'):10.0f} {v / total:6.1%}"
            )
        print(f"{'all':14s} {total:8.2f} {total / len(texts) * 1e3:10.3f} {len(texts) / total:10.0f}")
        ours = stages["validate"] + stages["canonicalise"] + stages["lookup"]
        print(
            f"detection (spglib) / our per-structure overhead (validate+lookup+canonicalise) = {stages['detect'] / ours:.2f}"
        )
        if results_for_torch is None or len(halls) > len({r[0] for r in results_for_torch}):
            results_for_torch = results

    if args.invariance > 0:
        report_invariance(args)

    for kmax in args.torch_kmax:
        print(
            f"\n== batched torch evaluation, {args.crystals} crystals (carbon_24 recycled), float32, CPU, kmax={kmax} =="
        )
        try:
            import torch
        except ImportError:
            print("torch is not installed")
            return
        torch.set_num_threads(args.threads)
        t = stage_torch(results_for_torch, args.crystals, kmax, db)
        print(
            f"{t['crystals']} crystals, {t['atoms']} atoms, {t['groups']} settings, width {t['width']}, {t['threads']} threads (best of 3)"
        )
        print(
            f"batched features:   {t['batched_s']:.3f} s  ({t['crystals'] / t['batched_s']:,.0f} crystals/s, {t['atoms'] / t['batched_s']:,.0f} atoms/s)"
        )
        print(f"batched encoding:   {t['encode_s']:.3f} s  (shared box space {t['enc_shape']})")
        print(f"per-crystal loop:   {t['loop_s']:.3f} s  ({t['crystals'] / t['loop_s']:,.0f} crystals/s)")
        print(f"speed-up batched / loop: {t['speedup']:.1f}x   (max |difference| {t['max_diff']:.1e})")


def report_invariance(args) -> None:
    print("\n== presentation invariance (random origin, cell, supercell, permutation, rotation, unwrap) ==")
    for dataset, symprec in [
        ("carbon_24", 1e-5),
        ("perov_5", 1e-5),
        ("carbon_24", 0.01),
        ("carbon_24", 0.1),
        ("perov_5", 0.1),
    ]:
        o = stage_invariance(dataset, symprec, args.invariance, args.reps)
        print(
            f"{dataset:10s} symprec={symprec:<7g} {o['passed']}/{o['total']} identical ({o['passed'] / o['total']:.1%}); "
            f"spglib detected another symmetry: {o['detection']}; canonicalisation failures: {o['canonical']}; "
            f"worst passing difference {o['worst']:.1e}"
        )
    lit = crystals.real_crystals()
    rng = np.random.default_rng(1)
    ok = tot = 0
    for _name, cell in lit.items():
        ref = basisdb.featurize(cell)
        for kinds in [
            ("shift", "cell", "supercell", "permute", "rotate", "unwrap"),
            ("shift", "lefthanded", "permute"),
        ] * 10:
            L, x, z, index = crystals.represent(cell, rng, kinds)
            tot += 1
            ok += float(np.abs(basisdb.featurize((L, x, z)).features - ref.features[index]).max()) <= 1e-9
    print(f"literature  {len(lit)} crystals: {ok}/{tot} identical ({ok / tot:.1%})")


if __name__ == "__main__":
    main()
