"""Capture what C libraries (spglib) write to the process's stderr, at the file-descriptor level.

spglib's C code prints diagnostics ("spglib: ...", "Warning: ...") with ``fprintf(stderr, ...)``,
below Python's ``sys.stderr``: ``contextlib.redirect_stderr`` does not see them.  ``capture_stderr``
points file descriptor 2 at a temporary file for the duration of a block and hands back the lines
written there, so a dataset run can count them in its summary instead of spraying them over the
terminal.

Process-wide and reference-counted: descriptor 2 belongs to the whole process, so with several
threads in one process (a threaded Dask worker) the first block to enter redirects it, the last to
leave restores it, and that last one collects every line written while any block was open.  The
total over all blocks is exact; which block a line is counted in is then approximate.  Anything
else written to descriptor 2 in the window (another library's C-level output, Python's own stderr
when it is descriptor 2) is captured as well.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import IO

__all__ = ["capture_stderr", "CapturedStderr"]

_LOCK = threading.Lock()


class _Redirect:
    """The process-wide state (under ``_LOCK``): open blocks, the saved descriptor 2, the capture file."""

    depth: int = 0
    saved_fd: int | None = None
    file: IO[bytes] | None = None


_STATE = _Redirect()


class CapturedStderr:
    """The lines captured by one ``capture_stderr`` block (filled in when the block exits)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __len__(self) -> int:
        return len(self.lines)


def _flush_python_stderr() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextmanager
def capture_stderr(enabled: bool = True):
    """``with capture_stderr() as cap: ...``; afterwards ``cap.lines`` holds the captured lines.

    ``enabled=False`` captures nothing (the block runs with stderr untouched).  When descriptor 2
    cannot be redirected (no such descriptor, e.g. a pythonw process), nothing is captured.
    """
    cap = CapturedStderr()
    if not enabled:
        yield cap
        return
    owner = False
    with _LOCK:
        if _STATE.depth == 0:
            tmp: IO[bytes] | None = None
            saved: int | None = None
            try:
                _flush_python_stderr()
                # held open across the blocks, closed by the last one to leave (below)
                tmp = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
                saved = os.dup(2)
                os.dup2(tmp.fileno(), 2)
            except OSError:
                tmp = saved = None
            _STATE.file, _STATE.saved_fd = tmp, saved
        _STATE.depth += 1
    try:
        yield cap
    finally:
        with _LOCK:
            _STATE.depth -= 1
            if _STATE.depth == 0 and _STATE.file is not None and _STATE.saved_fd is not None:
                owner = True
                tmp, saved = _STATE.file, _STATE.saved_fd
                _flush_python_stderr()
                try:
                    os.dup2(saved, 2)
                finally:
                    os.close(saved)
                tmp.seek(0)
                data = tmp.read()
                tmp.close()
                _STATE.file, _STATE.saved_fd = None, None
        if owner:
            text = data.decode("utf-8", errors="replace")
            cap.lines = [line for line in text.splitlines() if line.strip()]
