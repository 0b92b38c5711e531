"""Featurize whole datasets: Parquet output, failures table, restartable partitions, Dask.

>>> import basisdb
>>> s = basisdb.featurize_dataset("carbon_24.csv", "out/", kmax=3)        # a CSV of CIFs -> out/ (Parquet)
>>> t = basisdb.read_features("out/")                                      # pyarrow Table (as_pandas=True: DataFrame)
>>> res = basisdb.featurize_many([atoms1, "x.cif", (lat, pos, nums)])      # in memory: res.records, res.failures
>>> ds = basisdb.dataset.FeatureDataset("out/")                            # map-style dataset for torch's DataLoader

The engine runs partitions of ``partition_size`` structures as Dask tasks: on a
``dask.distributed.LocalCluster`` started for the run (``workers=``), on an existing cluster
(``scheduler="tcp://host:8786"`` or a ``distributed.Client``), or in this process
(``scheduler="sync"``, no Dask needed).  Each worker opens the artifact itself.  Rows come back in
input order whatever the number of workers.  Layout and restart semantics: docs/DATASETS.md.
With a LocalCluster (``scheduler=None``, featurize_dataset's default) the workers are spawned
processes that import the calling script again: in a script, call it under
``if __name__ == "__main__":`` (a notebook needs nothing).

pyarrow, dask and tqdm are imported on use (``pip install 'basisdb[dataset]'``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _dataset_io as io_

__all__ = [
    "DatasetResult",
    "FeatureDataset",
    "FeatureRecord",
    "featurize_dataset",
    "featurize_many",
    "read_failures",
    "read_features",
    "read_summary",
    "records",
]

DEFAULT_PARTITION_SIZE = 256
#: seconds a structure may take with detector="moyopy" before it is stopped and recorded as a failure
#: (moyopy 0.21 can loop forever on a structure; docs/DATASETS.md)
MOYOPY_TIMEOUT = 30.0


class _FeaturizeDefault:
    """Placeholder default: whatever ``basisdb.featurize`` uses (read from its signature at run time)."""

    def __repr__(self) -> str:
        return "<featurize's default>"


FEATURIZE_DEFAULT = _FeaturizeDefault()


def _featurize_default(name: str):
    import inspect

    from .structures import featurize

    return inspect.signature(featurize).parameters[name].default


# ------------------------------------------------------------------ per structure (runs on workers)
_DBS: dict = {}
_DBS_LOCK = threading.Lock()
_WARNINGS_LOCK = threading.Lock()


def _worker_db(path):
    """The worker's own Database (opened once per process; never shipped)."""
    key = None if path is None else str(path)
    with _DBS_LOCK:
        db = _DBS.get(key)
        if db is None:
            if key is None:
                from ._database import default_database

                db = default_database()
            else:
                from ._database import open as _open

                db = _open(key)
            _DBS[key] = db
        return db


def _featurize_item(item: io_.Item, opts: dict, db, pending: dict | None = None) -> dict:
    """One structure's row.  ``pending``: a dict that collects, per basis, the rows whose features are
    still to be evaluated (``_evaluate_pending`` fills them in, all rows of a basis in one call); None:
    the features are evaluated here."""
    from ._routing import shared_encoding
    from .structures import _featurize, _read_structure

    if isinstance(item.structure, io_.CarryMismatch):  # its carried value cannot take the column's type
        raise ValueError(item.structure.message)
    want_features, want_encoding = opts["features"], opts["encoding"]
    user = opts.get("add_columns")
    # with user columns the input is read here (once): their function gets the structure as read
    given = _read_structure(item.structure) if user is not None else None
    # positions, group and lattice do not depend on K: without features or encoding the cheapest K is used
    kmax = opts["kmax"] if (want_features or want_encoding) else 1
    # the warnings filters are process-global: with threaded workers one structure at a time records its
    # own warnings (spglib holds the GIL anyway, so threads gain little; processes are the default)
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = _featurize(
            item.structure if given is None else given,
            kmax,
            opts["symprec"],
            db,
            real=True,
            min_distance=opts["min_distance"],
            reader=None,
            angle_tolerance=opts["angle_tolerance"],
            on_mismatch=opts["on_mismatch"],
            magmoms=None,
            mag_symprec=None,
            detector=opts.get("detector", "spglib"),
            evaluate=want_features and pending is None,
        )
        enc = shared_encoding(r.basis, r.positions) if want_encoding else None
    seen = []
    for w in caught:
        text = f"{type(w.message).__name__}: {w.message}"
        if text not in seen:
            seen.append(text)
    row = {
        "index": item.index,
        "id": item.id,
        "source": item.source,
        "n_atoms": r.n_atoms,
        "hall_number": r.hall_number,
        "number": r.number,
        "international": r.international,
        "hall_symbol": r.hall_symbol,
        "declared_number": r.declared_number,
        "declared_hall_number": r.declared_hall_number,
        "declared": r.declared,
        "symprec": r.symprec,
        "angle_tolerance": r.angle_tolerance,
        "kmax": r.basis.kmax if (want_features or want_encoding) else None,
        "lattice": r.lattice,
        "positions": r.positions,
        "numbers": r.numbers,
        "orbit": r.orbit,
        "max_displacement": r.max_displacement,
        "n_basis": r.basis.n_basis if want_features else None,
        "features": r.features if want_features else None,
        "encoding": enc,
        "warnings": seen,
    }
    if given is not None:  # for the user columns, computed once the features are in (popped there)
        row["_cell"] = (given.lattice, given.positions, given.numbers)
        row["_result"] = r
    if want_features and r.features is None:
        pending.setdefault(id(r.basis), (r.basis, []))[1].append(row)
    return row


def _user_values(row: dict, opts: dict) -> list:
    """The row's user columns (``add_columns``), coerced to the run's schema; pops the kept input."""
    import dataclasses

    from ._user_columns import coerce

    cell, r = row.pop("_cell"), row.pop("_result")
    if r.features is None and row["features"] is not None:
        r = dataclasses.replace(r, features=row["features"])
    return coerce(opts["add_columns"](cell, r), opts["add_schema"])


def _evaluate_pending(pending: dict) -> None:
    """Fill in the features of the collected rows: one evaluation per basis over all their canonical
    positions.  Every row of the result is computed exactly as ``featurize`` computes it alone (the
    evaluator works point by point), so the features are bit-identical to featurize's."""
    from ._evaluate import evaluate_plan

    for basis, rows in pending.values():
        plan = basis._plan(True)
        x = np.concatenate([row["positions"] for row in rows]) if len(rows) > 1 else rows[0]["positions"]
        feats = evaluate_plan(plan, x)
        feats.setflags(write=False)
        lo = 0
        for row in rows:
            hi = lo + len(row["positions"])
            row["features"] = feats[lo:hi]
            lo = hi
    pending.clear()


def _task_items(task: dict, beat):
    """(position, item) of the task's structures but those the watchdog took out (``task['skip']``),
    reporting each to the watchdog (``beat``) as it starts."""
    skip = set(task.get("skip", ()))
    for j, item in enumerate(task["items"]):
        if j in skip:
            continue
        if beat is not None:
            beat(j)
        yield j, item


def _compute_partition(task: dict, beat=None) -> dict:
    """Featurize one partition: {'stats', 'features', 'failures'}.  Never raises for a structure:
    failures are rows of the failures table.  ``beat(j)``, when given, is called as the j-th structure
    starts (the watchdog's reports)."""
    from ._stderr_capture import capture_stderr

    t0 = time.perf_counter()
    opts = task["opts"]
    db = _worker_db(opts["db_path"])
    rows, fails, keep = [], [], []
    pending: dict = {}
    warn_kinds: Counter = Counter()
    with capture_stderr(opts["capture_stderr"]) as cap:
        for j, item in _task_items(task, beat):
            try:
                row = _featurize_item(item, opts, db, pending)
            except Exception as exc:
                fails.append(_failure_row(item, type(exc).__name__, str(exc)))
                continue
            rows.append(row)
            keep.append(j)
            for w in row["warnings"]:
                warn_kinds[w.split(":", 1)[0]] += 1
        if beat is not None:  # what follows is the partition's, not a structure's (no time limit)
            from ._watchdog import FINISHING

            beat(FINISHING)
        _evaluate_pending(pending)
        user_rows = None
        if opts.get("add_columns") is not None:
            user_rows, kept_rows, kept = [], [], []
            for row, j in zip(rows, keep):
                try:
                    user_rows.append(_user_values(row, opts))
                except Exception as exc:
                    item = task["items"][j]
                    msg = str(exc) if str(exc).startswith("add_columns") else f"add_columns: {exc}"
                    fails.append(_failure_row(item, type(exc).__name__, msg))
                    continue
                kept_rows.append(row)
                kept.append(j)
            rows, keep = kept_rows, kept
            fails.sort(key=lambda f: f["index"])
    carry_table = None
    if task.get("carry_schema") is not None and rows and task["extra"] is not None:
        import pyarrow as pa

        carry_table = task["extra"].take(pa.array(keep, type=pa.int64()))
    features = io_.build_features_table(rows, carry_table, task.get("carry_schema"))
    if user_rows is not None:
        from ._user_columns import arrow_arrays

        for (name, _), arr in zip(opts["add_schema"], arrow_arrays(user_rows, opts["add_schema"])):
            features = features.append_column(name, arr)
    stats = _partition_stats(task, len(rows), fails, warn_kinds, cap.lines, time.perf_counter() - t0)
    return {"stats": stats, "features": features, "failures": io_.build_failures_table(fails)}


def _partition_stats(
    task: dict, rows: int, fails: list, warn_kinds, stderr_lines: list, seconds: float
) -> dict:
    """A partition's statistics (the metadata of its features file, summed by ``_summarize``)."""
    return {
        "part": task["part"],
        "structures": len(task["items"]),
        "rows": rows,
        "failures": len(fails),
        "failures_by_kind": dict(Counter(f["error_type"] for f in fails)),
        "warnings_by_kind": dict(warn_kinds),
        "stderr_lines": len(stderr_lines),
        "stderr_samples": list(dict.fromkeys(stderr_lines))[:5],
        "seconds": seconds,
        "first_index": task["items"][0].index if task["items"] else None,
    }


def _failure_row(item: io_.Item, error_type: str, message: str) -> dict:
    return {
        "index": item.index,
        "id": item.id,
        "source": item.source,
        "error_type": error_type,
        "error": " ".join(message.split()) or error_type,
    }


def _detector_timeout(opts: dict) -> tuple[float | None, str | None]:
    """(the time limit per structure in force for this partition, or None; why there is none although
    one was asked for, or None)."""
    limit = opts.get("detector_timeout")
    if limit is None:
        limit = MOYOPY_TIMEOUT if opts.get("detector") == "moyopy" else 0.0
    if not limit:
        return None, ("detector_timeout=0" if opts.get("detector") == "moyopy" else None)
    from ._watchdog import can_fork

    if not can_fork():
        return None, f"no safe fork on {sys.platform} (Linux only)"
    # a process running several partitions in threads must not fork (a child could copy a lock another
    # thread holds): several Dask workers in this process (--threads), or a worker with several threads
    try:
        from distributed import Worker
    except ImportError:
        return float(limit), None
    threads = 0
    for w in list(Worker._instances):
        if str(getattr(w, "status", "")).endswith("running"):
            n: Any = getattr(getattr(w, "state", None), "nthreads", None) or getattr(w, "nthreads", 1)
            threads += int(n)
    if threads > 1:
        return None, f"{threads} worker threads in one process (threads, not processes)"
    return float(limit), None


def _compute_guarded(task: dict, limit: float) -> dict:
    """``_compute_partition`` in a forked child with ``limit`` seconds per structure (basisdb/_watchdog.py):
    a structure that hangs or crashes its process becomes a failure row; the others are unchanged."""
    from ._watchdog import run_guarded

    t0 = time.perf_counter()
    detector = task["opts"].get("detector", "spglib")
    try:
        res, left_out = run_guarded(_compute_partition, task, limit)
    except RuntimeError as exc:  # the child failed outside any structure: the partition's structures fail
        fails = [_failure_row(item, "ChildProcessError", f"{detector}: {exc}") for item in task["items"]]
        res = {
            "stats": _partition_stats(task, 0, fails, {}, [], 0.0),
            "features": io_.build_features_table([], None, task.get("carry_schema")),
            "failures": io_.build_failures_table(fails),
        }
        left_out = []
    if left_out:
        import pyarrow as pa
        import pyarrow.compute as pc

        items = task["items"]
        extra = [_failure_row(items[j], kind, f"{detector}: {reason}") for j, kind, reason in left_out]
        failures = pa.concat_tables([res["failures"], io_.build_failures_table(extra)])
        order = pc.sort_indices(failures, sort_keys=[("index", "ascending")])
        res["failures"] = failures.take(order)
        st = res["stats"]
        st["failures"] += len(extra)
        kinds = Counter(st["failures_by_kind"])
        kinds.update(kind for _, kind, _ in left_out)
        st["failures_by_kind"] = dict(kinds)
    res["stats"]["seconds"] = time.perf_counter() - t0
    return res


def _run_partition(task: dict) -> dict:
    """Featurize one partition; write it (task['out']) or return its tables.  Never raises for a
    structure: failures are rows of the failures table."""
    limit, off = _detector_timeout(task["opts"])
    res = _compute_partition(task) if limit is None else _compute_guarded(task, limit)
    if off is not None and task["opts"].get("detector") == "moyopy":
        res["stats"]["watchdog_off"] = off
    if task["out"] is not None:
        io_.write_partition(Path(task["out"]), task["part"], res["features"], res["failures"], res["stats"])
        return {"stats": res["stats"]}
    return res


# ------------------------------------------------------------------ the engine
@dataclass
class DatasetResult:
    """What a run returns: its summary, and (in memory, ``output=None``) the tables."""

    summary: dict
    features: Any = None  # pyarrow Table (output=None), else None: read it with read_features(output)
    failures: Any = None
    output: str | None = None

    @property
    def records(self) -> list[FeatureRecord]:
        """The rows as FeatureRecord objects (in memory runs), ready for ``basisdb.torch.collate``."""
        if self.features is None:
            raise ValueError(
                "the dataset was written to disk: use FeatureDataset(output) or read_features(output)"
            )
        return records(self.features)

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"DatasetResult(structures={s['structures']}, rows={s['rows']}, failures={s['failures']}, "
            f"seconds={s['seconds']:.1f}, output={self.output!r})"
        )


def _check_options(kmax, symprec, partition_size, workers, on_mismatch):
    if kmax is not None and (isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)) or kmax < 1):
        raise ValueError(f"kmax must be a positive integer, got {kmax!r}")
    if symprec is not FEATURIZE_DEFAULT and (
        isinstance(symprec, bool)
        or not isinstance(symprec, (int, float, np.floating, np.integer))
        or not np.isfinite(symprec)
        or symprec <= 0
    ):
        raise ValueError(f"symprec must be a positive number of Angstrom, got {symprec!r}")
    if (
        isinstance(partition_size, bool)
        or not isinstance(partition_size, (int, np.integer))
        or partition_size < 1
    ):
        raise ValueError(f"partition_size must be a positive integer, got {partition_size!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1
    ):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if on_mismatch not in ("warn", "raise", "ignore"):
        raise ValueError(f"on_mismatch must be 'warn', 'raise' or 'ignore', got {on_mismatch!r}")


class _Progress:
    def __init__(self, enabled, total):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is in the extra
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(
                    total=total,
                    unit=" structures",
                    unit_scale=True,
                    dynamic_ncols=True,
                    desc="featurize",
                    file=sys.stderr,
                    smoothing=0.1,
                )

    def update(self, n, failures):
        if self.bar is not None:
            self.bar.update(n)
            if failures:
                self.bar.set_postfix(failures=failures, refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _compact_rows(rows: list, schema):
    """The carried 1-row tables of one partition as one table of ``schema`` that owns only these rows'
    buffers (rows of inputs without the columns, e.g. CIF files, become nulls)."""
    import pyarrow as pa

    nulls = pa.table({f.name: pa.nulls(1, f.type) for f in schema}, schema=schema)
    return pa.concat_tables([nulls if r is None else r for r in rows]).combine_chunks()


def _check_scheduler(scheduler) -> None:
    """Refuse a scheduler string that cannot be one, before anything is written."""
    if isinstance(scheduler, str) and scheduler not in ("sync", "local", "") and ":" not in scheduler:
        # every Dask address has a port (host:port, tcp://host:port)
        raise ValueError(
            f"scheduler {scheduler!r} is neither 'sync', 'local' nor a Dask scheduler address "
            "(tcp://host:8786 or host:8786)"
        )


def _dask_config():
    """Dask settings for a run: no log of recent messages per connection.

    distributed keeps the last ``distributed.admin.low-level-log-length`` (default 1,000) messages of
    every connection for debugging; a partition's message carries its CIF texts (about 0.5 MiB for 256
    structures), so the client of a long run grew by about 1.6 KiB per structure (docs/BENCHMARKS.md,
    "Dataset command at scale").  Workers started inside this context inherit it; for an existing
    cluster set ``DASK_DISTRIBUTED__ADMIN__LOW_LEVEL_LOG_LENGTH=0`` where it runs."""
    try:
        import dask
        import distributed  # noqa: F401  (registers its defaults: leaving a config.set made before that
        # import would drop them, and the next LocalCluster fails with KeyError 'comm')
    except ImportError:  # the engine will say what to install
        return contextlib.nullcontext()
    return dask.config.set({"distributed.admin.low-level-log-length": 0})


def _open_client(scheduler, workers, processes):
    """(client, owned) for a Dask scheduler spec; None for the synchronous mode."""
    if scheduler == "sync":
        return None, False, 1
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError(
            "the parallel engine needs Dask: `pip install 'basisdb[dataset]'` (or 'dask[distributed]'); "
            "scheduler='sync' (--scheduler sync) runs without it"
        ) from exc
    if isinstance(scheduler, Client):
        return scheduler, False, max(1, len(scheduler.scheduler_info().get("workers", {})) or 1)
    if isinstance(scheduler, str) and scheduler not in ("local", ""):
        client = Client(scheduler)
        return client, True, max(1, len(client.scheduler_info().get("workers", {})) or 1)
    if scheduler not in (None, "local", ""):
        raise TypeError(
            f"scheduler must be None, 'local', 'sync', an address or a distributed.Client, got {type(scheduler).__name__}"
        )
    n = int(workers or os.cpu_count() or 1)
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=bool(processes), dashboard_address=":0", silence_logs=40
    )  # logging.ERROR
    return Client(cluster), True, n


def _worker_slots(client) -> int:
    """Worker threads the cluster has now (0 when it cannot say)."""
    try:
        return int(sum(client.nthreads().values()))
    except Exception:
        return 0


#: structures tried in the driver for the user columns' schema before the run gives up
USER_SCHEMA_TRIES = 1000


#: structures featurized at a time by that search
USER_SCHEMA_BATCH = 64


def _probe_values(task: dict, beat=None) -> list:
    """[(position, the user's mapping, or the text of its error), ...] for the task's items that
    featurize, in order (the search for the user columns' schema; run like a partition, under the
    watchdog when a detector limit is in force)."""
    from ._stderr_capture import capture_stderr

    opts = task["opts"]
    fn = opts["add_columns"]
    db = _worker_db(opts["db_path"])
    done = []
    with capture_stderr(opts["capture_stderr"]):
        for j, item in _task_items(task, beat):
            try:
                row = _featurize_item(item, opts, db, None)
            except Exception:  # this structure fails in the run too
                continue
            done.append((j, row["_cell"], row["_result"]))
        if beat is not None:
            from ._watchdog import FINISHING

            beat(FINISHING)
        out: list = []
        for j, cell, r in done:
            try:
                out.append((j, fn(cell, r)))
            except Exception as exc:
                out.append((j, f"{type(exc).__name__}: {exc}"))
    return out


def _user_schema(items_iter, opts: dict, fn, carry: tuple):
    """(the items, unchanged, and the user columns' schema [(name, kind), ...]): the names of ``fn``'s
    mapping for the first structure of the input that featurizes, each column's kind from the first
    structure where it is not None ('number' when it is None in all of the first USER_SCHEMA_TRIES).
    Found in this process before the run (under the watchdog when a detector limit is in force), so
    it does not depend on the workers.  None when no structure featurizes at all."""
    from ._user_columns import infer_schema

    if not callable(fn):
        raise TypeError(
            f"add_columns must be a function fn(cell, result) -> mapping, got {type(fn).__name__}"
        )
    local = dict(opts, add_columns=fn, add_schema=None)
    limit, _ = _detector_timeout(opts)
    it = iter(items_iter)
    seen: list = []
    names: list[str] | None = None
    kinds: dict[str, str | None] = {}
    featurized, last_error = 0, None
    while len(seen) < USER_SCHEMA_TRIES and (names is None or None in kinds.values()):
        batch = list(itertools.islice(it, USER_SCHEMA_BATCH))
        if not batch:
            break
        seen.extend(batch)
        task = {"items": [pair[0] for pair in batch], "opts": local, "part": -1}
        if limit is None:
            results = _probe_values(task)
        else:
            from ._watchdog import run_guarded

            results, _ = run_guarded(_probe_values, task, limit)  # structures that hang are left out
        for _, got in results:
            featurized += 1
            if isinstance(got, str):  # the function raised: that structure fails in the run too
                last_error = got
                continue
            if names is None:  # the first mapping: its names (a bad name or value type is an error now)
                schema = infer_schema(got, carry)
                names, kinds = [n for n, _ in schema], dict(schema)
                continue
            try:
                schema = infer_schema(got, carry)
            except (TypeError, ValueError):  # that structure fails in the run
                continue
            if [n for n, _ in schema] == names:
                for n, k in schema:
                    if kinds[n] is None:
                        kinds[n] = k
    if names is None:
        if featurized:
            raise ValueError(
                f"add_columns raised on every structure tried ({featurized} that featurize), so its columns "
                f"cannot be typed; the last error: {last_error}"
            )
        if len(seen) >= USER_SCHEMA_TRIES:
            raise ValueError(
                f"add_columns: none of the first {USER_SCHEMA_TRIES} structures featurizes, so the columns' "
                "types cannot be taken from one"
            )
        return itertools.chain(seen, it), None
    return itertools.chain(seen, it), [(n, kinds[n] or "number") for n in names]


def _run(
    items_iter,
    *,
    output,
    opts,
    meta,
    total,
    partition_size,
    workers,
    scheduler,
    processes,
    progress,
    overwrite,
    carry_schema=None,
    add_columns=None,
) -> DatasetResult:
    """Compute and collect (or write) the partitions of ``items_iter`` ((Item, carried 1-row table or None)
    pairs); ``carry_schema``: the carried columns' arrow schema for every partition (None: no carry)."""
    t0 = time.perf_counter()
    carry = () if carry_schema is None else tuple(carry_schema.names)
    _check_scheduler(scheduler)
    if add_columns is not None:
        items_iter, schema = _user_schema(items_iter, opts, add_columns, tuple(carry))
        if schema is not None:  # None: no structure featurizes (every row is a failure)
            opts = dict(opts, add_columns=add_columns, add_schema=schema)
        # part of the dataset's identity: a restart must give the same names and kinds
        meta = dict(meta, add_columns=[list(x) for x in schema or []])
    out = None if output is None else Path(output)
    done: dict[int, Path] = {}
    if out is not None:
        io_.prepare_output(out, meta, overwrite)
        done = io_.done_parts(out)
    # the engine starts only when a partition is left to compute (a finished output starts no cluster)
    client, owned = None, False
    n_workers = 1 if scheduler == "sync" else int(workers or os.cpu_count() or 1)
    stats_all: list[dict] = []
    tables: dict[int, tuple] = {}
    skipped = 0
    bar = _Progress(sys.stderr.isatty() if progress is None else progress, total)
    engine_config = contextlib.ExitStack()
    if scheduler != "sync":
        engine_config.enter_context(_dask_config())
    try:

        def tasks():
            nonlocal skipped
            for part, chunk in enumerate(io_.iter_chunks(items_iter, partition_size)):
                if part in done:
                    skipped += 1
                    st = io_.part_stats(done[part])
                    stats_all.append(st)
                    bar.update(st.get("structures", len(chunk)), 0)
                    continue
                yield {
                    "part": part,
                    "items": [c[0] for c in chunk],
                    # one compact table of the partition's carried rows: a 1-row slice would pickle its
                    # whole parent batch into every task
                    "extra": None
                    if carry_schema is None
                    else _compact_rows([c[1] for c in chunk], carry_schema),
                    "carry_schema": carry_schema,
                    "opts": opts,
                    # absolute: a worker of an existing cluster may run in another directory
                    "out": None if out is None else str(out.absolute()),
                }

        failures = 0
        computed = 0

        def collect(res):
            nonlocal failures, computed
            st = res["stats"]
            stats_all.append(st)
            computed += st["structures"]
            failures += st["failures"]
            if out is None:
                tables[st["part"]] = (res["features"], res["failures"])
            bar.update(st["structures"], failures)

        it = tasks()
        first = next(it, None)
        if first is not None:
            client, owned, n_workers = _open_client(scheduler, workers, processes)
            it = itertools.chain([first], it)
        if client is None:
            for task in it:
                collect(_run_partition(task))
        else:
            from distributed import as_completed

            # partitions in flight: 2 per worker thread + 1, re-sized (at most once a second) as workers
            # join or leave an existing or adaptive cluster
            window = 2 * n_workers + 1
            checked = time.monotonic()
            pending = as_completed()

            def submit(task):
                key = f"basisdb-part-{task['part']}-{os.urandom(4).hex()}"
                pending.add(client.submit(_run_partition, task, pure=False, key=key))

            exhausted = False
            for task in it:
                submit(task)
                if pending.count() >= window:
                    break
            else:
                exhausted = True
            for fut in pending:
                collect(fut.result())
                fut.release()
                if exhausted:
                    continue
                if time.monotonic() - checked >= 1.0:
                    checked = time.monotonic()
                    slots = _worker_slots(client)
                    if slots:
                        n_workers = max(n_workers, slots)
                        window = 2 * slots + 1
                while pending.count() < window:
                    nxt = next(it, None)
                    if nxt is None:
                        exhausted = True
                        break
                    submit(nxt)
    finally:
        bar.close()
        if owned and client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
        engine_config.close()
    if client is None and scheduler != "sync" and not computed:
        n_workers = 0  # nothing was left to compute: no engine started
    summary = _summarize(stats_all, time.perf_counter() - t0, n_workers, skipped, scheduler, computed)
    if out is not None:
        return DatasetResult(summary, output=str(out))
    import pyarrow as pa

    parts = sorted(tables)
    feats = pa.concat_tables([tables[p][0] for p in parts]) if parts else io_.features_schema().empty_table()
    fails = pa.concat_tables([tables[p][1] for p in parts]) if parts else io_.failures_schema().empty_table()
    return DatasetResult(summary, feats, fails)


def _summarize(
    stats: list[dict], seconds: float, workers: int, skipped: int, scheduler, computed: int
) -> dict:
    fk: Counter[str] = Counter()
    wk: Counter[str] = Counter()
    samples: list[str] = []
    for s in stats:
        fk.update(s.get("failures_by_kind", {}))
        wk.update(s.get("warnings_by_kind", {}))
        for line in s.get("stderr_samples", []):
            if line not in samples and len(samples) < 5:
                samples.append(line)
    n = sum(s.get("structures", 0) for s in stats)
    off = sorted({s["watchdog_off"] for s in stats if s.get("watchdog_off")})
    return {
        "structures": n,
        "rows": sum(s.get("rows", 0) for s in stats),
        "failures": sum(s.get("failures", 0) for s in stats),
        "failures_by_kind": dict(sorted(fk.items())),
        "warnings_by_kind": dict(sorted(wk.items())),
        "stderr_lines": sum(s.get("stderr_lines", 0) for s in stats),
        "stderr_samples": samples,
        "partitions": len(stats),
        "partitions_skipped": skipped,
        "structures_computed": computed,
        "seconds": seconds,
        "task_seconds": sum(s.get("seconds", 0.0) for s in stats),
        "workers": workers,
        "scheduler": scheduler
        if isinstance(scheduler, str) or scheduler is None
        else type(scheduler).__name__,
        "watchdog_off": off,
    }


def format_summary(summary: dict) -> str:
    """The run's summary as a few lines of text (what the CLI prints)."""
    s = summary
    done_now = s.get("structures_computed", s["structures"])
    rate = done_now / s["seconds"] if s["seconds"] > 0 else float("nan")
    if s["partitions_skipped"] and not done_now:
        head = f"nothing left to do: all {s['structures']:,} structures were featurized by an earlier run"
    else:
        engine = "in this process" if s["scheduler"] == "sync" else f"{s['workers']} worker(s)"
        earlier = s["structures"] - done_now
        head = f"featurized {done_now:,} structures in {s['seconds']:.1f} s ({rate:,.0f}/s, {engine})" + (
            f", {earlier:,} more by an earlier run" if earlier else ""
        )
    lines = [
        f"{head}: {s['rows']:,} rows, {s['failures']:,} failures"
        + (
            " (" + ", ".join(f"{k}: {v}" for k, v in s["failures_by_kind"].items()) + ")"
            if s["failures_by_kind"]
            else ""
        )
    ]
    if s["warnings_by_kind"]:
        lines.append("warnings: " + ", ".join(f"{k}: {v}" for k, v in s["warnings_by_kind"].items()))
    if s["stderr_lines"]:
        lines.append(
            f"C-level stderr (spglib): {s['stderr_lines']} lines captured, e.g. {s['stderr_samples'][0]!r}"
        )
    if s["partitions_skipped"]:
        lines.append(f"resumed: {s['partitions_skipped']} of {s['partitions']} partitions were already done")
    for why in s.get("watchdog_off", []):
        lines.append(
            f"note: moyopy ran without the watchdog ({why}): a structure on which it never returns would stop "
            "the run (docs/DATASETS.md, section 2)"
        )
    return "\n".join(lines)


def _opts(
    kmax,
    symprec,
    features,
    encoding,
    db,
    min_distance,
    angle_tolerance,
    on_mismatch,
    capture,
    detector="spglib",
    detector_timeout=None,
):
    if symprec is FEATURIZE_DEFAULT:
        symprec = _featurize_default("symprec")
    if angle_tolerance is FEATURIZE_DEFAULT:
        angle_tolerance = _featurize_default("angle_tolerance")
    db_path = None
    if db is not None:
        db_path = str(getattr(db, "path", db))
    opts = {
        "kmax": None if kmax is None else int(kmax),
        "symprec": float(symprec),
        "features": bool(features),
        "encoding": bool(encoding),
        "db_path": db_path,
        "min_distance": float(min_distance),
        "angle_tolerance": None if angle_tolerance is None else float(angle_tolerance),
        "on_mismatch": on_mismatch,
        "capture_stderr": bool(capture),
    }
    if detector != "spglib":  # recorded (and compared on resume) only when not the default
        from ._detectors import check_detector

        opts["detector"] = check_detector(detector)
    if detector_timeout is not None:
        if (
            isinstance(detector_timeout, (bool, np.bool_))
            or not isinstance(detector_timeout, (int, float, np.integer, np.floating))
            or not np.isfinite(detector_timeout)
            or detector_timeout < 0
        ):
            raise ValueError(
                f"detector_timeout must be None, 0 (no limit) or a positive number of seconds, got {detector_timeout!r}"
            )
        opts["detector_timeout"] = float(detector_timeout)
    return opts


def _resolve_kmax(opts):
    """The K actually used (the artifact's when None), so restarts compare like with like."""
    if opts["features"] or opts["encoding"]:
        # checked here, before any work: a K above the artifact's would fail every structure
        opts["kmax"] = _worker_db(opts["db_path"])._check_kmax(opts["kmax"])
    return opts


def _options_and_meta(sources: dict, partition_size: int, *featurize_options) -> tuple[dict, dict]:
    """The per-structure options (``_opts``, K resolved) and the dataset's identity written to
    ``_dataset.json`` (layout, where the structures come from, partition size, options; a restart
    must match it)."""
    opts = _resolve_kmax(_opts(*featurize_options))
    meta = {
        "layout": io_.LAYOUT,
        **sources,
        "partition_size": int(partition_size),
        # how a run is carried out, not what it computes: a restart may change them
        **{k: v for k, v in opts.items() if k not in ("capture_stderr", "db_path", "detector_timeout")},
    }
    return opts, meta


def featurize_dataset(
    inputs,
    output=None,
    *,
    kmax: int | None = None,
    symprec=FEATURIZE_DEFAULT,
    features: bool = True,
    encoding: bool = False,
    cif_column: str = "cif",
    id_column: str | None = None,
    carry=(),
    partition_size: int = DEFAULT_PARTITION_SIZE,
    workers: int | None = None,
    scheduler=None,
    processes: bool = True,
    progress: bool | None = None,
    overwrite: bool = False,
    db=None,
    min_distance: float = 0.1,
    angle_tolerance=FEATURIZE_DEFAULT,
    on_mismatch: str = "warn",
    capture_stderr: bool = True,
    detector: str = "spglib",
    detector_timeout: float | None = None,
    add_columns=None,
) -> DatasetResult:
    """Featurize every structure of files, folders and globs (what ``basisdb featurize`` runs).

    Args:
        inputs: a path or a list of them: CIF files, folders (their ``*.cif`` and ``*.mcif`` files,
            recursively), globs, CSV or Parquet tables with a CIF column (``cif_column``; ids from
            ``id_column``, default 'material_id' or 'id' when present, else FILE:ROW), or any file ASE
            reads as a sequence (extxyz, .traj, an ASE database).  ``carry``: table columns copied into
            the output (targets); for ASE files, ``atoms.info[name]`` or else the calculator's result
            (extxyz energy, stress, ...), numbers as float64 and arrays as flat lists of float64.
        output: the dataset folder (restartable; see docs/DATASETS.md), or None to return the tables.
        kmax, symprec, min_distance, angle_tolerance, on_mismatch, detector: as for ``featurize``
            (symprec and angle_tolerance default to featurize's own defaults, recorded in
            OUT/_dataset.json and each row).
        features: store per-atom features (float32); False stores only the canonical positions, group
            and lattice (what ``basisdb.torch.InvariantEncoder`` needs).  encoding: also store the real
            shared box encoding ``basisdb.shared_encoding`` (float32, (2K+1)**3 per atom).
        workers: LocalCluster size (default: CPU count); processes=False: threads instead of processes.
        scheduler: None/'local' (a LocalCluster for this run), 'sync' (this process, no Dask), an
            address 'tcp://host:8786' or a ``distributed.Client`` (an existing cluster: ``output`` must be
            on a filesystem the workers see).
        progress: a progress bar on stderr (default: when stderr is a terminal).
        detector_timeout: seconds a structure may take before it is stopped and recorded as a failure
            (``TimeoutError``; a structure that crashes its process: ``ChildProcessError``) while the run
            goes on.  None: ``MOYOPY_TIMEOUT`` (30 s) with ``detector='moyopy'``, which can loop forever
            on a structure, and no limit with spglib; 0: no limit.  Enforced by computing each partition
            in a forked child (Linux; not in a process that runs partitions in several threads: the
            summary's ``watchdog_off`` says where moyopy ran without it).  Not part of the dataset's
            identity: a restart may change it (docs/DATASETS.md, section 2).
        add_columns: ``fn(cell, result) -> {name: value}``, called on the workers for every structure
            that featurizes: ``cell`` the structure as read (lattice (3, 3) Angstrom, fractional positions
            (n, 3), atomic numbers (n,)), ``result`` its ``Featurized`` (features included when
            ``features``).  The values become columns of the features table: bools (bool), numbers
            (float64), strings, numeric arrays (list<float64>, flattened row-major), None (null); names
            and kinds are those of the first structure that featurizes (tried in this process before
            the run) and are part of the dataset's identity; a structure whose mapping differs, or on
            which ``fn`` raises, is a failure row (its message starts 'add_columns:').  ``fn`` must pickle
            (cloudpickle: a lambda or closure will do) for Dask workers and the watchdog's child.
    """
    io_.require_pyarrow()
    _check_options(kmax, symprec, partition_size, workers, on_mismatch)
    carry = tuple(carry or ())
    files = io_.expand_inputs(inputs)
    opts, meta = _options_and_meta(
        {
            "inputs": io_.fingerprint(files),
            "cif_column": cif_column,
            "id_column": id_column,
            "carry": list(carry),
        },
        partition_size,
        kmax,
        symprec,
        features,
        encoding,
        db,
        min_distance,
        angle_tolerance,
        on_mismatch,
        capture_stderr,
        detector,
        detector_timeout,
    )
    # every table's columns checked and the carried columns' types fixed before anything is written
    schema = io_.carry_schema(files, carry, cif_column, id_column)
    if schema is not None:  # part of the dataset's identity (a restart must write the same types)
        meta["carry_types"] = [str(f.type) for f in schema]
    total = (
        io_.count_items(files, cif_column)
        if (progress or (progress is None and sys.stderr.isatty()))
        else None
    )
    items = io_.iter_file_items(files, cif_column=cif_column, id_column=id_column, carry_schema=schema)
    return _run(
        items,
        output=output,
        opts=opts,
        meta=meta,
        total=total,
        partition_size=int(partition_size),
        workers=workers,
        scheduler=scheduler,
        processes=processes,
        progress=progress,
        overwrite=overwrite,
        carry_schema=schema,
        add_columns=add_columns,
    )


_NO_ID = object()


def featurize_many(
    structures: Iterable,
    output=None,
    *,
    ids: Iterable | None = None,
    kmax: int | None = None,
    symprec=FEATURIZE_DEFAULT,
    features: bool = True,
    encoding: bool = False,
    partition_size: int = DEFAULT_PARTITION_SIZE,
    workers: int | None = None,
    scheduler="sync",
    processes: bool = True,
    progress: bool | None = None,
    overwrite: bool = False,
    db=None,
    min_distance: float = 0.1,
    angle_tolerance=FEATURIZE_DEFAULT,
    on_mismatch: str = "warn",
    capture_stderr: bool = True,
    detector: str = "spglib",
    detector_timeout: float | None = None,
    add_columns=None,
) -> DatasetResult:
    """Featurize an iterable of structures (anything ``featurize`` accepts: ASE Atoms, pymatgen
    Structures, (lattice, positions, numbers), CIF paths or text).

    Returns a DatasetResult: ``.records`` (FeatureRecord, input order, failures left out),
    ``.features`` / ``.failures`` (pyarrow Tables) and ``.summary``; with ``output`` the dataset is
    written there instead (the iterable must give the same structures when a run is resumed).
    Default ``scheduler='sync'`` (this process); ``scheduler=None`` starts a LocalCluster of
    ``workers`` (the structures must pickle).  Other options as for ``featurize_dataset``.
    """
    io_.require_pyarrow()
    _check_options(kmax, symprec, partition_size, workers, on_mismatch)
    if isinstance(structures, (str, os.PathLike)) or (
        isinstance(structures, tuple)
        and len(structures) == 3
        and not isinstance(structures[0], (str, os.PathLike))
    ):
        raise TypeError(
            "featurize_many takes an iterable of structures; for one structure use basisdb.featurize, "
            "for files, folders and tables basisdb.featurize_dataset"
        )
    opts, meta = _options_and_meta(
        {"inputs": "python iterable"},
        partition_size,
        kmax,
        symprec,
        features,
        encoding,
        db,
        min_distance,
        angle_tolerance,
        on_mismatch,
        capture_stderr,
        detector,
        detector_timeout,
    )
    total = len(structures) if isinstance(structures, Sized) else None
    if ids is not None and isinstance(ids, Sized) and total is not None and len(ids) != total:
        raise ValueError(f"ids has {len(ids)} entries but there are {total} structures")
    id_iter = iter(ids) if ids is not None else None

    def items():
        for i, s in enumerate(structures):
            if id_iter is None:
                ident = str(i)
            else:
                nxt = next(id_iter, _NO_ID)
                if nxt is _NO_ID:
                    raise ValueError(f"ids ran out at structure {i}: give one id per structure")
                ident = str(nxt)
            src = (
                os.fspath(s)
                if isinstance(s, os.PathLike) or (isinstance(s, str) and "\n" not in s and len(s) < 4096)
                else f"item {i}"
            )
            yield io_.Item(i, ident, src, s), None

    return _run(
        items(),
        output=output,
        opts=opts,
        meta=meta,
        total=total,
        partition_size=int(partition_size),
        workers=workers,
        scheduler=scheduler,
        processes=processes,
        progress=progress,
        overwrite=overwrite,
        add_columns=add_columns,
    )


# ------------------------------------------------------------------ reading back
def read_features(path, columns=None, as_pandas: bool = False):
    """The features table of a dataset folder (partitions in order, so rows in input order).

    columns: a subset of columns (e.g. without 'features' to save memory).  as_pandas: a DataFrame.
    Partitions still being written by a running or interrupted run are never read half-written.
    """
    io_.require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = io_.dataset_files(path)
    if columns is not None:
        have = (pq.read_schema(files[0]) if files else io_.features_schema()).names
        unknown = [c for c in columns if c not in have]
        if unknown:
            raise ValueError(f"{path}: no column {unknown[0]!r} (columns: {', '.join(have)})")
    if not files:
        t = io_.features_schema().empty_table()
        t = t if columns is None else t.select(list(columns))
    else:
        t = pa.concat_tables(
            [pq.read_table(f, columns=None if columns is None else list(columns)) for f in files]
        )
        t = t.replace_schema_metadata(None)
    return t.to_pandas() if as_pandas else t


def read_failures(path, as_pandas: bool = False):
    """The failures table (index, id, source, error_type, error) of the done partitions."""
    io_.require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = io_.dataset_files(path, io_.FAILURES_DIR)
    t = pa.concat_tables([pq.read_table(f) for f in files]) if files else io_.failures_schema().empty_table()
    return t.to_pandas() if as_pandas else t


def read_summary(path) -> dict:
    """The summary of a dataset folder from its partitions' statistics (no timing of the last run)."""
    stats = [io_.part_stats(f) for f in io_.dataset_files(path)]
    return _summarize(stats, 0.0, 0, 0, None, 0)


@dataclass(frozen=True, eq=False)
class FeatureRecord:
    """One row of a features dataset, with the ``Featurized`` fields that ``basisdb.torch.collate``
    uses (positions, numbers, hall_number, orbit, n_atoms) and the rest of the row."""

    index: int
    id: str
    hall_number: int
    number: int
    lattice: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    orbit: np.ndarray
    features: np.ndarray | None = None
    encoding: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    def __repr__(self) -> str:
        width = None if self.features is None else self.features.shape[1]
        return (
            f"FeatureRecord(index={self.index}, id={self.id!r}, hall_number={self.hall_number}, "
            f"n_atoms={self.n_atoms}, n_features={width}, extra={sorted(self.extra)})"
        )


class _Columns:
    """A features table as flat numpy arrays with offsets (cheap row access, picklable)."""

    def __init__(self, table):
        import pyarrow as pa

        def flat(name: str, tail: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            col = table.column(name).combine_chunks() if table.num_rows else None
            if col is None:
                return np.zeros((0,) + tail), np.zeros(1, dtype=np.int64)
            offsets = np.asarray(col.offsets).astype(np.int64)
            values = col.values
            while isinstance(values.type, (pa.FixedSizeListType,)):
                values = values.flatten()
            return np.asarray(values.to_numpy(zero_copy_only=False)).reshape((-1,) + tail), offsets

        self.n = table.num_rows
        names = table.column_names
        self.index = table.column("index").to_numpy() if "index" in names else np.arange(self.n)
        self.ids = table.column("id").to_pylist() if "id" in names else [str(i) for i in range(self.n)]
        self.hall = table.column("hall_number").to_numpy().astype(np.int64)
        self.number = (
            table.column("number").to_numpy().astype(np.int64)
            if "number" in names
            else np.zeros(self.n, np.int64)
        )
        lat = (
            table.column("lattice").combine_chunks().flatten().flatten().to_numpy() if self.n else np.zeros(0)
        )
        self.lattice = np.asarray(lat, dtype=np.float64).reshape(-1, 3, 3)
        self.positions, self.atom_offsets = flat("positions", (3,))
        self.numbers, _ = flat("numbers", ())
        self.orbit = flat("orbit", ())[0] if "orbit" in names else np.zeros(len(self.numbers))
        self.features = self.encoding = None
        if "features" in names and table.column("features").null_count < self.n:
            self.features, self.feature_offsets = flat("features", ())
            self.n_basis = table.column("n_basis").to_numpy(zero_copy_only=False)
        if "encoding" in names and table.column("encoding").null_count < self.n:
            self.encoding, self.encoding_offsets = flat("encoding", ())
        known = {
            "index",
            "id",
            "hall_number",
            "number",
            "lattice",
            "positions",
            "numbers",
            "orbit",
            "features",
            "encoding",
            "n_basis",
        }
        self.extra = {name: table.column(name).to_pylist() for name in names if name not in known}

    def record(self, i: int) -> FeatureRecord:
        lo, hi = self.atom_offsets[i], self.atom_offsets[i + 1]
        feats = enc = None
        if self.features is not None:
            a, b = self.feature_offsets[i], self.feature_offsets[i + 1]
            feats = self.features[a:b].reshape(hi - lo, -1) if b > a else None
        if self.encoding is not None:
            a, b = self.encoding_offsets[i], self.encoding_offsets[i + 1]
            enc = self.encoding[a:b].reshape(hi - lo, -1) if b > a else None
        return FeatureRecord(
            index=int(self.index[i]),
            id=self.ids[i],
            hall_number=int(self.hall[i]),
            number=int(self.number[i]),
            lattice=self.lattice[i],
            positions=self.positions[lo:hi],
            numbers=self.numbers[lo:hi].astype(np.int64),
            orbit=self.orbit[lo:hi].astype(np.int64),
            features=feats,
            encoding=enc,
            extra={k: v[i] for k, v in self.extra.items()},
        )


def records(table) -> list[FeatureRecord]:
    """FeatureRecord objects of every row of a features table (``read_features`` or ``.features``)."""
    cols = _Columns(table)
    return [cols.record(i) for i in range(cols.n)]


class FeatureDataset:
    """A map-style PyTorch dataset over a features dataset folder (or a features table).

    ``ds[i]`` is a FeatureRecord; ``DataLoader(ds, batch_size=..., collate_fn=ds.collate)`` gives the
    batch dictionary of ``basisdb.torch.collate`` (positions, hall, numbers, crystal, orbit) plus
    ``lattice`` (B, 3, 3), ``index`` (B,), ``targets`` (B, len(targets)) when ``targets`` names carried
    numeric columns (NaN where a value is missing: mask it in the loss), and ``features`` (N, width,
    zero-padded) when ``with_features``.  Column j of ``features`` is basis function j of each crystal's
    own group, a different function for different groups: for one input space across groups use the
    shared encoding (``with_encoding``, or ``basisdb.torch.InvariantEncoder`` on the positions).
    ValueError at construction: a target that is missing or not numeric, ``with_features`` /
    ``with_encoding`` on a dataset written without them.  Works with DataLoader
    workers (fork or spawn: the arrays pickle).  By default the large 'features' and 'encoding'
    columns are not loaded.  From a folder, only the columns it needs, ``targets`` and ``columns`` (other
    columns for ``FeatureRecord.extra``: carried or ``add_columns`` ones) are read; from a table, every
    column it has.
    """

    def __init__(
        self,
        source,
        *,
        targets=(),
        with_features: bool = False,
        with_encoding: bool = False,
        dtype=None,
        columns=(),
    ):
        if isinstance(source, (str, os.PathLike)):
            cols = [
                "index",
                "id",
                "hall_number",
                "number",
                "lattice",
                "positions",
                "numbers",
                "orbit",
                "n_basis",
            ]
            cols += (
                (["features"] if with_features else [])
                + (["encoding"] if with_encoding else [])
                + list(targets)
                + [c for c in columns if c not in targets]
            )
            table = read_features(source, columns=cols)
        else:
            table = source
        self.targets = tuple(targets)
        self.with_features, self.with_encoding = with_features, with_encoding
        self.dtype = dtype
        from pyarrow import types as pa_types

        have = table.column_names
        for t in self.targets:
            if t not in have:
                raise ValueError(f"no column {t!r} for a target (columns: {', '.join(have)})")
            kind = table.schema.field(t).type
            if not (pa_types.is_integer(kind) or pa_types.is_floating(kind) or pa_types.is_boolean(kind)):
                raise ValueError(
                    f"target {t!r} holds {kind}, not numbers (targets are numeric columns; missing values "
                    "(null) become NaN)"
                )
        for key, wanted in (("features", with_features), ("encoding", with_encoding)):
            if (
                wanted
                and table.num_rows
                and (key not in have or table.column(key).null_count == table.num_rows)
            ):
                raise ValueError(
                    f"with_{key}=True, but the dataset has no {key} (it was written with "
                    f"{'--no-features' if key == 'features' else 'no --encoding'})"
                )
        self._cols = _Columns(table)

    def __len__(self) -> int:
        return self._cols.n

    def __getitem__(self, i):
        n = self._cols.n
        if isinstance(i, (int, np.integer)):
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for a dataset of {n} rows")
            return self._cols.record(int(i) % n)
        raise TypeError(f"FeatureDataset indices must be integers, got {type(i).__name__}")

    def collate(self, batch):
        """basisdb.torch.collate of the records, plus lattice, index, targets, features."""
        import torch

        from .torch import _dtype, collate

        out = collate(batch, dtype=self.dtype)
        out["lattice"] = torch.as_tensor(
            np.stack([r.lattice for r in batch]) if batch else np.zeros((0, 3, 3)), dtype=_dtype(self.dtype)
        )
        out["index"] = torch.as_tensor([r.index for r in batch], dtype=torch.long)
        if self.targets:
            nan = float("nan")  # a missing target (null) is NaN: mask it in the loss
            vals = [[nan if r.extra[t] is None else float(r.extra[t]) for t in self.targets] for r in batch]
            out["targets"] = torch.as_tensor(vals, dtype=_dtype(self.dtype))
        for key in (("features",) if self.with_features else ()) + (
            ("encoding",) if self.with_encoding else ()
        ):
            arrs = [getattr(r, key) for r in batch]
            width = max((a.shape[1] for a in arrs if a is not None), default=0)
            padded = np.zeros((sum(r.n_atoms for r in batch), width), dtype=np.float32)
            row = 0
            for r, a in zip(batch, arrs):
                if a is not None:
                    padded[row : row + r.n_atoms, : a.shape[1]] = a
                row += r.n_atoms
            out[key] = torch.as_tensor(padded, dtype=_dtype(self.dtype))
        return out
