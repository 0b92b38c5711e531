"""Scale: the builder's up-front memory estimate is honest, and refusals come before any work.

The full scaling figures (K = 4 .. 24, all 530 settings) come from bench/bench_scale.py
and are recorded in docs/BENCHMARKS.md; these tests keep the estimate and the refusal
honest on every run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import env_without_artifact_override

import basisdb
import basisdb.builder.builder as builder
from basisdb.builder import build_database, check_build_request, estimate_peak_memory
from basisdb.cli import cli

GiB = 2**30


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, int]:
    """A real build (one process, K = 12) and its peak resident memory in bytes."""
    out = tmp_path_factory.mktemp("scale") / "k12.h5"
    if sys.platform != "linux":
        pytest.skip("ru_maxrss is in KiB on Linux only")
    cmd = [
        sys.executable,
        "-m",
        "basisdb",
        "build",
        "--kmax",
        "12",
        "--halls",
        "1,523",
        "--jobs",
        "1",
        "-q",
        "-o",
        str(out),
    ]
    # a fresh wrapper process whose only child is the build: its RUSAGE_CHILDREN peak is the build's
    wrapper = (
        "import resource, subprocess, sys; "
        f"rc = subprocess.run({cmd!r}, stdout=subprocess.DEVNULL).returncode; "
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper],
        capture_output=True,
        text=True,
        env=env_without_artifact_override(),
        timeout=300,
    )
    rc, peak_kib = (int(v) for v in proc.stdout.split())
    assert rc == 0, proc.stderr
    return out, peak_kib * 1024


def test_estimate_is_an_honest_upper_bound(measured):
    _, peak = measured
    est = estimate_peak_memory(12, 1)
    assert peak <= est, f"build used {peak / 2**20:.0f} MiB, estimate {est / 2**20:.0f} MiB"
    assert est <= 2 * peak, f"estimate {est / 2**20:.0f} MiB is far above the measured {peak / 2**20:.0f} MiB"


def test_estimate_grows_like_the_box():
    """Per-frequency part linear in (2K+1)^3 and in the number of solving processes."""
    base = estimate_peak_memory(1, 1)
    for k in (8, 16, 24, 64):
        extra = estimate_peak_memory(k, 1) - base
        assert extra == pytest.approx(1600 * ((2 * k + 1) ** 3 - 27), rel=1e-9)
    assert estimate_peak_memory(24, 4) > estimate_peak_memory(24, 2) > estimate_peak_memory(24, 1)


def test_warm_lookup_is_sub_millisecond_at_k12(measured):
    path, _ = measured
    with basisdb.open(path) as db:
        db.get(225)
        t0 = time.perf_counter()
        for _ in range(2000):
            db.get(225)
            db.get(hall=1, kmax=5)
        per = (time.perf_counter() - t0) / 4000
    assert per < 1e-3, f"warm lookup {per * 1e6:.0f} us"


@pytest.fixture
def small_machine(monkeypatch):
    """Pretend the machine has 1 GiB of RAM (the builder may use half of it)."""
    monkeypatch.setattr(builder, "_total_memory", lambda: 1 * GiB)


def test_refusal_with_the_estimate(small_machine):
    need = estimate_peak_memory(24, 2)
    assert need > 0.5 * GiB
    with pytest.raises(MemoryError) as info:
        check_build_request(24, 2)
    msg = str(info.value)
    assert (
        f"needs about {need / GiB:.1f} GiB" in msg
        and "1.0 GiB" in msg
        and "smaller kmax or fewer jobs" in msg
    )
    check_build_request(8, 1)  # a request that fits passes


def test_refusal_before_any_work(small_machine, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(MemoryError, match="GiB"):
        build_database(tmp_path / "x.h5", kmax=24, jobs=2)
    assert time.monotonic() - t0 < 2
    assert list(tmp_path.iterdir()) == []


def test_cli_refusal_is_one_line(small_machine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["build", "--kmax", "24", "--jobs", "2", "-o", "x.h5"], prog_name="basisdb")
    assert res.exit_code == 1 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "basisdb: error: building at kmax=24 with 2 job(s) needs about"
    ), lines
    assert list(tmp_path.iterdir()) == []


def test_on_the_fly_refusal(small_machine):
    with pytest.raises(MemoryError, match="kmax=40"):
        basisdb.basis_from_operations("x,y,z;-x,-y,-z", kmax=40)
    assert basisdb.basis_from_operations("x,y,z;-x,-y,-z", kmax=2).n_basis == 63
