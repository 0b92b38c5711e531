"""Throughput of dataset featurization against spglib's detection alone (carbon_24).

    python bench/bench_dataset.py [--n 600] [--kmax 4] [--symprec ...] [--workers 1,2] [--partition-size 64]
        [--profile] [--json PATH]

Prints, per structure on the first N rows of ../shared/datasets/carbon_24/carbon_24.csv:
  read      CIF text -> arrays (gemmi, basisdb.structures.as_cell)
  spglib    spglib.get_symmetry_dataset alone on those arrays
  featurize basisdb.featurize on the arrays (detection included), with and without features
  dataset   basisdb.featurize_dataset on the CSV (reading, featurize, Parquet writing): synchronous,
            and on a LocalCluster of each --workers size (cluster start-up excluded and reported)
and, with --profile, where featurize's time beyond spglib goes (cProfile, by function).  Wall time, best
of the repeats.  --json writes the figures (milliseconds per structure, structures per second).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import pstats
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CARBON = REPO.parent / "shared" / "datasets" / "carbon_24" / "carbon_24.csv"

import basisdb  # noqa: E402
from basisdb.dataset import _featurize_default, featurize_dataset  # noqa: E402
from basisdb.structures import as_cell, featurize  # noqa: E402

csv.field_size_limit(sys.maxsize)


def timed(fn, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--kmax", type=int, default=4)
    ap.add_argument("--symprec", type=float, default=None, help="default: featurize's default")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--partition-size", type=int, default=64, help="partition size of the LocalCluster runs")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument(
        "--profile", action="store_true", help="cProfile of featurize: where the time beyond spglib goes"
    )
    args = ap.parse_args(argv)
    if not CARBON.is_file():
        sys.exit(f"{CARBON}: not found (../shared/datasets is needed)")
    import spglib

    symprec = _featurize_default("symprec") if args.symprec is None else args.symprec
    angle = _featurize_default("angle_tolerance")
    spg_angle = -1.0 if angle is None else float(angle)
    with open(CARBON, newline="") as fh:
        rows = [r for _, r in zip(range(args.n), csv.DictReader(fh))]
    n = len(rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    small = tmp / "carbon.csv"
    with open(small, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    warnings.simplefilter("ignore")
    db = basisdb.open()
    featurize(rows[0]["cif"], kmax=args.kmax, db=db)  # warm the database and caches

    cells = []
    t_read = timed(lambda: cells.extend(as_cell(r["cif"]) for r in rows))
    t_spg = timed(
        lambda: [spglib.get_symmetry_dataset(c, symprec=symprec, angle_tolerance=spg_angle) for c in cells],
        repeat=2,
    )
    t_spg5 = timed(lambda: [spglib.get_symmetry_dataset(c, symprec=1e-5) for c in cells], repeat=2)
    t_feat = timed(lambda: [featurize(c, kmax=args.kmax, symprec=symprec, db=db) for c in cells], repeat=2)
    t_feat1 = timed(lambda: [featurize(c, kmax=1, symprec=symprec, db=db) for c in cells], repeat=2)
    t_cif = timed(lambda: [featurize(r["cif"], kmax=args.kmax, symprec=symprec, db=db) for r in rows])

    def ds_run(**kw):
        out = tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        res = featurize_dataset(small, out, kmax=args.kmax, symprec=symprec, progress=False, **kw)
        return time.perf_counter() - t, res

    t_sync, res = ds_run(scheduler="sync")
    bytes_feat = sum(f.stat().st_size for f in (tmp / "out").rglob("*.parquet"))
    t_sync_nf, _ = ds_run(scheduler="sync", features=False)
    bytes_nf = sum(f.stat().st_size for f in (tmp / "out").rglob("*.parquet"))
    ms = lambda t: 1e3 * t / n  # noqa: E731
    print(
        f"carbon_24, first {n} structures, symprec={symprec:g} A, angle_tolerance={angle}, K={args.kmax}; per structure:"
    )
    print(f"  read CIF (gemmi -> arrays)             {ms(t_read):7.3f} ms")
    print(
        f"  spglib detection alone                 {ms(t_spg):7.3f} ms   (at symprec 1e-5: {ms(t_spg5):.3f} ms)"
    )
    print(
        f"  featurize(arrays), K={args.kmax}               {ms(t_feat):7.3f} ms   our own work beyond spglib: {ms(t_feat - t_spg):.3f} ms "
        f"= {(t_feat - t_spg) / t_spg:.1f}x spglib"
    )
    print(f"  featurize(arrays), K=1 (no features)   {ms(t_feat1):7.3f} ms")
    print(f"  featurize(CIF text)                    {ms(t_cif):7.3f} ms")
    print(
        f"  dataset, sync, features                {ms(t_sync):7.3f} ms   ({n / t_sync:,.0f} structures/s; beyond featurize(CIF): "
        f"{ms(t_sync - t_cif):.3f} ms: CSV, warnings capture, Parquet)"
    )
    print(
        f"  dataset, sync, --no-features           {ms(t_sync_nf):7.3f} ms   ({n / t_sync_nf:,.0f} structures/s)"
    )
    print(
        f"  output: {bytes_feat / n / 1024:.2f} KiB per structure with features, {bytes_nf / n / 1024:.2f} KiB without "
        f"({res.summary['failures']} failures)"
    )
    fig = {
        "n": n,
        "kmax": args.kmax,
        "symprec": symprec,
        "angle_tolerance": angle,
        "read_ms": ms(t_read),
        "spglib_ms": ms(t_spg),
        "spglib_1e-5_ms": ms(t_spg5),
        "featurize_arrays_ms": ms(t_feat),
        "featurize_arrays_k1_ms": ms(t_feat1),
        "featurize_cif_ms": ms(t_cif),
        "sync_per_s": n / t_sync,
        "sync_no_features_per_s": n / t_sync_nf,
        "kib_per_structure": bytes_feat / n / 1024,
        "kib_per_structure_no_features": bytes_nf / n / 1024,
        "failures": res.summary["failures"],
        "cluster": [],
    }
    for w in [int(x) for x in args.workers.split(",") if x.strip()]:
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        with (
            LocalCluster(
                n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            ) as cl,
            Client(cl) as client,
        ):
            client.run(lambda: __import__("basisdb.dataset") and None)
            t_start = time.perf_counter() - t0
            t_w, _ = ds_run(scheduler=client, partition_size=args.partition_size)
            t_w2, _ = ds_run(scheduler=client, partition_size=args.partition_size)  # workers warm
        print(
            f"  dataset, LocalCluster {w} worker(s)      {ms(min(t_w, t_w2)):7.3f} ms   ({n / min(t_w, t_w2):,.0f} structures/s, "
            f"{n / min(t_w, t_w2) / w:,.0f} per worker; first run {t_w:.2f} s, cluster start {t_start:.1f} s)"
        )
        fig["cluster"].append(
            {
                "workers": w,
                "per_s": n / min(t_w, t_w2),
                "per_worker_per_s": n / min(t_w, t_w2) / w,
                "first_run_s": t_w,
                "cluster_start_s": t_start,
            }
        )
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(fig, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for c in cells:
            featurize(c, kmax=args.kmax, symprec=symprec, db=db)
        prof.disable()
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s)
        print("\nwhere featurize's time goes (cumulative, per structure):")
        wanted = [
            "featurize",
            "_read_structure",
            "_validate",
            "_closest_pair",
            "_detect",
            "_spglib_dataset",
            "_check_low_symmetry",
            "_declared_fields",
            "get",
            "_canonicalize",
            "group_data",
            "symmetrize",
            "canonical_choice",
            "evaluate",
            "get_symmetry_dataset",
        ]
        seen = set()
        for (file, _line, name), (_cc, ncalls, _tt, ct, _callers) in sorted(
            st.stats.items(), key=lambda kv: -kv[1][3]
        ):
            short = Path(file).name
            if name in wanted and (short, name) not in seen and ("basisdb" in file or "spglib" in file):
                seen.add((short, name))
                print(f"  {short + ':' + name:<42} {ms(ct):7.3f} ms  ({ncalls / n:.1f} calls)")
        st.sort_stats("tottime").print_stats(12)
        print("top functions by own time:")
        print("\n".join(s.getvalue().splitlines()[-22:]))


if __name__ == "__main__":
    main()
