"""A partition computed in a forked child, with a time limit per structure (the dataset engine's guard).

moyopy 0.21 can loop forever on a structure (carbon_24 C-170350-1491-29 with any angle tolerance), and
it holds the GIL while it does: no thread, timer or signal handler of the process running it gets to
run again, so a dataset run with ``detector="moyopy"`` would never finish.  Only another process can
stop it.  ``run_guarded`` forks a child that computes the partition and reports each structure it
starts; the parent waits at most ``limit`` seconds between reports.  When a structure takes longer,
or the child dies (a crash in C or Rust code), the child is killed, that structure becomes a failure
row, and a new child computes the rest of the partition (the work done before the hang is done again:
hangs are rare).  The rows of the structures that finish are exactly those of an unguarded run.

POSIX only (``os.fork``); the caller decides when a child is safe (not from a worker running several
partitions in threads: a fork there could copy a lock another thread holds).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["can_fork", "run_guarded"]

# the child's reports: _BEAT + int32 j (it starts the j-th structure), then once _FRAME + int64 length +
# payload, the payload being _RESULT or _ERROR + a pickle
_BEAT = b"b"
_FRAME = b"f"
_RESULT = b"r"
_ERROR = b"e"


def can_fork() -> bool:
    return hasattr(os, "fork")


def _child(compute: Callable, items: Sequence, w: int) -> None:
    """Compute in the child and write the reports; never returns (``os._exit``)."""
    code = 1
    try:

        def beat(j: int) -> None:
            os.write(w, _BEAT + struct.pack("<i", j))

        try:
            payload = _RESULT + pickle.dumps(compute(items, beat), protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        except BaseException as exc:  # reported to the parent, which raises it there
            payload = _ERROR + pickle.dumps(f"{type(exc).__name__}: {exc}")
        data = _FRAME + struct.pack("<q", len(payload)) + payload
        view = memoryview(data)
        while view:
            n = os.write(w, view)
            view = view[n:]
    finally:
        os._exit(code)


def _read_exact(r: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = os.read(r, min(n - got, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def _watch(pid: int, r: int, limit: float) -> tuple[str, Any, int]:
    """Read the child's reports.  Returns ('ok', result, -), ('error', message, -), ('hung', seconds, j)
    or ('died', status, j): j the position of the structure it was computing (-1: before the first)."""
    current = -1
    buf = b""
    started = time.monotonic()
    while True:
        ready, _, _ = select.select([r], [], [], limit)
        if not ready:
            return "hung", time.monotonic() - started, current
        chunk = os.read(r, 1 << 16)
        if not chunk:
            _, status = os.waitpid(pid, 0)
            return "died", status, current
        buf += chunk
        while buf:
            if buf[:1] == _BEAT:
                if len(buf) < 5:
                    break
                current = struct.unpack("<i", buf[1:5])[0]
                buf = buf[5:]
                started = time.monotonic()
                continue
            if buf[:1] != _FRAME:
                raise RuntimeError("the partition's child process wrote an unexpected report")
            # the result: 8-byte length, then the payload (read to its end without a limit: the child has
            # finished computing)
            if len(buf) < 9:
                buf += _read_exact(r, 9 - len(buf))
            (n,) = struct.unpack("<q", buf[1:9])
            payload = buf[9:]
            if len(payload) < n:
                payload += _read_exact(r, n - len(payload))
            os.waitpid(pid, 0)
            kind, body = payload[:1], payload[1:]
            if kind == _RESULT:
                return "ok", pickle.loads(body), current
            return "error", pickle.loads(body), current


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def run_guarded(compute: Callable, items: Sequence, limit: float) -> tuple[Any, list[tuple[Any, str, str]]]:
    """``compute(items, beat)`` in forked children, ``limit`` seconds at most per structure.

    ``compute`` must call ``beat(j)`` as it starts the j-th of ``items`` and return a picklable result.
    Returns (the result of the last child, over the items left; [(item, kind, reason), ...] for the items
    left out, in order: kind 'TimeoutError' (no report within ``limit``) or 'ChildProcessError' (the
    child died on it)).  Raises RuntimeError when a child fails outside any structure.
    """
    remaining = list(items)
    left_out: list[tuple[Any, str, str]] = []
    while True:
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12: fork with threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child (coverage does not follow it)
            os.close(r)
            _child(compute, remaining, w)
        os.close(w)
        kind = None
        try:
            kind, value, j = _watch(pid, r, limit)
        finally:
            if kind in (None, "hung"):  # stopped, or the parent itself was interrupted
                _kill(pid)
            os.close(r)
        if kind == "ok":
            return value, left_out
        if kind == "error":
            raise RuntimeError(f"the partition's child process failed: {value}")
        if j < 0 or j >= len(remaining):
            raise RuntimeError(
                f"the partition's child process {'did not report within' if kind == 'hung' else 'died'} "
                f"{f'{limit:g} s' if kind == 'hung' else f'(status {value})'} outside any structure"
            )
        if kind == "hung":
            error = "TimeoutError"
            reason = f"no answer within {limit:g} s: stopped (detector_timeout)"
        else:
            error = "ChildProcessError"
            sig = os.WTERMSIG(value) if os.WIFSIGNALED(value) else None
            reason = (
                f"the process featurizing it died (signal {sig}: {signal.Signals(sig).name})"
                if sig
                else f"the process featurizing it died (exit status {os.WEXITSTATUS(value)})"
            )
        left_out.append((remaining[j], error, reason))
        remaining = remaining[:j] + remaining[j + 1 :]
