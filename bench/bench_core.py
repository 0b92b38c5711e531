"""Benchmark harness for the core database (``make bench``).  Prints figures and ratios.

Measures: full build of all 530 settings (wall time, peak memory of the whole
process tree), open + first lookup, warm lookup, and ``Basis.evaluate`` against
the naive ``exp(2j*pi*x @ F.T) @ B``.  Not a test: numbers vary with the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def measure_build(kmax: int, jobs: int, out: Path) -> dict:
    """Run ``basisdb build`` (all 530 settings) into ``out`` in a subprocess.

    Returns wall and CPU seconds of the whole process tree, its peak resident memory
    (sampled from /proc every 20 ms) and the file size.
    """
    import resource

    cmd = [
        sys.executable,
        "-m",
        "basisdb",
        "build",
        "--kmax",
        str(kmax),
        "--jobs",
        str(jobs),
        "-q",
        "-o",
        str(out),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes the reaped pool workers
    if proc.returncode != 0:
        raise SystemExit(f"build at K={kmax} failed with exit code {proc.returncode}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "kmax": kmax,
        "jobs": jobs,
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak / 2**20,
        "bytes": out.stat().st_size,
    }


def bench_build(kmax: int, jobs: int) -> dict:
    """Time and peak memory of a full build into a temporary file."""
    with tempfile.TemporaryDirectory() as tmp:
        return measure_build(kmax, jobs, Path(tmp) / "bench.h5")


def bench_lookup(path: str | None, repeats: int = 30) -> dict:
    import basisdb

    basisdb.open(path).get(225)  # warm the OS file cache and imports
    cold_number, cold_symbol = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        db = basisdb.open(path)
        db.get(225)
        cold_number.append(time.perf_counter() - t0)
        db.close()
        t0 = time.perf_counter()
        db = basisdb.open(path)
        db.get("Fd-3m:2")
        cold_symbol.append(time.perf_counter() - t0)
        db.close()
    db = basisdb.open(path)
    db.get(225)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        db.get(225)
    warm = (time.perf_counter() - t0) / n
    return {
        "open_first_lookup_number_ms": 1e3 * float(np.median(cold_number)),
        "open_first_lookup_symbol_ms": 1e3 * float(np.median(cold_symbol)),
        "warm_lookup_us": 1e6 * warm,
    }


def _naive(x: np.ndarray, freqs: np.ndarray, basis_rows, chunk: int = 10000) -> np.ndarray:
    out = np.empty((len(x), basis_rows.shape[1]))
    f = freqs.astype(float).T
    for lo in range(0, len(x), chunk):
        out[lo : lo + chunk] = (np.exp(2j * np.pi * (x[lo : lo + chunk] @ f)) @ basis_rows).real
    return out


def bench_evaluate(path: str | None, n_points: int, groups: list[str]) -> list[dict]:
    import basisdb

    db = basisdb.open(path)
    x = np.random.default_rng(0).random((n_points, 3))
    rows = []
    for g in groups:
        b = db.get(g)
        b.evaluate(x[:16])
        t0 = time.perf_counter()
        ours = b.evaluate(x)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        b.evaluate(x, out=ours)  # reused output buffer: no page faults
        t_ours_warm = time.perf_counter() - t0
        rb = b.real_basis()
        box = basisdb.box_frequencies(b.kmax)
        t0 = time.perf_counter()
        naive = _naive(x, box, rb)  # literally exp(2j pi x @ F.T) @ B over the whole box
        t_box = time.perf_counter() - t0
        err = float(np.abs(naive - ours).max())
        del naive
        t0 = time.perf_counter()
        naive = _naive(x, b.frequencies, rb[b.box_indices])  # only the basis's own frequencies
        t_rows = time.perf_counter() - t0
        err = max(err, float(np.abs(naive - ours).max()))
        del naive
        rows.append(
            {
                "group": g,
                "n_basis": b.n_basis,
                "ours_s": t_ours,
                "ours_reused_out_s": t_ours_warm,
                "naive_box_s": t_box,
                "naive_rows_s": t_rows,
                "max_abs_diff": float(err),
            }
        )
        del ours
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmax", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument(
        "--path", default=None, help="artifact for the lookup/evaluate figures (default: shipped)"
    )
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--groups", default="Fm-3m,P1")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    figures: dict = {"kmax": args.kmax, "jobs": args.jobs, "points": args.points}

    print(
        f"# basisdb core benchmark  (python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs)"
    )
    if not args.skip_build:
        r = figures["build"] = bench_build(args.kmax, args.jobs)
        print(
            f"build   all 530 settings K={r['kmax']} jobs={r['jobs']}: {r['seconds']:.1f} s "
            f"(target <= 30 s, ratio {r['seconds'] / 30:.2f}), peak RSS {r['peak_rss_mb']:.0f} MB "
            f"(target <= 1024 MB), file {r['bytes'] / 1e6:.2f} MB"
        )
    r = figures["lookup"] = bench_lookup(args.path)
    print(
        f"lookup  open + first get(225): {r['open_first_lookup_number_ms']:.2f} ms (target <= 5 ms); "
        f"open + first get('Fd-3m:2'): {r['open_first_lookup_symbol_ms']:.2f} ms; warm get: {r['warm_lookup_us']:.1f} us"
    )
    figures["evaluate"] = bench_evaluate(args.path, args.points, args.groups.split(","))
    for r in figures["evaluate"]:
        print(
            f"evaluate {args.points:,} points {r['group']:<6} (n_basis {r['n_basis']:>4}): ours {r['ours_s']:.2f} s "
            f"({r['ours_reused_out_s']:.2f} s into a reused buffer); naive over box {r['naive_box_s']:.2f} s "
            f"= {r['naive_box_s'] / r['ours_s']:.1f}x; naive over basis rows {r['naive_rows_s']:.2f} s "
            f"= {r['naive_rows_s'] / r['ours_s']:.1f}x (target >= 10x); max |diff| {r['max_abs_diff']:.1e}"
        )
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
