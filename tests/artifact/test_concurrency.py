"""Concurrent readers: processes (fork and spawn), threads, and a rebuild under their feet.

Every reader opens, looks up and evaluates several settings; the results (a SHA-256 of
the exact arrays and of the evaluated features) must be identical to a single reader's.
A Database opened before ``fork()`` is shared by the children, which reopen the HDF5 file
themselves.  A build that atomically replaces the artifact while readers use it must not
disturb them: open handles keep reading the old file; a new ``open`` gets the new one; a
forked child of a stale handle refuses to mix the two files.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import env_without_artifact_override

import basisdb
from basisdb.builder import build_database

HALLS = [1, 2, 81, 460, 488, 523, 526]
KMAX = 4
N_WORKERS = 8
TIMEOUT = 120
X = np.random.default_rng(7).random((40, 3))

_SHARED: basisdb.Database | None = None  # opened in the parent before fork()


def _digests(db: basisdb.Database, halls, kmax=KMAX) -> dict[int, str]:
    out = {}
    for h in halls:
        b = db.get(hall=h, kmax=kmax)
        h256 = hashlib.sha256()
        for a in (b.frequencies, b.orbit_ptr, b.phases, b.extinct, b.evaluate(X), b.evaluate(X, real=False)):
            h256.update(np.ascontiguousarray(a).tobytes())
        out[h] = h256.hexdigest()
    return out


def _order(i: int) -> list[int]:
    return HALLS[i % len(HALLS) :] + HALLS[: i % len(HALLS)]


# ------------------------------------------------------------------ workers (module level: picklable)
def _fork_shared_worker(i: int, q, halls=None, kmax=KMAX, clear=False) -> None:
    try:
        db = _SHARED
        inherited_pid = db._pid
        if clear:  # forget what the parent had cached: every lookup reads the file
            db._cache.clear()
        result = _digests(db, halls or _order(i), kmax=kmax)
        q.put((i, os.getpid(), inherited_pid, db._pid, result, None))
    except BaseException as exc:  # report, never hang the parent
        q.put((i, os.getpid(), None, None, None, f"{type(exc).__name__}: {exc}"))


def _own_worker(path: str, i: int, q) -> None:
    try:
        with basisdb.open(path) as db:
            q.put((i, os.getpid(), None, None, _digests(db, _order(i)), None))
    except BaseException as exc:
        q.put((i, os.getpid(), None, None, None, f"{type(exc).__name__}: {exc}"))


def _pickled_worker(db: basisdb.Database, i: int, q) -> None:
    try:
        q.put((i, os.getpid(), None, db._pid, _digests(db, _order(i)), None))
    except BaseException as exc:
        q.put((i, os.getpid(), None, None, None, f"{type(exc).__name__}: {exc}"))


def _loop_reader(path: str, ready, stop, q) -> None:
    """Open before the rebuild, then keep re-reading (cache cleared) until told to stop."""
    try:
        db = basisdb.open(path)
        rounds, seen = 0, set()
        ready.set()
        while not stop.is_set() or rounds < 3:
            db._cache.clear()
            seen.add(tuple(sorted(_digests(db, [s.hall_number for s in db.settings()], kmax=2).items())))
            rounds += 1
        q.put((rounds, seen, None))
    except BaseException as exc:
        q.put((0, set(), f"{type(exc).__name__}: {exc}"))


def _collect(q, procs, n) -> list:
    out = []
    deadline = time.monotonic() + TIMEOUT
    while len(out) < n:
        try:
            out.append(q.get(timeout=max(1.0, deadline - time.monotonic())))
        except Exception:  # queue.Empty
            break
    for p in procs:
        p.join(timeout=TIMEOUT)
        if p.is_alive():
            p.kill()
    assert len(out) == n, f"only {len(out)} of {n} workers reported"
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return out


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def shipped_path() -> str:
    old = os.environ.pop("BASISDB_PATH", None)
    try:
        return str(basisdb.default_path())
    finally:
        if old is not None:
            os.environ["BASISDB_PATH"] = old


@pytest.fixture(scope="module")
def reference(shipped_path) -> dict[int, str]:
    with basisdb.open(shipped_path) as db:
        return _digests(db, HALLS)


# ------------------------------------------------------------------ processes
@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork() on this platform")
def test_fork_children_share_a_database_opened_before_fork(shipped_path, reference):
    global _SHARED
    _SHARED = basisdb.open(shipped_path)
    try:
        _SHARED.get(hall=523, kmax=KMAX)  # the parent's h5py file is open and a basis is cached
        parent_pid = _SHARED._pid
        assert parent_pid == os.getpid()
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        procs = [ctx.Process(target=_fork_shared_worker, args=(i, q)) for i in range(N_WORKERS)]
        for p in procs:
            p.start()
        results = _collect(q, procs, N_WORKERS)
        for _i, pid, inherited, after, digests, err in results:
            assert err is None, err
            assert inherited == parent_pid  # the child started with the parent's handle...
            assert after == pid != parent_pid  # ...and reopened the file in its own process
            assert digests == {h: reference[h] for h in digests}
        assert len({r[1] for r in results}) == N_WORKERS
        # the parent's handle is untouched by the children
        assert _SHARED._pid == os.getpid()
        _SHARED._cache.clear()
        assert _digests(_SHARED, HALLS) == reference
    finally:
        _SHARED.close()
        _SHARED = None


@pytest.mark.parametrize("method", [m for m in ("fork", "spawn") if m in mp.get_all_start_methods()])
def test_processes_opening_their_own_database(shipped_path, reference, method):
    ctx = mp.get_context(method)
    q = ctx.Queue()
    procs = [ctx.Process(target=_own_worker, args=(shipped_path, i, q)) for i in range(N_WORKERS)]
    for p in procs:
        p.start()
    for _i, _pid, _, _, digests, err in _collect(q, procs, N_WORKERS):
        assert err is None, err
        assert digests == reference


def test_spawned_processes_receive_a_pickled_database(shipped_path, reference):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with basisdb.open(shipped_path) as db:
        db.get(225)
        procs = [ctx.Process(target=_pickled_worker, args=(db, i, q)) for i in range(N_WORKERS)]
        for p in procs:
            p.start()
        results = _collect(q, procs, N_WORKERS)
    for _i, pid, _, after, digests, err in results:
        assert err is None, err
        assert after == pid
        assert digests == reference


# ------------------------------------------------------------------ threads
def test_threads_share_one_database(shipped_path, reference):
    db = basisdb.open(shipped_path)  # nothing cached: the threads race on the first reads
    barrier = threading.Barrier(N_WORKERS)

    def work(i):
        barrier.wait(timeout=TIMEOUT)
        return _digests(db, _order(i))

    with ThreadPoolExecutor(N_WORKERS) as ex:
        results = list(ex.map(work, range(N_WORKERS), timeout=TIMEOUT))
    assert all(r == reference for r in results)
    # every (setting, kmax) is cached once: all threads got the same Basis objects
    assert len({id(db.get(hall=523, kmax=KMAX)) for _ in range(3)}) == 1
    db.close()


def test_threads_with_their_own_databases(shipped_path, reference):
    def work(i):
        with basisdb.open(shipped_path) as db:
            return _digests(db, _order(i))

    with ThreadPoolExecutor(N_WORKERS) as ex:
        assert all(r == reference for r in ex.map(work, range(N_WORKERS), timeout=TIMEOUT))


# ------------------------------------------------------------------ a rebuild while readers read


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="no fork() on this platform")
def test_rebuild_while_readers_read(tmp_path):
    old_halls, new_halls = [1, 2, 81, 523], [1, 2, 81, 460, 523]
    path, ref_new_path = tmp_path / "db.h5", tmp_path / "ref_new.h5"
    build_database(path, kmax=3, halls=old_halls, jobs=1)
    build_database(ref_new_path, kmax=2, halls=new_halls, jobs=1)
    with basisdb.open(path) as db:
        old = _digests(db, old_halls, kmax=2)
    with basisdb.open(ref_new_path) as db:
        new = _digests(db, new_halls, kmax=2)
    assert old != new

    # readers that open before the rebuild: 3 processes and an in-process handle
    ctx = mp.get_context("fork")
    q, stop = ctx.Queue(), ctx.Event()
    readys = [ctx.Event() for _ in range(3)]
    procs = [ctx.Process(target=_loop_reader, args=(str(path), r, stop, q)) for r in readys]
    for p in procs:
        p.start()
    assert all(r.wait(TIMEOUT) for r in readys)
    stale = basisdb.open(path)  # opened (index read) before the rebuild, payloads read after it
    inode = path.stat().st_ino

    cmd = [
        sys.executable,
        "-m",
        "basisdb",
        "build",
        "--kmax",
        "2",
        "--halls",
        "1,2,81,460,523",
        "--jobs",
        "1",
        "-q",
        "-o",
        str(path),
    ]
    build = subprocess.run(
        cmd, capture_output=True, text=True, env=env_without_artifact_override(), timeout=TIMEOUT
    )
    assert build.returncode == 0, build.stderr
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert path.read_bytes() == ref_new_path.read_bytes()

    # the open handle still reads the old file, exactly
    assert stale.kmax == 3
    assert _digests(stale, old_halls, kmax=2) == old
    # a reader opened after the rename gets the new file
    with basisdb.open(path) as fresh:
        assert fresh.kmax == 2
        assert [s.hall_number for s in fresh.settings()] == new_halls
        assert _digests(fresh, new_halls, kmax=2) == new

    stop.set()
    for rounds, seen, err in _collect(q, procs, len(procs)):
        assert err is None, err
        assert rounds >= 3
        assert seen == {tuple(sorted(old.items()))}, "a reader saw numbers other than the old file's"

    # a child forked from the stale handle cannot reach the old file by its path: what the
    # parent had cached it still has, but a read from the file is refused, not mixed
    child_q = ctx.Queue()
    global _SHARED
    _SHARED = stale
    try:
        child = ctx.Process(target=_fork_shared_worker, args=(0, child_q, old_halls, 2, True))
        child.start()
        ((_, _, _, _, digests, err),) = _collect(child_q, [child], 1)
    finally:
        _SHARED = None
        stale.close()
    assert digests is None and "replaced by a different artifact" in err, err
    assert not list(tmp_path.glob(".*.partial"))


def test_pickled_database_refuses_a_replaced_file(tmp_path):
    import pickle

    path = tmp_path / "db.h5"
    build_database(path, kmax=2, halls=[1, 2], jobs=1)
    db = basisdb.open(path)
    state = pickle.dumps(db)
    db.close()
    assert pickle.loads(state).kmax == 2  # same file: fine
    build_database(path, kmax=1, halls=[1, 2], jobs=1)
    with pytest.raises(basisdb.ArtifactError, match="different artifact"):
        pickle.loads(state)
