"""Partitions computed in a forked child process, with a time limit per structure (the dataset guard).

moyopy 0.21 can loop forever on a structure (carbon_24 C-170350-1491-29 and C-141061-9666-13 with any
angle tolerance), and it holds the GIL while it does: no thread, timer or signal handler of the process
running it gets to run again, so a dataset run with ``detector="moyopy"`` would never finish.  Only
another process can stop it.  ``run_guarded`` hands each partition to a child process forked from the
caller, which computes it and reports every structure it starts; the caller waits at most ``limit``
seconds between reports.  When a structure takes longer, or the child dies (a crash in C or Rust code),
the child is killed, that structure becomes a failure, and a new child computes the rest of the
partition (the work done before the hang is done again: hangs are rare).  The child is kept for the
next partitions (its caches of settings and cosets stay warm) and exits when the caller does.  The
rows of the structures that finish are exactly those of an unguarded run.

Linux only (``can_fork``); the caller decides when a child is safe (not from a process running several
partitions in threads: a fork there could copy a lock another thread holds).  The limit applies while
a structure is being computed: not to the child's start, nor to what follows the last structure (the
features evaluated per basis, the user's columns, the tables), which ``beat(FINISHING)`` announces.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["can_fork", "run_guarded"]

# reports, child to parent: _BEAT + int32 j (it starts the j-th structure); _FRAME + int64 length +
# payload (_RESULT or _ERROR + a pickle).  Requests, parent to child: int64 length + pickle((fn, task)).
_BEAT = b"b"
_FRAME = b"f"
_RESULT = b"r"
_ERROR = b"e"

#: ``beat(FINISHING)``: the structures are done, the partition is being finished (no limit from here)
FINISHING = -2
#: seconds a child may take to start its first structure before it is given up (a fork that went wrong)
START_LIMIT = 120.0

# one child per thread: on Linux a child dies with the thread that forked it (PR_SET_PDEATHSIG), so a
# child shared between threads would be killed under another thread's partition when its own exits
_LOCAL = threading.local()
_ALL: list = []  # every child started, for the exit handler
_ALL_LOCK = threading.Lock()


def can_fork() -> bool:
    """Linux only: there a child dies with the thread that forked it (PR_SET_PDEATHSIG), and forking a
    process that has loaded numpy is safe; macOS's system frameworks are not fork-safe (Python itself
    spawns there) and have no such signal, and Windows has no fork."""
    return hasattr(os, "fork") and sys.platform.startswith("linux")


def _dumps(obj: Any) -> bytes:
    """Pickled for the child: with cloudpickle when it is there (Dask's; it also pickles the user's
    lambdas and closures, e.g. add_columns), else with pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when its parent dies (even while it loops in a detector)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover
        pass


def _serve(requests: int, reports: int) -> None:  # pragma: no cover - runs in the child
    """The child's loop: compute each request, report; exit at the end of the requests (``os._exit``)."""
    code = 0
    try:
        _die_with_parent()
        while True:
            try:
                (n,) = struct.unpack("<q", _read_exact(requests, 8))
                fn, task = pickle.loads(_read_exact(requests, n))
            except EOFError:
                break

            def beat(j: int) -> None:
                os.write(reports, _BEAT + struct.pack("<i", j))

            try:
                payload = _RESULT + pickle.dumps(fn(task, beat), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # reported to the parent, which raises it there
                payload = _ERROR + pickle.dumps(f"{type(exc).__name__}: {exc}")
            _write_all(reports, _FRAME + struct.pack("<q", len(payload)) + payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


class _Server:
    """A forked child that computes requests until its request pipe closes."""

    def __init__(self) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12: fork with threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(req_w)
            os.close(rep_r)
            _serve(req_r, rep_w)
        os.close(req_r)
        os.close(rep_w)
        self.pid, self.requests, self.reports = pid, req_w, rep_r
        self.owner = os.getpid()

    def close(self, kill: bool = False) -> None:
        if os.getpid() != self.owner:  # a fork of the owner (the child itself): not ours to close
            return
        for fd in (self.requests, self.reports):
            with contextlib.suppress(OSError):
                os.close(fd)
        try:
            if kill:
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass

    def run(self, fn: Callable, task: Any, limit: float) -> tuple[str, Any, int]:
        """One request.  Returns ('ok', result, -), ('error', message, -), ('hung', seconds, j) or
        ('died', status, j): j the position of the structure being computed (-1: before the first)."""
        data = _dumps((fn, task))
        try:
            _write_all(self.requests, struct.pack("<q", len(data)) + data)
        except BrokenPipeError:
            return "died", self._status(), -1
        current, buf = -1, b""
        started = time.monotonic()
        while True:
            # the limit holds while a structure is computed; the start has its own, the finish none
            wait = limit if current >= 0 else (START_LIMIT if current == -1 else None)
            ready, _, _ = select.select([self.reports], [], [], wait)
            if not ready:
                return "hung", time.monotonic() - started, current
            chunk = os.read(self.reports, 1 << 16)
            if not chunk:
                return "died", self._status(), current
            buf += chunk
            while buf[:1] == _BEAT and len(buf) >= 5:
                current = struct.unpack("<i", buf[1:5])[0]
                buf = buf[5:]
                started = time.monotonic()
            if not buf or buf[:1] == _BEAT:
                continue
            if buf[:1] != _FRAME:
                raise RuntimeError("the partition's child process wrote an unexpected report")
            # the result: read to its end without a limit (the child has finished computing)
            try:
                if len(buf) < 9:
                    buf += _read_exact(self.reports, 9 - len(buf))
                (n,) = struct.unpack("<q", buf[1:9])
                payload = buf[9:]
                if len(payload) < n:
                    payload += _read_exact(self.reports, n - len(payload))
            except EOFError:  # it died while sending
                return "died", self._status(), current
            kind, body = payload[:1], payload[1:]
            return ("ok" if kind == _RESULT else "error"), pickle.loads(body), current

    def alive(self) -> bool:
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def _status(self) -> int:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            status = 0
        return status


def _status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"signal {sig}: {signal.Signals(sig).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _close_server() -> None:
    """End every child this process started (at exit; tests call it to start afresh)."""
    with _ALL_LOCK:
        servers = list(_ALL)
        _ALL.clear()
    for server in servers:
        server.close(kill=True)
    _LOCAL.__dict__.clear()


atexit.register(_close_server)


def _thread_server() -> _Server:
    server = getattr(_LOCAL, "server", None)
    if server is not None and (server.owner != os.getpid() or not server.alive()):
        server = None  # a fork of this process, or a child that ended meanwhile: replaced
    if server is None:
        server = _Server()
        _LOCAL.server = server
        with _ALL_LOCK:
            _ALL.append(server)
    return server


def _drop_server(server: _Server) -> None:
    server.close(kill=True)
    if getattr(_LOCAL, "server", None) is server:
        _LOCAL.server = None
    with _ALL_LOCK:
        if server in _ALL:
            _ALL.remove(server)


def run_guarded(fn: Callable, task: dict, limit: float) -> tuple[Any, list[tuple[int, str, str]]]:
    """``fn(task, beat)`` in this process's child, ``limit`` seconds at most per structure.

    ``fn`` (a module-level function: it is sent to the child by reference) must call ``beat(j)`` as it
    starts the structure at position j of its task, and leave out the positions listed in
    ``task['skip']``; it returns a picklable result.  Returns (the result of the last request,
    [(j, kind, reason), ...] for the positions left out, in order of discovery: kind 'TimeoutError' (no
    report within ``limit`` seconds) or 'ChildProcessError' (the child died on it)).  Raises
    RuntimeError when the child fails outside any structure.
    """
    left_out: list[tuple[int, str, str]] = []
    fresh_retry = True
    # one child per thread (_thread_server): no lock needed
    while True:
        server = _thread_server()
        kind = None
        try:
            kind, value, j = server.run(fn, dict(task, skip=[k for k, _, _ in left_out]), limit)
        finally:
            if kind != "ok" and kind != "error":  # hung, died, or this process interrupted
                _drop_server(server)
        if kind == "ok":
            return value, left_out
        if kind == "error":
            raise RuntimeError(f"the partition's child process failed: {value}")
        if j < 0 and kind == "died" and fresh_retry:  # died before starting: once more, fresh
            fresh_retry = False
            continue
        if j < 0 or any(k == j for k, _, _ in left_out):
            if kind == "hung":
                what = f"did not start a structure within {START_LIMIT:g} s"
            else:
                what = f"died ({_status_text(value)}) " + (
                    "while finishing the partition" if j == FINISHING else "before its first structure"
                )
            raise RuntimeError(f"the partition's child process {what}")
        if kind == "hung":
            error, reason = "TimeoutError", f"no answer within {limit:g} s: stopped (detector_timeout)"
        else:
            error, reason = "ChildProcessError", f"the process featurizing it died ({_status_text(value)})"
        left_out.append((j, error, reason))
