"""``make bench``: every benchmark of the core and of featurize, side by side in one run, with a final table.

    python bench/bench_all.py [--kmax 8] [--jobs 2] [--points 20000] [--skip-build]
        [--n-detect 200] [--n-stages 600] [--n-dataset 1000] [--workers 1,2] [--repeats 3] [--json PATH]

Sections (each a subprocess, its own output printed as it comes):
  core        bench/bench_core.py: build of all 530 settings, lookup, evaluate against the naive sum
  detectors   bench/bench_detectors.py: spglib-only and moyopy-only detection, featurize with each backend
              and our own work beyond the detection, on carbon_24 and perov_5 (symprec 0.1 and 1e-5)
  stages      bench/bench_featurize_stages.py: featurize stage by stage, with spglib and (when installed)
              with moyopy as the detector
  dataset     bench/bench_dataset.py: the dataset command (featurize_dataset) on carbon_24 CSV rows, in this
              process and on LocalClusters of each --workers size: structures per second per worker
A section that needs ../shared/datasets, moyopy or Dask/pyarrow is skipped with a one-line note when they
are missing.  At the end: one table of the figures and ratios measured in this run.  Defaults keep the
whole run to a few minutes on 2 cores; raise --points (the core benchmark's own default is 100,000),
--n-detect, --n-stages, --n-dataset for steadier figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
DATA = REPO.parent / "shared" / "datasets"


def _have(*modules: str) -> list[str]:
    """The modules of ``modules`` that cannot be imported."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def run_section(title: str, cmd: list[str], capture: bool = False) -> tuple[int, str, float]:
    """Run one benchmark script; its output goes to the terminal (and is returned when ``capture``)."""
    print(f"\n== {title}: {' '.join(Path(c).name if c.endswith('.py') else c for c in cmd[1:])}", flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    if capture:
        p = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        print(p.stdout, end="", flush=True)
        out = p.stdout
    else:
        p = subprocess.run(cmd, cwd=REPO, env=env)
        out = ""
    dt = time.perf_counter() - t0
    print(f"   ({dt:.0f} s{'' if p.returncode == 0 else f', exit code {p.returncode}'})", flush=True)
    return p.returncode, out, dt


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def table(fig: dict) -> list[tuple[str, str, str]]:
    """(figure, value, ratio or target) rows from the sections' figures."""
    rows: list[tuple[str, str, str]] = []
    core = fig.get("core")
    if core:
        b = core.get("build")
        if b:
            rows.append(
                (
                    f"build, 530 settings + plane + magnetic, K={b['kmax']}, jobs {b['jobs']}",
                    f"{b['seconds']:.1f} s",
                    f"{b['seconds'] / 30:.2f} of the 30 s target",
                )
            )
            rows.append(("build peak RSS (process tree)", f"{b['peak_rss_mb']:.0f} MB", "target <= 1024 MB"))
            rows.append(("artifact size", f"{b['bytes'] / 1e6:.2f} MB", ""))
        lk = core["lookup"]
        rows.append(
            (
                "open() + first get(225)",
                f"{lk['open_first_lookup_number_ms']:.2f} ms",
                f"{lk['open_first_lookup_number_ms'] / 5:.2f} of the 5 ms target",
            )
        )
        rows.append(("open() + first get('Fd-3m:2')", f"{lk['open_first_lookup_symbol_ms']:.2f} ms", ""))
        rows.append(("warm get(225)", f"{lk['warm_lookup_us']:.1f} us", ""))
        for e in core["evaluate"]:
            rows.append(
                (
                    f"evaluate {core['points']:,} points, {e['group']} ({e['n_basis']} functions)",
                    f"{e['ours_s']:.2f} s ({e['ours_reused_out_s']:.2f} s into out=)",
                    f"naive {e['naive_box_s'] / e['ours_s']:.1f}x (box), "
                    f"{e['naive_rows_s'] / e['ours_s']:.1f}x (rows) slower; target >= 10x",
                )
            )
    for d in fig.get("detectors") or []:
        tag = f"{d['set']}, symprec {d['symprec']:g}"
        has_m = "moyopy" in d
        rows.append(
            (
                f"detection per structure, {tag}",
                f"spglib {d['spglib']:.3f} ms" + (f", moyopy {d['moyopy']:.3f} ms" if has_m else ""),
                f"spglib / moyopy = {d['spglib'] / d['moyopy']:.1f}" if has_m else "moyopy not measured",
            )
        )
        rows.append(
            (
                f"featurize K={d['kmax']} per structure, {tag}",
                f"spglib {d['feat_spglib']:.3f} ms"
                + (f", moyopy {d['feat_moyopy']:.3f} ms" if has_m else ""),
                f"spglib / moyopy = {d['feat_spglib'] / d['feat_moyopy']:.2f}" if has_m else "",
            )
        )
        rows.append(
            (
                f"  our own work (featurize - detection), {tag}",
                f"spglib {d['own_spglib']:.3f} ms" + (f", moyopy {d['own_moyopy']:.3f} ms" if has_m else ""),
                f"{d['own_spglib'] / d['spglib']:.2f}x spglib's detection (target <= 1)",
            )
        )
    for det, st in (fig.get("stages") or {}).items():
        own = st["feat_arrays"] - st["spglib"]
        rows.append(
            (
                f"stages ({det}), carbon_24: featurize(arrays) / (CIF)",
                f"{st['feat_arrays']:.3f} / {st['feat_cif']:.3f} ms",
                # with --detector moyopy the stage script's "spglib" figure is moyopy's detection
                f"own work on arrays {own:.3f} ms = {own / st['spglib']:.2f}x {det}'s detection {st['spglib']:.3f} ms",
            )
        )
        rows.append(
            (
                f"  validate / canonicalize / load_cif / declared ({det})",
                " / ".join(f"{st[k]:.3f}" for k in ("validate", "canonicalize", "load_cif", "declared"))
                + " ms",
                "",
            )
        )
    ds = fig.get("dataset")
    if ds:
        rows.append(
            (
                f"dataset, {ds['n']} carbon_24 rows, K={ds['kmax']}, in this process",
                f"{ds['sync_per_s']:.0f} structures/s",
                f"{ds['sync_no_features_per_s']:.0f}/s without features",
            )
        )
        base = ds["cluster"][0] if ds["cluster"] else None
        for c in ds["cluster"]:
            rows.append(
                (
                    f"dataset, LocalCluster {c['workers']} worker(s)",
                    f"{c['per_s']:.0f} structures/s, {c['per_worker_per_s']:.0f} per worker",
                    f"{c['per_s'] / base['per_s']:.2f}x {base['workers']} worker(s)"
                    if c is not base
                    else f"{c['per_s'] / ds['sync_per_s']:.2f}x in-process",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kmax", type=int, default=8, help="K of the core build")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--points", type=int, default=20_000, help="points of the evaluate benchmark")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--n-detect", type=int, default=200, help="structures per set, detectors")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the detectors section")
    ap.add_argument("--n-stages", type=int, default=600, help="carbon_24 structures, featurize stages")
    ap.add_argument("--n-dataset", type=int, default=1000, help="carbon_24 rows, dataset section")
    ap.add_argument("--workers", default="1,2", help="LocalCluster sizes of the dataset section")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    py = sys.executable
    t_all = time.perf_counter()
    fig: dict = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="basisdb_bench_") as tmp:
        tmp = Path(tmp)
        cmd = [py, str(BENCH / "bench_core.py"), "--kmax", str(args.kmax), "--jobs", str(args.jobs)]
        cmd += ["--points", str(args.points), "--json", str(tmp / "core.json")]
        rc, _, _ = run_section("core", cmd + (["--skip-build"] if args.skip_build else []))
        fig["core"] = _load(tmp / "core.json") if rc == 0 else None

        shared = (DATA / "carbon_24" / "carbon_24.csv").is_file()
        if not shared:
            for s in ("detectors", "stages", "dataset"):
                notes.append(f"{s}: skipped, {DATA} not found")
                print(f"\n== {s}: skipped ({DATA} not found)")
        else:
            if _have("spglib"):
                notes.append("detectors: skipped, spglib not installed")
                print("\n== detectors: skipped (spglib not installed)")
            else:
                if _have("moyopy"):
                    notes.append("detectors: moyopy not installed, spglib figures only")
                cmd = [py, str(BENCH / "bench_detectors.py"), "--n", str(args.n_detect)]
                cmd += ["--repeats", str(args.repeats), "--json", str(tmp / "detectors.json")]
                rc, _, _ = run_section("detectors", cmd)
                fig["detectors"] = _load(tmp / "detectors.json") if rc == 0 else None

                stages_py = BENCH / "bench_featurize_stages.py"
                fig["stages"] = {}
                detectors = ["spglib"]
                if "--detector" in stages_py.read_text():
                    if _have("moyopy"):
                        notes.append("stages: moyopy not installed, spglib only")
                    else:
                        detectors.append("moyopy")
                for det in detectors:
                    cmd = [py, str(stages_py), "--n", str(args.n_stages)]
                    cmd += ["--detector", det] if det != "spglib" else []
                    rc, out, _ = run_section(f"featurize stages ({det})", cmd, capture=True)
                    lines = [x for x in out.splitlines() if x.startswith("{")]
                    if rc == 0 and lines:
                        fig["stages"][det] = json.loads(lines[-1])
            if _have("distributed", "pyarrow"):
                notes.append("dataset: skipped, needs dask[distributed] and pyarrow (basisdb[dataset])")
                print(
                    "\n== dataset: skipped (needs dask[distributed] and pyarrow: pip install 'basisdb[dataset]')"
                )
            else:
                cmd = [
                    py,
                    str(BENCH / "bench_dataset.py"),
                    "--n",
                    str(args.n_dataset),
                    "--workers",
                    args.workers,
                ]
                cmd += ["--json", str(tmp / "dataset.json")]
                rc, _, _ = run_section("dataset", cmd)
                fig["dataset"] = _load(tmp / "dataset.json") if rc == 0 else None

    rows = table(fig)
    w0 = max(len(r[0]) for r in rows) if rows else 10
    w1 = max(len(r[1]) for r in rows) if rows else 10
    print(
        f"\n== summary (this run, {time.perf_counter() - t_all:.0f} s; {os.cpu_count()} CPUs, load "
        f"{os.getloadavg()[0]:.1f}; CPU ms from process_time where the section says so, else wall)"
    )
    for name, value, ratio in rows:
        print(f"  {name:<{w0}}  {value:<{w1}}  {ratio}")
    for n in notes:
        print(f"  note: {n}")
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": fig, "notes": notes}, indent=1) + "\n")


if __name__ == "__main__":
    main()
