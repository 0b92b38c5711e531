"""The offline builder: reproducible bytes, restriction consistency, atomic writes, bad requests,
and bases of user-supplied operations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import env_without_artifact_override

import basisdb
from basisdb.builder import build_database, check_build_request, estimate_peak_memory
from basisdb.builder.writer import remove_stale_partials

HALLS = [1, 2, 81, 460, 461, 523, 526]
KMAX = 3
FIELDS = ("frequencies", "orbit_ptr", "phases", "extinct", "rotations", "translations")


# --------------------------------------------------------------------------- helpers / fixtures
def _partials(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.partial")) + sorted(directory.glob("*.partial"))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    """The small artifact (7 settings, K=3) built with one job."""
    path = tmp_path_factory.mktemp("small") / "small.h5"
    summary = build_database(path, kmax=KMAX, halls=HALLS, jobs=1)
    return path, summary


def _assert_same_basis(a, b) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.kmax == b.kmax
    assert a.denominator == b.denominator


# --------------------------------------------------------------------------- (a) reproducibility
def test_summary(small):
    path, summary = small
    assert summary == {
        "path": os.fspath(path),
        "kmax": KMAX,
        "settings": len(HALLS),
        "bytes": path.stat().st_size,
    }


def test_rebuild_byte_identical_across_jobs(small, tmp_path):
    path, _ = small
    other = tmp_path / "jobs2.h5"
    build_database(other, kmax=KMAX, halls=HALLS, jobs=2)
    assert other.read_bytes() == path.read_bytes()
    assert _partials(tmp_path) == []


def test_rebuild_byte_identical_selection_order(small, tmp_path):
    """Order and duplicates in ``halls`` do not matter: the selection is a set."""
    path, _ = small
    other = tmp_path / "shuffled.h5"
    build_database(other, kmax=KMAX, halls=list(reversed(HALLS)) + [526, 1], jobs=1)
    assert other.read_bytes() == path.read_bytes()


def test_rebuild_over_existing_file_is_identical(small, tmp_path):
    path, _ = small
    target = tmp_path / "again.h5"
    target.write_bytes(b"old content")
    build_database(target, kmax=KMAX, halls=HALLS, jobs=1)
    assert target.read_bytes() == path.read_bytes()


# --------------------------------------------------------------------------- (b) open, verify, restriction
def test_small_artifact_opens_and_verifies(small):
    path, _ = small
    with basisdb.open(path) as db:
        assert db.kmax == KMAX
        assert len(db) == len(HALLS)
        assert [s.hall_number for s in db.settings()] == HALLS
        report = db.verify()
        assert report["settings"] == len(HALLS)
        assert report["kmax"] == KMAX
        assert report["max_invariance_error"] < 1e-10


@pytest.mark.parametrize("hall", HALLS)
def test_restriction_consistency(small, shipped, hall):
    """A K=3 build equals the shipped (larger-K) artifact restricted to K=3."""
    assert shipped.kmax > KMAX
    path, _ = small
    with basisdb.open(path) as db:
        built = db.get(hall=hall)
        ref = shipped.get(hall=hall, kmax=KMAX)
        _assert_same_basis(built, ref)
        s, t = built.setting, shipped.get_setting(hall=hall)
        for name in (
            "hall_number",
            "number",
            "hall_symbol",
            "hm_short",
            "hm_full",
            "hm_extended",
            "choice",
            "crystal_system",
            "point_group",
            "order",
            "is_default",
        ):
            assert getattr(s, name) == getattr(t, name), name
        assert (s.n_orbits, s.n_frequencies, s.n_extinct) == (
            ref.n_orbits,
            len(ref.frequencies),
            len(ref.extinct),
        )


# --------------------------------------------------------------------------- (c) atomic write, simulated crash
class _Crash(Exception):
    pass


def _crash_after(n: int, exc_type=_Crash):
    done = [0]

    def progress(k: int) -> None:
        done[0] += k
        if done[0] >= n:
            raise exc_type(f"simulated crash after {done[0]} settings")

    return progress, done


@pytest.mark.parametrize(
    "exc_type, jobs",
    [(_Crash, 1), (_Crash, 2), (KeyboardInterrupt, 1)],
    ids=["exception-jobs1", "exception-jobs2", "keyboardinterrupt-jobs1"],
)
def test_crash_leaves_old_file_untouched(small, tmp_path, exc_type, jobs):
    good, _ = small
    target = tmp_path / "db.h5"
    target.write_bytes(good.read_bytes())
    before = target.read_bytes()
    progress, done = _crash_after(2, exc_type)
    with pytest.raises(exc_type, match="simulated crash"):
        build_database(target, kmax=2, halls=[1, 2, 3, 4, 5], jobs=jobs, progress=progress)
    assert done[0] == 2
    assert target.read_bytes() == before
    assert list(tmp_path.glob(f".{target.name}.*.partial")) == []
    assert _partials(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.h5"]
    with basisdb.open(target) as db:
        assert [s.hall_number for s in db.settings()] == HALLS


def test_crash_without_previous_file_creates_nothing(tmp_path):
    target = tmp_path / "new.h5"
    progress, _ = _crash_after(1)
    with pytest.raises(_Crash):
        build_database(target, kmax=1, halls=[1, 2], jobs=1, progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_progress_called_once_per_setting(tmp_path):
    calls = []
    build_database(tmp_path / "p.h5", kmax=1, halls=[3, 1, 2], jobs=1, progress=calls.append)
    assert calls == [1, 1, 1]


# --------------------------------------------------------------------------- (d) a real kill
def test_sigkill_during_build(small, tmp_path):
    good, _ = small
    target = tmp_path / "db.h5"
    target.write_bytes(good.read_bytes())
    before = target.read_bytes()
    code = f"from basisdb.builder import build_database; build_database({str(target)!r}, kmax=6, jobs=1)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env_without_artifact_override(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f".{target.name}.*.partial")):
            if proc.poll() is not None:
                _out, err = proc.communicate()
                pytest.fail(
                    f"builder exited ({proc.returncode}) before writing a partial file: {err.decode()[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("no .partial file appeared within 60 s")
            time.sleep(0.05)
        time.sleep(0.2)  # let it write something into the partial file
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"builder finished (rc={proc.returncode}) before it could be killed"
    )

    assert target.read_bytes() == before
    stale = list(tmp_path.glob(f".{target.name}.*.partial"))
    assert [p.name for p in stale] == [f".{target.name}.{proc.pid}.partial"]
    with basisdb.open(target) as db:  # readers still see the old, complete artifact
        assert len(db) == len(HALLS)

    summary = build_database(target, kmax=2, halls=[1, 2], jobs=1)
    assert summary["settings"] == 2
    assert not stale[0].exists(), "the stale partial of the killed writer was not removed"
    assert _partials(tmp_path) == []
    with basisdb.open(target) as db:
        assert db.kmax == 2 and [s.hall_number for s in db.settings()] == [1, 2]
        db.verify()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_partials_only_removes_dead_writers_of_that_file(tmp_path):
    dest = tmp_path / "db.h5"
    dead = _dead_pid()
    stale = tmp_path / f".db.h5.{dead}.partial"
    live = tmp_path / f".db.h5.{os.getpid()}.partial"
    other_file = tmp_path / f".other.h5.{dead}.partial"
    prefix_file = tmp_path / f".db.h5.bak.{dead}.partial"  # partial of 'db.h5.bak', not of 'db.h5'
    not_pid = tmp_path / ".db.h5.abc.partial"
    for p in (stale, live, other_file, prefix_file, not_pid):
        p.write_bytes(b"x")
    removed = remove_stale_partials(dest)
    assert removed == [stale]
    assert not stale.exists()
    for p in (live, other_file, prefix_file, not_pid):
        assert p.exists(), p.name


# --------------------------------------------------------------------------- (e) bad requests
@pytest.mark.parametrize("kmax", [0, -1, 2.5, True, 200, "3", None], ids=repr)
def test_bad_kmax(tmp_path, kmax):
    target = tmp_path / "x.h5"
    with pytest.raises(ValueError, match="kmax") as info:
        build_database(target, kmax=kmax, halls=[1], jobs=1)
    assert str(kmax) in str(info.value) or repr(kmax) in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True], ids=repr)
def test_bad_jobs(tmp_path, jobs):
    with pytest.raises(ValueError, match="jobs"):
        build_database(tmp_path / "x.h5", kmax=1, halls=[1], jobs=jobs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "halls, text", [([0], "0"), ([531], "531"), ([1, 600], "600"), ([], "no settings")], ids=repr
)
def test_bad_halls(tmp_path, halls, text):
    with pytest.raises(ValueError, match=r"hall|settings") as info:
        build_database(tmp_path / "x.h5", kmax=1, halls=halls, jobs=1)
    assert text in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_output_in_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_database(tmp_path / "missing" / "x.h5", kmax=1, halls=[1], jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_output_is_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        build_database(tmp_path / "d", kmax=1, halls=[1], jobs=1)


def test_absurd_kmax_refused_up_front(tmp_path):
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pytest.skip("cannot determine this machine's RAM")
    need = estimate_peak_memory(120, 2)
    if need <= 0.5 * ram:
        pytest.skip(f"kmax=120, jobs=2 needs ~{need / 2**30:.1f} GiB, within half of this machine's RAM")
    with pytest.raises(MemoryError, match="GiB"):
        check_build_request(120, 2)
    t0 = time.monotonic()
    with pytest.raises(MemoryError, match="GiB"):
        build_database(tmp_path / "huge.h5", kmax=120, jobs=2)
    assert time.monotonic() - t0 < 5, "the refusal should come before any work"
    assert list(tmp_path.iterdir()) == []


def test_estimate_grows_with_kmax_and_jobs():
    assert estimate_peak_memory(4, 1) < estimate_peak_memory(8, 1) < estimate_peak_memory(8, 4)
    check_build_request(3, 1)  # a small request passes


# --------------------------------------------------------------------------- (f) basis_from_operations
def test_custom_p1bar_equals_database(shipped):
    custom = basisdb.basis_from_operations(["x,y,z", "-x,-y,-z"], kmax=KMAX)
    ref = shipped.get(2, kmax=KMAX)
    for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
        np.testing.assert_array_equal(getattr(custom, name), getattr(ref, name), err_msg=name)
    assert custom.setting.hall_number == 0
    assert custom.setting.order == 2
    assert custom.kmax == KMAX


@pytest.mark.parametrize(
    "ops",
    [
        ["x,-y+1/2,z+1/2", "-x,-y,-z", "x,y,z", "-x,y+1/2,-z+1/2"],
        "-x, y+1/2, 1/2-z; x, 1/2-y, 1/2+z; -x,-y,-z; x,y,z",
        "x,y,z\n-x+1,y+1/2,-z+1/2\n-x,-y,-z+2\nx,-y-1/2,z+0.5",
    ],
    ids=["list-reordered", "string-cif-style", "lattice-shifts"],
)
def test_custom_p21c_any_order_equals_hall_81(shipped, ops):
    custom = basisdb.basis_from_operations(ops, kmax=KMAX)
    ref = shipped.get(hall=81, kmax=KMAX)
    assert shipped.get_setting(hall=81).hm_short == "P2_1/c"
    for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
        np.testing.assert_array_equal(getattr(custom, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize("hall", HALLS)
def test_custom_from_spglib_operations_equals_database(shipped, hall):
    """spglib's operations as (rotations, translations), shuffled, give the stored basis."""
    spglib = pytest.importorskip("spglib")
    ops = spglib.get_symmetry_from_database(hall)
    order = np.random.default_rng(hall).permutation(len(ops["rotations"]))
    custom = basisdb.basis_from_operations((ops["rotations"][order], ops["translations"][order]), kmax=KMAX)
    ref = shipped.get(hall=hall, kmax=KMAX)
    for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
        np.testing.assert_array_equal(getattr(custom, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize(
    "ops, pattern",
    [
        (["-x,-y,-z"], r"identity"),
        (["x,y,z", "-x,y,z+1/3"], r"inverse|closed"),
        (["x,y,z", "-x,-y,z", "-x,y,-z"], r"closed"),
        (["x,y,z", "x+y,y,z"], r"inverse|closed"),
        (["x,y,z", "-x,-y,-z", "-x,-y,-z+1"], r"same"),
        (["x,y,z", "x,y,z"], r"same"),
        (["x,y,z", "2x,y,z"], r"det"),
        (["x,y,z", "x,x,z"], r"det"),
        (["x,y,z", "-x,-y,z+1/5"], r"1/24|multiple"),
        (["x,y"], r"three"),
        (["x,y,q"], r"parse"),
        ([], r"no operations"),
    ],
    ids=[
        "no-identity",
        "not-closed-screw",
        "not-closed-product",
        "infinite-shear",
        "duplicate-mod-lattice",
        "duplicate",
        "det-2",
        "det-0",
        "translation-1/5",
        "two-components",
        "garbage",
        "empty",
    ],
)
def test_custom_not_a_group(ops, pattern):
    with pytest.raises((basisdb.NotAGroupError, ValueError), match=pattern):
        basisdb.basis_from_operations(ops, kmax=2)


def test_custom_not_a_group_is_value_error():
    assert issubclass(basisdb.NotAGroupError, ValueError)
    with pytest.raises(basisdb.NotAGroupError):
        basisdb.basis_from_operations(["-x,-y,-z"], kmax=2)


@pytest.mark.parametrize("kmax", [0, -1, 128, True, 2.0], ids=repr)
def test_custom_bad_kmax(kmax):
    with pytest.raises(ValueError, match="kmax"):
        basisdb.basis_from_operations(["x,y,z"], kmax=kmax)


# --------------------------------------------------------------------------- (g) the `build` extra
def _without(missing: tuple[str, ...], body: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter in which ``missing`` cannot be imported (a None entry in
    sys.modules: what an installation without the `build` extra looks like to an import)."""
    code = f"import sys\nfor _m in {missing!r}:\n    sys.modules[_m] = None\n{body}"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env_without_artifact_override(),
        timeout=300,
    )


@pytest.mark.parametrize("missing", [("networkx",), ("spglib",), ("networkx", "spglib")])
def test_build_without_the_build_extra_fails_in_one_line(tmp_path, missing):
    out = tmp_path / "never.h5"
    argv = ["build", "--kmax", "1", "--halls", "1", "-o", str(out), "-q", "--jobs", "1"]
    proc = _without(missing, f"from basisdb.cli import main\nmain({argv!r})\n", tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("basisdb: error: the basisdb builder needs ")
    assert missing[0] in lines[0] and lines[0].endswith("pip install 'basisdb[build]'")
    assert proc.stdout == "" and not out.exists() and _partials(tmp_path) == []


def test_basis_from_operations_without_the_build_extra_names_it(tmp_path):
    body = (
        "import basisdb\n"
        "try:\n"
        "    basisdb.basis_from_operations(['x,y,z', '-x,-y,-z'], kmax=2)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    proc = _without(("networkx",), body, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "networkx" in proc.stdout and "pip install 'basisdb[build]'" in proc.stdout


def test_readme_commands_need_no_build_extra(small, tmp_path):
    """The README's first set-up command (`basisdb verify`, `basisdb show "F d -3 m:2" --limit 5`)
    runs with spglib and networkx unimportable: `verify` on a small artifact (same code path as
    on the shipped one, minus its 30 s of checksums), `show` on the shipped artifact."""
    path, _ = small
    for argv in (["verify", str(path)], ["show", "F d -3 m:2", "--limit", "5"]):
        proc = _without(("networkx", "spglib"), f"from basisdb.cli import main\nmain({argv!r})\n", tmp_path)
        assert proc.returncode == 0, (argv, proc.stderr)
        assert proc.stderr == "", (argv, proc.stderr)
    assert proc.stdout.startswith("F d -3 m:2 (hall 526, No. 227)"), proc.stdout
    assert "... 44 more orbits" in proc.stdout
