"""kill -9 of a running ``basisdb build`` (the command line, a real process) at random moments.

Each round: a long build into the artifact's path is killed with SIGKILL after a random
delay (fixed seed), some delays counted from the start (imports, spglib, solving) and
some from the moment the temporary ``.partial`` file appears (writing).  Then:

* the previous artifact is byte-identical and still opens and verifies;
* the next ``basisdb build`` into the same path succeeds, removes the killed writer's
  temporary file and leaves no stray temporary file of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import env_without_artifact_override

import basisdb

SEED = 4
ROUNDS = 4
TIMEOUT = 120


def _build(path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "basisdb", "build", "-q", "--jobs", "2", "-o", str(path), *args]


def _partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.partial"))


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the builder; its pool workers (same session) go too, so nothing keeps running."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)


def test_kill_cli_build_at_random_moments(tmp_path):
    rng = np.random.default_rng(SEED)
    target = tmp_path / "db.h5"
    # small finishing builds alternate, so each round's "previous artifact" differs
    finishing = [["--kmax", "1", "--halls", "1-3"], ["--kmax", "2", "--halls", "1,2,81"]]
    done = subprocess.run(
        _build(target, *finishing[1]),
        env=env_without_artifact_override(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    killed = with_partial = 0
    for rnd in range(ROUNDS):
        before = target.read_bytes()
        after_partial = rnd % 2 == 1
        delay = float(rng.uniform(0.05, 0.6) if after_partial else rng.uniform(0.2, 2.5))
        proc = subprocess.Popen(
            _build(target, "--kmax", "8", "--halls", "all"),
            env=env_without_artifact_override(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            t0 = time.monotonic()
            if after_partial:
                while not _partials(tmp_path) and proc.poll() is None and time.monotonic() - t0 < TIMEOUT:
                    time.sleep(0.01)
            time.sleep(delay)
            finished_first = proc.poll() is not None
        finally:
            _kill_tree(proc)
            proc.wait(timeout=TIMEOUT)
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
        assert not finished_first, (
            f"round {rnd}: the build ended (rc={proc.returncode}) before the kill: {err[-500:]}"
        )
        assert proc.returncode == -signal.SIGKILL
        killed += 1

        # the previous artifact is untouched and usable
        assert target.read_bytes() == before, f"round {rnd}: artifact changed by a killed build"
        with basisdb.open(target) as db:
            db.verify(invariance_points=2)
        stray = _partials(tmp_path)
        assert all(p.name.startswith(f".{target.name}.") for p in stray), stray
        with_partial += bool(stray)  # killed while writing: its temporary file is left behind

        # the next build succeeds, and cleans up after the dead writer
        done = subprocess.run(
            _build(target, *finishing[rnd % 2]),
            env=env_without_artifact_override(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        assert _partials(tmp_path) == [], f"round {rnd}: stray temporary files {_partials(tmp_path)}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["db.h5"]
        with basisdb.open(target) as db:
            assert db.kmax == (1 if rnd % 2 == 0 else 2)
            db.verify(invariance_points=2)
    assert killed == ROUNDS
    assert with_partial >= 2, "no kill landed while the temporary file was being written"
