"""Dataset command at scale (issue 11): throughput and memory over >= 100,000 synthetic structures.

    python bench/bench_dataset_scale.py [--n 100000] [--workers 1,2] [--kmax 4] [--window 10000]
        [--partition-size 256] [--no-features] [--seed 0] [--workdir DIR]
        [--json bench/dataset_scale.json] [--plot docs/dataset_scale.png]

1. Input.  Every structure of ../shared/datasets/{carbon_24,perov_5}/*.csv (column ``cif``) is read
   (gemmi, ``basisdb.structures.as_cell``).  N rows are drawn from them in shuffled rounds (every
   source structure once per round, order random; seed ``--seed``) and each row is a random
   re-presentation of its source, made with numpy (``bench/crystal_sets.py: represent``): a random
   unimodular change of cell (det +1, 4 elementary shears), a random origin shift and a random
   permutation of the atoms.  The rows are written as CIF text (P 1, 10 digits for the cell, 12 for
   the coordinates) to a Parquet table ``id, cif, parent, set`` (zstd, row groups of 10,000), cached
   in ``--workdir`` under a name that records N and the seed.  A sample of rows is checked: spglib
   (featurize's tolerances) finds the same space-group number for the re-presentation, read back
   from its CIF text, as for its source structure.
2. Runs.  For each worker count W: a ``dask.distributed.LocalCluster`` of W single-threaded worker
   processes (the scheduler runs in this, the client, process), then
   ``basisdb.featurize_dataset(table, OUT, scheduler=client, ...)``, the path ``basisdb featurize``
   takes.  A sampling thread reads /proc every ``--interval`` s: resident memory (VmRSS) and CPU
   time (utime + stime) of this process and of every worker, the partitions done, the load average.
3. Figures.  A partition is done when its features file appears; its modification time is its
   completion time.  Successive windows of ``--window`` structures (in completion order) give the
   throughput (structures per wall second), the workers' CPU milliseconds per structure (robust to
   other jobs on a shared machine), and the peak resident memory of this process and of each worker
   within the window.  Also each process's high-water mark (VmHWM) at the end.

Writes JSON (``--json``) and a plot (``--plot``: throughput, CPU per structure and resident memory
against structures done).  Not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
DATA = REPO.parent / "shared" / "datasets"
SETS = ("carbon_24", "perov_5", "mp_20")  # mp_20 is used when ../shared/datasets has it
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ input
def load_pool(sets=SETS) -> list[tuple[str, str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Every structure of the shared sets found: [(set, material_id, (lattice (3,3) rows in A,
    fractional positions (n,3), atomic numbers (n,)))]; sets without a folder are skipped."""
    from basisdb.structures import as_cell

    csv.field_size_limit(sys.maxsize)
    pool = []
    for name in sets:
        for path in sorted((DATA / name).glob("*.csv")):
            with open(path, newline="") as fh:
                for row in csv.DictReader(fh):
                    L, x, z = as_cell(row["cif"])
                    pool.append((name, str(row.get("material_id", len(pool))), (L, x, z)))
    return pool


def write_synthetic(path: Path, n: int, seed: int, pool, batch: int = 10_000) -> dict:
    """Write N re-presentations of ``pool`` to a Parquet table at ``path`` (see the module doc).

    Returns {'rows', 'seconds', 'bytes', 'atoms', 'by_set'}.  Deterministic for (pool, N, seed).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from crystal_sets import represent, to_cif

    rng = np.random.default_rng(seed)
    rounds = math.ceil(n / len(pool))
    order = np.concatenate([rng.permutation(len(pool)) for _ in range(rounds)])[:n]
    schema = pa.schema(
        [("id", pa.string()), ("cif", pa.string()), ("parent", pa.string()), ("set", pa.string())]
    )
    t0 = time.perf_counter()
    atoms = 0
    by_set: dict[str, int] = {}
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for lo in range(0, n, batch):
            cols: dict[str, list] = {"id": [], "cif": [], "parent": [], "set": []}
            for i in range(lo, min(n, lo + batch)):
                name, mid, cell = pool[order[i]]
                L, x, z, _ = represent(cell, rng, kinds=("shift", "cell", "permute"))
                cols["id"].append(f"r{i:07d}")
                cols["cif"].append(to_cif(L, x, z, name=f"r{i:07d}"))
                cols["parent"].append(mid)
                cols["set"].append(name)
                atoms += len(z)
                by_set[name] = by_set.get(name, 0) + 1
            writer.write_table(pa.table(cols, schema=schema), row_group_size=batch)
    os.replace(tmp, path)
    return {
        "rows": n,
        "seconds": time.perf_counter() - t0,
        "bytes": path.stat().st_size,
        "atoms": atoms,
        "by_set": by_set,
    }


def check_sample(path: Path, pool, n_check: int) -> dict:
    """spglib's space-group number (featurize's tolerances) of the first ``n_check`` rows, read back
    from their CIF text, against that of their source structures: {'checked', 'same_number'}."""
    import pyarrow.parquet as pq
    import spglib

    from basisdb.dataset import _featurize_default
    from basisdb.structures import as_cell

    symprec = float(_featurize_default("symprec"))
    angle = _featurize_default("angle_tolerance")
    angle = -1.0 if angle is None else float(angle)
    by_id = {mid: cell for _, mid, cell in pool}
    t = pq.ParquetFile(path).read_row_group(0, columns=["cif", "parent"]).slice(0, n_check)
    same = 0
    for cif, parent in zip(t.column("cif").to_pylist(), t.column("parent").to_pylist()):
        a = spglib.get_symmetry_dataset(by_id[parent], symprec=symprec, angle_tolerance=angle)
        b = spglib.get_symmetry_dataset(as_cell(cif), symprec=symprec, angle_tolerance=angle)
        same += a is not None and b is not None and a.number == b.number
    return {"checked": len(t), "same_number": same, "symprec": symprec, "angle_tolerance": angle}


# ------------------------------------------------------------------ sampling /proc
def _proc(pid: int) -> tuple[float, float] | None:
    """(resident MiB, CPU seconds user + system) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            rss = int(fh.read().split()[1]) * PAGE / 2**20
        with open(f"/proc/{pid}/stat") as fh:
            f = fh.read().rsplit(")", 1)[1].split()
        return rss, (int(f[11]) + int(f[12])) / TICK
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return None


def _hwm(pid: int) -> float | None:
    """Peak resident memory (VmHWM, MiB) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


class Sampler(threading.Thread):
    """Samples every ``interval`` s: time, done partitions, load average, and (RSS MiB, CPU s) of the
    client process and of each worker pid (None once a process is gone)."""

    def __init__(self, client_pid: int, worker_pids: list[int], features_dir: Path, interval: float):
        super().__init__(daemon=True)
        self.pids = [client_pid, *worker_pids]
        self.folder = features_dir
        self.interval = interval
        self.samples: list[dict] = []
        self._halt = threading.Event()

    def _done(self) -> int:
        try:
            return sum(1 for e in os.scandir(self.folder) if e.name.startswith("part-"))
        except FileNotFoundError:
            return 0

    def sample(self) -> None:
        self.samples.append(
            {
                "t": time.time(),
                "parts": self._done(),
                "load": os.getloadavg()[0],
                "procs": [_proc(p) for p in self.pids],
            }
        )

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


# ------------------------------------------------------------------ one run
def code_digest() -> str:
    """SHA-256 (first 12 hex digits) of the package's Python sources, in path order."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((REPO / "basisdb").rglob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def completions(out: Path, n: int, partition_size: int) -> list[tuple[float, int, int]]:
    """(completion time, partition, structures) of every done partition, in completion order."""
    done = []
    for f in (out / "features").glob("part-*.parquet"):
        k = int(f.name[5:-8])
        done.append((f.stat().st_mtime, k, min(partition_size, n - k * partition_size)))
    return sorted(done)


def windows(t_start: float, done, samples, window: int, n_workers: int) -> list[dict]:
    """Figures per window of ``window`` structures (completion order); see the module doc."""
    bounds = [(t_start, 0)]
    cum, total = 0, sum(d[2] for d in done)
    for t, _k, m in done:
        cum += m
        if cum >= len(bounds) * window or cum == total:
            bounds.append((t, cum))
    ts = np.array([s["t"] for s in samples])

    def at(t):  # the last sample at or before t (the first one if none)
        return samples[max(0, int(np.searchsorted(ts, t, side="right")) - 1)]

    def cpu(s, i):
        p = s["procs"][i]
        return None if p is None else p[1]

    rows = []
    for (ta, ca), (tb, cb) in zip(bounds, bounds[1:]):
        inside = [s for s in samples if ta <= s["t"] <= tb] or [at(tb)]
        sa, sb = at(ta), at(tb)
        worker_cpu = [
            (cpu(sb, i) - cpu(sa, i)) if cpu(sa, i) is not None and cpu(sb, i) is not None else None
            for i in range(1, n_workers + 1)
        ]
        client_cpu = (cpu(sb, 0) - cpu(sa, 0)) if cpu(sa, 0) is not None and cpu(sb, 0) is not None else None

        def peak(i, inside=inside):
            vals = [s["procs"][i][0] for s in inside if s["procs"][i] is not None]
            return round(max(vals), 1) if vals else None

        m = cb - ca
        rows.append(
            {
                "structures_end": cb,
                "seconds": round(tb - ta, 3),
                "rate": round(m / (tb - ta), 2) if tb > ta else None,
                "worker_cpu_ms_per_structure": (
                    round(1e3 * sum(worker_cpu) / m, 4) if None not in worker_cpu else None
                ),
                "client_cpu_ms_per_structure": None if client_cpu is None else round(1e3 * client_cpu / m, 4),
                "client_peak_mib": peak(0),
                "worker_peak_mib": [peak(i) for i in range(1, n_workers + 1)],
                "load": round(float(np.mean([s["load"] for s in inside])), 2),
            }
        )
    return rows


def run_one(table: Path, out: Path, n: int, workers: int, args) -> dict:
    """featurize_dataset on ``table`` with a LocalCluster of ``workers`` processes; figures of the run."""
    from distributed import Client, LocalCluster

    from basisdb.dataset import featurize_dataset

    shutil.rmtree(out, ignore_errors=True)
    code = code_digest()  # the package as the workers import it (other work may change it between runs)
    t_cluster = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: __import__("basisdb.dataset") and None)
        pids = [int(p) for _, p in sorted(client.run(os.getpid).items())]
        t_cluster = time.perf_counter() - t_cluster
        sampler = Sampler(os.getpid(), pids, out / "features", args.interval)
        sampler.sample()
        t0 = time.time()
        sampler.start()
        res = featurize_dataset(
            table,
            out,
            kmax=args.kmax,
            features=not args.no_features,
            id_column="id",
            partition_size=args.partition_size,
            scheduler=client,
            progress=False,
        )
        t1 = time.time()
        sampler.stop()
        hwm_workers = [_hwm(p) for p in pids]
    hwm_client = _hwm(os.getpid())  # of the whole session so far (includes input generation)
    done = completions(out, n, args.partition_size)
    out_bytes = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    wins = windows(t0, done, sampler.samples, args.window, workers)
    s = res.summary
    steady = [w["rate"] for w in wins[1:] if w["rate"]] or [wins[0]["rate"]]
    series = [
        [round(x["t"] - t0, 2), x["parts"] * args.partition_size, round(x["load"], 2)]
        + [None if p is None else round(p[0], 1) for p in x["procs"]]
        for x in sampler.samples
    ]
    if len(series) > 1500:  # keep the JSON small
        step = math.ceil(len(series) / 1500)
        series = series[::step] + [series[-1]]
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "workers": workers,
        "code_sha256": code,
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t0)),
        "seconds": round(t1 - t0, 2),
        "cluster_start_seconds": round(t_cluster, 2),
        "structures": s["structures"],
        "rows": s["rows"],
        "failures": s["failures"],
        "failures_by_kind": s["failures_by_kind"],
        "warnings_by_kind": s["warnings_by_kind"],
        "stderr_lines": s["stderr_lines"],
        "structures_per_s": round(s["structures"] / (t1 - t0), 2),
        "per_worker_per_s": round(s["structures"] / (t1 - t0) / workers, 2),
        "steady_rate_median": round(float(np.median(steady)), 2),
        "output_bytes": out_bytes,
        "windows": wins,
        "hwm_mib": {"client": hwm_client, "workers": hwm_workers},
        "series_columns": ["t_s", "structures_done", "load1", "client_rss_mib"]
        + [f"worker{i}_rss_mib" for i in range(workers)],
        "series": series,
    }


# ------------------------------------------------------------------ report
def flatness(run: dict) -> dict:
    """Last window against the second (the first includes workers' warm-up): rate ratio, CPU ratio,
    and the growth of peak resident memory (MiB) of the client and of the largest worker."""
    w = run["windows"]
    a, b = (w[1] if len(w) > 2 else w[0]), w[-1]
    if len(w) > 2 and b["structures_end"] - w[-2]["structures_end"] < 0.5 * (
        a["structures_end"] - w[0]["structures_end"]
    ):
        b = w[-2]  # a short last window (the remainder) is noisier
    wa = [v for v in a["worker_peak_mib"] if v is not None]
    wb = [v for v in b["worker_peak_mib"] if v is not None]
    return {
        "from_window_ending": a["structures_end"],
        "to_window_ending": b["structures_end"],
        "rate_ratio": round(b["rate"] / a["rate"], 3),
        "cpu_per_structure_ratio": (
            round(b["worker_cpu_ms_per_structure"] / a["worker_cpu_ms_per_structure"], 3)
            if a["worker_cpu_ms_per_structure"] and b["worker_cpu_ms_per_structure"]
            else None
        ),
        "client_rss_growth_mib": round(b["client_peak_mib"] - a["client_peak_mib"], 1),
        "worker_rss_growth_mib": round(max(wb) - max(wa), 1) if wa and wb else None,
    }


def print_run(run: dict) -> None:
    ll = run.get("low_level_log_length")
    print(
        f"\n{run['workers']} worker(s)"
        + (f", Dask low-level-log-length {ll}" if ll is not None else "")
        + f": {run['structures']:,} structures in {run['seconds']:.1f} s = "
        f"{run['structures_per_s']:.1f}/s ({run['per_worker_per_s']:.1f} per worker), {run['failures']} failures, "
        f"output {run['output_bytes'] / 2**20:.0f} MiB, cluster start {run['cluster_start_seconds']:.1f} s"
    )
    print(
        f"  {'structures':>10} {'s':>7} {'rate/s':>8} {'worker CPU ms':>13} {'client CPU ms':>13} "
        f"{'client MiB':>10} {'worker MiB':>16} {'load':>5}"
    )
    for w in run["windows"]:
        wp = "/".join("-" if v is None else f"{v:.0f}" for v in w["worker_peak_mib"])
        wc = w["worker_cpu_ms_per_structure"]
        cc = w["client_cpu_ms_per_structure"]
        print(
            f"  {w['structures_end']:>10,} {w['seconds']:>7.1f} {w['rate']:>8.1f} "
            f"{'-' if wc is None else f'{wc:.3f}':>13} {'-' if cc is None else f'{cc:.3f}':>13} "
            f"{w['client_peak_mib']:>10.0f} {wp:>16} {w['load']:>5.1f}"
        )
    f = run["flatness"]
    print(
        f"  window ending {f['to_window_ending']:,} vs {f['from_window_ending']:,}: rate x{f['rate_ratio']}, "
        f"worker CPU per structure x{f['cpu_per_structure_ratio']}, peak RSS growth: client "
        f"{f['client_rss_growth_mib']:+.1f} MiB, worker {f['worker_rss_growth_mib']:+.1f} MiB; "
        f"VmHWM workers {run['hwm_mib']['workers']} MiB"
    )


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(8, 9.5), sharex=True)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for ci, run in enumerate(result["runs"]):
        c = colors[ci % len(colors)]
        w = run["windows"]
        x = [v["structures_end"] for v in w]
        ll = run.get("low_level_log_length")
        lab = f"{run['workers']} worker(s)" + (f", Dask log length {ll}" if ll is not None else "")
        edges = [0, *x]
        axes[0].stairs([v["rate"] for v in w], edges, color=c, lw=1.6, label=lab, baseline=None)
        cpu = [
            np.nan if v["worker_cpu_ms_per_structure"] is None else v["worker_cpu_ms_per_structure"]
            for v in w
        ]
        axes[1].stairs(cpu, edges, color=c, lw=1.6, label=lab, baseline=None)
        ser = np.array([[np.nan if v is None else v for v in row] for row in run["series"]], float)
        axes[2].plot(ser[:, 1], ser[:, 3], color=c, lw=1.6, label=f"client process, {lab}")
        for j in range(run["workers"]):
            axes[2].plot(
                ser[:, 1],
                ser[:, 4 + j],
                color=c,
                lw=0.9,
                ls=["--", ":", "-."][j % 3],
                label=f"worker {j}, {lab}",
            )
    axes[0].set_ylabel("structures / s (window)")
    axes[1].set_ylabel("worker CPU ms / structure")
    axes[2].set_ylabel("resident memory (MiB)")
    axes[2].set_xlabel("structures done")
    for a in axes:
        a.grid(alpha=0.3)
        a.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=7, ncol=2)
    m = result["meta"]
    fig.suptitle(
        f"basisdb featurize: {m['n']:,} re-presented structures ({', '.join(m['input']['by_set'])}), "
        f"K = {m['kmax']}, partitions of {m['partition_size']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def parse_runs(text: str) -> list[tuple[int, int | None]]:
    """'1,2,2@1000' -> [(1, None), (2, None), (2, 1000)]: worker counts, optionally @N, Dask's
    distributed.admin.low-level-log-length for that run (None: basisdb's setting, 0, log off;
    1000 is Dask's default)."""
    out = []
    for item in text.split(","):
        if item.strip():
            w, _, ll = item.strip().partition("@")
            out.append((int(w), int(ll) if ll else None))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="structures in the synthetic dataset")
    ap.add_argument(
        "--runs",
        "--workers",
        default="1,2",
        help="comma-separated LocalCluster sizes, each optionally @N: Dask's "
        "distributed.admin.low-level-log-length set to N for that run; without @N, basisdb's "
        "setting 0 (log off). E.g. 1,2,2@1000 (1000 is Dask's default)",
    )
    ap.add_argument("--kmax", type=int, default=4)
    ap.add_argument("--no-features", action="store_true", help="store positions, group, lattice only")
    ap.add_argument("--window", type=int, default=10_000, help="structures per throughput window")
    ap.add_argument("--partition-size", type=int, default=256)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between /proc samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=300, help="rows checked against their source structures")
    ap.add_argument(
        "--workdir", default=None, help="where the input table and outputs go (default: a temp dir)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the output datasets")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    ap.add_argument("--single", nargs=2, metavar=("TABLE", "OUT_JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.single:  # one run in a fresh process (so no run inherits another's memory)
        ((w, loglen),) = parse_runs(args.runs)
        if loglen is not None:
            import dask

            dask.config.set({"distributed.admin.low-level-log-length": loglen})
        else:  # the settings of the LocalCluster that `basisdb featurize` starts itself
            from basisdb.dataset import _dask_config

            _dask_config()
        warnings.simplefilter("ignore")
        table = Path(args.single[0])
        run = run_one(table, table.parent / f"out_w{w}", args.n, w, args)
        run["low_level_log_length"] = loglen
        Path(args.single[1]).write_text(json.dumps(run))
        return
    if not (DATA / "carbon_24").is_dir():
        sys.exit(f"{DATA}: not found (../shared/datasets is needed); nothing measured")
    import dask
    import pyarrow
    import spglib

    import basisdb

    warnings.simplefilter("ignore")
    workdir = Path(args.workdir or os.path.join(os.environ.get("TMPDIR", "/tmp"), "basisdb_dataset_scale"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = load_pool()
    t_parse = time.perf_counter() - t0
    sets = sorted({s for s, _, _ in pool})
    print(f"read {len(pool):,} source structures from {', '.join(sets)} in {t_parse:.1f} s")
    table = workdir / f"synthetic_n{args.n}_seed{args.seed}_{'-'.join(sets)}.parquet"
    if table.is_file():
        import pyarrow.parquet as pq

        meta_in = {
            "rows": pq.ParquetFile(table).metadata.num_rows,
            "bytes": table.stat().st_size,
            "cached": True,
        }
        by_set = pq.read_table(table, columns=["set"]).column("set").value_counts().to_pylist()
        meta_in["by_set"] = {d["values"]: d["counts"] for d in by_set}
    else:
        meta_in = write_synthetic(table, args.n, args.seed, pool)
    print(
        f"input: {table} ({meta_in['rows']:,} rows, {meta_in['bytes'] / 2**20:.0f} MiB"
        + (f", written in {meta_in['seconds']:.0f} s" if "seconds" in meta_in else ", cached")
        + f"; {meta_in['by_set']})"
    )
    check = check_sample(table, pool, args.check)
    print(
        f"check: {check['same_number']}/{check['checked']} re-presentations have their source's space-group "
        f"number (spglib, symprec {check['symprec']:g}, angle {check['angle_tolerance']:g})"
    )
    del pool
    result = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.node()}, {os.cpu_count()} CPUs, python {platform.python_version()}",
            "versions": {
                "numpy": np.__version__,
                "spglib": spglib.__version__,
                "dask": dask.__version__,
                "pyarrow": pyarrow.__version__,
                "basisdb": getattr(basisdb, "__version__", "?"),
            },
            "n": args.n,
            "seed": args.seed,
            "kmax": args.kmax,
            "features": not args.no_features,
            "partition_size": args.partition_size,
            "window": args.window,
            "input": meta_in,
            "check": check,
        },
        "runs": [],
    }
    for w, loglen in parse_runs(args.runs):
        one = workdir / "run.json"
        cmd = [
            sys.executable,
            __file__,
            "--n",
            str(args.n),
            "--runs",
            f"{w}" + (f"@{loglen}" if loglen else ""),
        ]
        cmd += [
            "--kmax",
            str(args.kmax),
            "--window",
            str(args.window),
            "--partition-size",
            str(args.partition_size),
        ]
        cmd += ["--interval", str(args.interval), "--single", str(table), str(one)]
        cmd += (["--no-features"] if args.no_features else []) + (["--keep"] if args.keep else [])
        subprocess.run(cmd, check=True)
        run = json.loads(one.read_text())
        run["flatness"] = flatness(run)
        result["runs"].append(run)
        print_run(run)
        if args.json:  # written after every run, so a long run leaves its figures behind
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    plain = {r["workers"]: r for r in reversed(result["runs"]) if r.get("low_level_log_length") is None}
    if 1 in plain and 2 in plain:
        r1, r2 = plain[1], plain[2]
        print(
            f"\n2 vs 1 worker(s): {r2['structures_per_s'] / r1['structures_per_s']:.2f}x the throughput "
            f"({r2['per_worker_per_s'] / r1['per_worker_per_s']:.2f}x per worker)"
        )
    if args.json:
        print(f"wrote {args.json}")
    if args.plot:
        plot(result, Path(args.plot))
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
