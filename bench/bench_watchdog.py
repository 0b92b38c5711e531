"""What the dataset watchdog costs (docs/DATASETS.md, section 2): featurize_many with and without it.

    python bench/bench_watchdog.py [--n 800] [--repeats 2] [--detector moyopy]

On the first N carbon_24 structures (../shared/datasets), K = 4, in this process (scheduler 'sync'),
partitions of 256: wall milliseconds per structure of ``featurize_many(..., detector_timeout=0)``
(no watchdog) and with the watchdog (the detector's default limit: 30 s with moyopy; 30 s given with
spglib), alternating, after one warm pass of each (the watchdog's child keeps its caches warm from
then on).  With moyopy, the structures it never returns on are found first (with the watchdog, 10 s
each) and left out, so both runs featurize the same structures.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--detector", choices=("spglib", "moyopy"), default="moyopy")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    import basisdb
    from basisdb import structures as S

    warnings.simplefilter("ignore")
    csv.field_size_limit(sys.maxsize)
    with open(REPO.parent / "shared" / "datasets" / "carbon_24" / "carbon_24.csv", newline="") as fh:
        cells = [S.as_cell(r["cif"]) for _, r in zip(range(args.n), csv.DictReader(fh))]
    db = basisdb.open()
    kw = dict(kmax=4, db=db, progress=False, detector=args.detector, partition_size=256)
    if args.detector == "moyopy":
        probe = basisdb.featurize_many(cells, **{**kw, "kmax": 1}, detector_timeout=10)
        hung = {f["index"] for f in probe.failures.to_pylist() if f["error_type"] == "TimeoutError"}
        cells = [c for i, c in enumerate(cells) if i not in hung]
        print(f"left out {len(hung)} structure(s) on which moyopy does not return", file=sys.stderr)
    guarded = None if args.detector == "moyopy" else 30.0  # moyopy's default limit; the same for spglib

    def run(limit):
        t0 = time.perf_counter()
        basisdb.featurize_many(cells, **kw, detector_timeout=limit)
        return 1e3 * (time.perf_counter() - t0) / len(cells)

    run(0)
    run(guarded)  # warm: the settings in this process, then the watchdog's child
    plain, watched = [], []
    for _ in range(args.repeats):
        plain.append(run(0))
        watched.append(run(guarded))
    out = {
        "detector": args.detector,
        "structures": len(cells),
        "without_ms": round(statistics.median(plain), 3),
        "with_ms": round(statistics.median(watched), 3),
    }
    out["ratio"] = round(out["with_ms"] / out["without_ms"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
