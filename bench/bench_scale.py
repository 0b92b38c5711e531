"""Scaling benchmark: builder and reader at several cut-offs K for all 530 settings.

For each K it runs ``basisdb build`` in a subprocess (all 530 settings) and records
wall time, CPU time of the whole process tree, peak resident memory of the tree
(sampled from /proc every 20 ms) against the builder's own up-front estimate, and
the file size; then the reader: open + first lookup, a cold read of every setting
(decompression + SHA-256 + validation), and a warm (cached) lookup.  Costs are
divided by the number of box frequencies n_box = (2K+1)^3 so that a cost growing
faster than the frequency count shows up as a rising ratio.

    python bench/bench_scale.py                       # K = 4 8 12 16 24, jobs 2 (K=24 takes ~10 min on 2 cores)
    python bench/bench_scale.py --kmax 4 8 --json out.json
    python bench/bench_scale.py --from-json docs/scaling.json --plot docs/scaling.png --markdown

Not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import measure_build  # noqa: E402

DEFAULT_K = (4, 8, 12, 16, 24)


def bench_build(kmax: int, jobs: int, out: Path) -> dict:
    """Build all 530 settings at ``kmax`` into ``out`` in a subprocess; time, CPU, peak RSS, size."""
    from basisdb.builder import estimate_peak_memory

    r = measure_build(kmax, jobs, out)
    return {
        "build_s": r["seconds"],
        "build_cpu_s": r["cpu_seconds"],
        "peak_rss_mb": r["peak_rss_mb"],
        "estimate_mb": estimate_peak_memory(kmax, jobs) / 2**20,
        "file_mb": r["bytes"] / 2**20,
    }


def bench_read(path: Path, repeats: int = 15) -> dict:
    """Reader figures of one artifact (run in this process).

    Timed with ``time.process_time`` (CPU time of this single-threaded process): on an
    idle machine it equals the wall time, and other processes on a busy one do not
    inflate it.  The wall time of the cold read is recorded too.
    """
    import basisdb

    clock = time.process_time
    basisdb.open(path).get(225)  # warm the OS page cache and imports
    first = []
    for _ in range(repeats):
        t0 = clock()
        db = basisdb.open(path)
        db.get(225)
        first.append(clock() - t0)
        db.close()
    db = basisdb.open(path)
    t0, w0 = clock(), time.perf_counter()
    for s in db.settings():
        db.get(hall=s.hall_number)
    read_all, read_all_wall = clock() - t0, time.perf_counter() - w0
    n = 20000
    halls = [s.hall_number for s in db.settings()]
    t0 = clock()
    for i in range(n):
        db.get(hall=halls[i % len(halls)])
    warm = (clock() - t0) / n
    t0 = clock()
    for _ in range(n):
        db.get(225)
    warm_number = (clock() - t0) / n
    db.close()
    return {
        "open_first_ms": 1e3 * float(np.median(first)),
        "read_all_s": read_all,
        "read_all_wall_s": read_all_wall,
        "warm_lookup_us": 1e6 * warm,
        "warm_lookup_number_us": 1e6 * warm_number,
    }


def run(kmaxes, jobs: int, tmpdir: str | None, keep: str | None = None) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(dir=tmpdir) as tmp:
        for k in kmaxes:
            out = Path(keep or tmp) / f"scale_k{k}.h5"
            row = {"kmax": k, "n_box": (2 * k + 1) ** 3, "jobs": jobs, "settings": 530}
            row.update(bench_build(k, jobs, out))
            row.update(bench_read(out))
            if not keep:
                out.unlink()
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def reread(rows: list[dict], keep: str) -> list[dict]:
    """Measure the reader again on the artifacts kept by an earlier ``--keep`` run."""
    for row in rows:
        row.update(bench_read(Path(keep) / f"scale_k{row['kmax']}.h5"))
        print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    return (
        f"K={r['kmax']:>2} n_box={r['n_box']:>6}: build {r['build_s']:.1f} s wall / {r['build_cpu_s']:.1f} s CPU, "
        f"peak {r['peak_rss_mb']:.0f} MiB (estimate {r['estimate_mb']:.0f} MiB), file {r['file_mb']:.1f} MiB, "
        f"open+get {r['open_first_ms']:.2f} ms, read all {r['read_all_s']:.2f} s, warm get {r['warm_lookup_us']:.2f} us"
    )


def markdown(rows: list[dict]) -> str:
    """The table of docs/BENCHMARKS.md: absolute figures and cost per box frequency."""
    ref = next((r for r in rows if r["kmax"] == 8), rows[0])

    def per(r, key):  # cost per box frequency relative to the reference K
        return (r[key] / r["n_box"]) / (ref[key] / ref["n_box"])

    head = (
        "| K | n_box = (2K+1)^3 | build wall (s) | build CPU (s) | CPU per setting per frequency (µs) | peak RSS (MiB) "
        "| estimate (MiB) | file (MiB) | bytes per setting per frequency | open + first get (ms) | cold read of all 530 (s) "
        f"| warm get (µs) | CPU / n_box, rel. K={ref['kmax']} | file / n_box, rel. | read / n_box, rel. |\n"
    )
    head += "|" + "---|" * 15 + "\n"
    body = ""
    for r in rows:
        body += (
            f"| {r['kmax']} | {r['n_box']:,} | {r['build_s']:.1f} | {r['build_cpu_s']:.1f} "
            f"| {1e6 * r['build_cpu_s'] / (530 * r['n_box']):.1f} | {r['peak_rss_mb']:.0f} | {r['estimate_mb']:.0f} "
            f"| {r['file_mb']:.1f} | {r['file_mb'] * 2**20 / (530 * r['n_box']):.2f} | {r['open_first_ms']:.2f} "
            f"| {r['read_all_s']:.2f} | {r['warm_lookup_us']:.2f} | {per(r, 'build_cpu_s'):.2f} | {per(r, 'file_mb'):.2f} "
            f"| {per(r, 'read_all_s'):.2f} |\n"
        )
    return head + body


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = np.array([r["kmax"] for r in rows], dtype=float)
    series = [
        ("build CPU time (s)", "build_cpu_s"),
        ("build wall time (s)", "build_s"),
        ("peak RSS of the build (MiB)", "peak_rss_mb"),
        ("file size (MiB)", "file_mb"),
        ("cold read of all 530 settings (s)", "read_all_s"),
        ("warm lookup (µs)", "warm_lookup_us"),
    ]
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    kk = np.linspace(k.min(), k.max(), 50)
    ref_idx = int(np.argmin(np.abs(k - 8)))
    for (label, key), marker in zip(series, "osD^vx"):
        y = np.array([r[key] for r in rows])
        ax.plot(k, y, marker=marker, label=label)
    y0 = rows[ref_idx]["build_cpu_s"]
    ax.plot(
        kk,
        y0 * ((2 * kk + 1) / (2 * k[ref_idx] + 1)) ** 3,
        "k--",
        lw=1,
        label="∝ (2K+1)³ (through build CPU at K=8)",
    )
    if "estimate_mb" in rows[0]:
        ax.plot(
            k, [r["estimate_mb"] for r in rows], ":", color="gray", label="builder's memory estimate (MiB)"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(k)
    ax.set_xticklabels([str(int(v)) for v in k])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("cut-off K  (box frequencies n_box = (2K+1)³)")
    ax.set_title(f"basisdb: all 530 settings, jobs={rows[0]['jobs']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmax", type=int, nargs="+", default=list(DEFAULT_K))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tmpdir", default=None, help="where the temporary artifacts go (default: system temp)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    ap.add_argument("--from-json", default=None, help="do not measure; read the figures from this JSON file")
    ap.add_argument("--keep", default=None, help="keep the artifacts in this folder (scale_k<K>.h5)")
    ap.add_argument(
        "--reread",
        action="store_true",
        help="with --from-json and --keep: measure the reader again, update the JSON",
    )
    ap.add_argument("--plot", default=None, help="write the log-log plot to this PNG (needs matplotlib)")
    ap.add_argument("--markdown", action="store_true", help="print the markdown table")
    args = ap.parse_args(argv)

    if args.from_json:
        doc = json.loads(Path(args.from_json).read_text())
        rows = doc["rows"]
        if args.reread:
            rows = reread(rows, args.keep)
            Path(args.from_json).write_text(json.dumps(doc, indent=1) + "\n")
    else:
        print(
            f"# basisdb scaling benchmark (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, jobs={args.jobs})"
        )
        rows = run(args.kmax, args.jobs, args.tmpdir, args.keep)
        if args.json:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            meta = {
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
                "numpy": np.__version__,
                "load_after": load,
            }
            Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.markdown or args.from_json:
        print(markdown(rows))
    if args.plot:
        plot(rows, Path(args.plot))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
