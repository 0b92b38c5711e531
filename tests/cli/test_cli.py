"""The ``basisdb`` command line, driven through click's CliRunner (and once through a real process).

Every failure must be exactly one line ``basisdb: error: ...`` on stderr, a non-zero
exit status and no traceback.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import env_without_artifact_override

import basisdb
from basisdb.cli import cli

SMALL_HALLS = [1, 2, 3, 523]
SMALL_KMAX = 2

_MEMBER = re.compile(r"\((-?\d+),(-?\d+),(-?\d+)\)(?: @(\d+)/(\d+))?")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Run every command from an empty directory, with the shipped artifact as the default."""
    monkeypatch.delenv("BASISDB_PATH", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def small_artifact(tmp_path_factory) -> Path:
    """A small artifact (4 settings, K=2) built with the library API."""
    from basisdb.builder import build_database

    path = tmp_path_factory.mktemp("small") / "small.h5"
    build_database(path, kmax=SMALL_KMAX, halls=SMALL_HALLS, jobs=1)
    return path


@pytest.fixture
def invoke():
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, [str(a) for a in args], prog_name="basisdb", catch_exceptions=True)

    return run


def assert_ok(result) -> None:
    assert result.exception is None or (isinstance(result.exception, SystemExit) and result.exit_code == 0), (
        result.output,
        result.exception,
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def assert_one_line_error(result, contains: str | None = None) -> str:
    """Exit status != 0, exactly one stderr line 'basisdb: error: ...', nothing on stdout, no traceback."""
    assert result.exit_code != 0, f"expected failure, got exit 0 with output {result.output!r}"
    # an escaped (non-SystemExit) exception would print a traceback outside the runner
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
    assert lines[0].startswith("basisdb: error:"), lines
    assert len(lines[0]) > len("basisdb: error: "), "empty error message"
    assert result.stdout == "", f"unexpected stdout {result.stdout!r}"
    if contains is not None:
        assert contains.lower() in lines[0].lower(), lines[0]
    return lines[0]


def _info_fields(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.splitlines():
        name, _, value = line.partition(" ")
        out[name] = value.strip()
    return out


# --------------------------------------------------------------------------- path / version / help
def test_path_prints_default_artifact(invoke):
    result = invoke("path")
    assert_ok(result)
    printed = result.stdout.strip()
    assert printed == str(basisdb.default_path())
    assert Path(printed).is_file()
    assert result.stderr == ""


def test_path_honours_env(invoke, small_artifact, monkeypatch):
    monkeypatch.setenv("BASISDB_PATH", str(small_artifact))
    result = invoke("path")
    assert_ok(result)
    assert result.stdout.strip() == str(small_artifact)


def test_path_env_missing_file_is_one_line_error(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("BASISDB_PATH", str(tmp_path / "nope.h5"))
    assert_one_line_error(invoke("path"), contains="nope.h5")


def test_version(invoke):
    result = invoke("--version")
    assert_ok(result)
    assert result.stdout.strip() == f"basisdb, version {basisdb.__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(invoke, flag):
    result = invoke(flag)
    assert_ok(result)
    assert "Usage: basisdb" in result.stdout
    for command in ("build", "info", "list", "path", "show", "verify"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


@pytest.mark.parametrize("command", ["build", "info", "list", "path", "show", "verify"])
def test_subcommand_help(invoke, command):
    result = invoke(command, "--help")
    assert_ok(result)
    assert f"Usage: basisdb {command}" in result.stdout


# --------------------------------------------------------------------------- list
def _list_rows(stdout: str) -> tuple[list[list[str]], str]:
    lines = stdout.splitlines()
    assert lines[0].split()[:3] == ["hall", "no", "H-M"]
    return [line.split() for line in lines[1:-1]], lines[-1]


def test_list_all(invoke, shipped):
    result = invoke("list")
    assert_ok(result)
    rows, footer = _list_rows(result.stdout)
    assert len(rows) == 530
    assert [int(r[0]) for r in rows] == list(range(1, 531))
    assert footer.startswith("530 settings")
    assert f"K={shipped.kmax}" in footer
    # the default-setting marker follows the number column
    by_hall = {s.hall_number: s for s in shipped.settings()}
    for r in rows:
        s = by_hall[int(r[0])]
        assert r[1] == f"{s.number}{'*' if s.is_default else ''}"
        assert int(r[-1]) == s.n_orbits and int(r[-2]) == s.order
    assert sum(r[1].endswith("*") for r in rows) == 230


def test_list_number(invoke):
    result = invoke("list", "--number", "227")
    assert_ok(result)
    rows, footer = _list_rows(result.stdout)
    assert [int(r[0]) for r in rows] == [525, 526]
    assert rows[0][1] == "227*" and rows[1][1] == "227"
    assert "F d -3 m:2" in result.stdout
    assert footer.startswith("2 settings")


def test_list_system(invoke, shipped):
    expected = [s for s in shipped.settings() if s.crystal_system == "cubic"]
    result = invoke("list", "--system", "cubic")
    assert_ok(result)
    rows, footer = _list_rows(result.stdout)
    assert [int(r[0]) for r in rows] == [s.hall_number for s in expected]
    assert all(195 <= int(r[1].rstrip("*")) <= 230 for r in rows)
    assert footer.startswith(f"{len(expected)} settings")
    # case-insensitive
    assert invoke("list", "--system", "CUBIC").stdout == result.stdout


def test_list_json(invoke, shipped):
    import json

    result = invoke("list", "--json")
    assert_ok(result)
    rows = json.loads(result.stdout)
    assert [r["hall_number"] for r in rows] == list(range(1, 531))
    assert rows == [dataclasses.asdict(s) for s in shipped.settings()]
    # the filters apply to the JSON rows too; an empty selection is an empty array
    rows = json.loads(invoke("list", "--json", "--number", "227").stdout)
    assert [(r["hall_number"], r["is_default"]) for r in rows] == [(525, True), (526, False)]
    assert json.loads(invoke("list", "--json", "--system", "cubic", "--number", "2").stdout) == []


def test_list_plane_json(invoke, shipped):
    import json

    result = invoke("list", "--plane", "--json")
    assert_ok(result)
    rows = json.loads(result.stdout)
    assert [r["number"] for r in rows] == list(range(1, 18))
    assert rows == [dataclasses.asdict(g) for g in shipped.plane_groups()]
    assert rows[11]["hm_full"] == "p4gm"


def test_list_invalid_number_exits_nonzero(invoke):
    """`basisdb list --number 300` used to print an empty table and exit 0."""
    result = invoke("list", "--number", "300")
    assert result.exit_code == 2
    assert_one_line_error(result, "space-group number must be in 1..230, got 300")


def test_list_other_artifact(invoke, small_artifact):
    result = invoke("list", "--db", str(small_artifact))
    assert_ok(result)
    rows, footer = _list_rows(result.stdout)
    assert [int(r[0]) for r in rows] == SMALL_HALLS
    assert footer.startswith(f"{len(SMALL_HALLS)} settings") and footer.endswith(f"K={SMALL_KMAX}")


# --------------------------------------------------------------------------- info
def test_info_number(invoke, shipped):
    result = invoke("info", "225")
    assert_ok(result)
    fields = _info_fields(result.stdout)
    s = shipped.get_setting(225)
    assert fields["hall_number"] == "523" == str(s.hall_number)
    assert fields["number"] == "225"
    assert fields["hall_symbol"] == "-F 4 2 3"
    assert fields["hm_short"] == "Fm-3m"
    assert fields["is_default"] == "True"
    assert fields["kmax"] == str(shipped.kmax)
    for name, value in s.__dict__.items():
        assert fields[name] == str(value), name


def test_info_symbol_and_hall_agree(invoke):
    by_symbol = invoke("info", "Fd-3m:2")
    by_hall = invoke("info", "--hall", "526")
    assert_ok(by_symbol)
    assert_ok(by_hall)
    assert by_symbol.stdout == by_hall.stdout
    fields = _info_fields(by_symbol.stdout)
    assert fields["hall_number"] == "526"
    assert fields["number"] == "227"
    assert fields["choice"] == "2"
    assert fields["is_default"] == "False"
    assert fields["order"] == "192"


# --------------------------------------------------------------------------- show
def _orbit_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("#")]


def _members(line: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
    found = _MEMBER.findall(line)
    freqs = np.array([[int(h), int(k), int(l)] for h, k, l, _, _ in found], dtype=np.int64)
    phases = [(int(n), int(d)) if n else (0, 1) for _, _, _, n, d in found]
    return freqs, phases


def test_show_limit(invoke, shipped):
    basis = shipped.get(225)
    result = invoke("show", "225", "--limit", "3")
    assert_ok(result)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("F m -3 m (hall 523, No. 225)")
    assert f"{basis.n_orbits} orbits" in lines[0]
    orbit_lines = _orbit_lines(result.stdout)
    assert len(orbit_lines) == 3
    assert any("(1,1,1)" in line for line in orbit_lines)
    assert any("(-1,-1,-1)" in line for line in orbit_lines)
    for j, line in enumerate(orbit_lines):
        freqs, phases = _members(line)
        want_f, want_p = basis.orbit(j)
        np.testing.assert_array_equal(freqs, want_f)
        assert [n * basis.denominator // d for n, d in phases] == want_p.tolist()
        assert f"|O|={len(want_f)}" in line
    assert f"... {basis.n_orbits - 3} more orbits" in result.stdout


def test_show_limit_zero_shows_all(invoke, shipped):
    result = invoke("show", "--hall", "526", "--kmax", "3", "--limit", "0")
    assert_ok(result)
    basis = shipped.get(hall=526, kmax=3)
    orbit_lines = _orbit_lines(result.stdout)
    assert len(orbit_lines) == basis.n_orbits
    assert "more orbits" not in result.stdout
    # phases appear for the non-symmorphic Fd-3m:2 and match the exact numerators
    assert " @" in result.stdout
    for j, line in enumerate(orbit_lines):
        freqs, phases = _members(line)
        want_f, want_p = basis.orbit(j)
        np.testing.assert_array_equal(freqs, want_f)
        assert [n * basis.denominator // d for n, d in phases] == want_p.tolist()


def test_show_ops(invoke):
    result = invoke("show", "--ops", "x,y,z;-x,-y,-z", "--kmax", "2")
    assert_ok(result)
    ref = basisdb.basis_from_operations("x,y,z;-x,-y,-z", kmax=2)
    header = result.stdout.splitlines()[0]
    assert "K=2" in header
    assert f"{ref.n_orbits} orbits, {len(ref.frequencies)} frequencies, 0 extinct" in header
    assert ref.n_orbits == 63 and len(ref.frequencies) == 125
    orbit_lines = _orbit_lines(result.stdout)
    assert len(orbit_lines) == 20  # default --limit
    for j, line in enumerate(orbit_lines):
        freqs, _ = _members(line)
        np.testing.assert_array_equal(freqs, ref.orbit(j)[0])
    assert "(1,0,0)  (-1,0,0)" in result.stdout


# --------------------------------------------------------------------------- verify / build
def test_verify_small_artifact(invoke, small_artifact):
    result = invoke("verify", str(small_artifact))
    assert_ok(result)
    line = result.stdout.strip()
    assert line.startswith("ok: ")
    assert f"{len(SMALL_HALLS)} settings, K={SMALL_KMAX}" in line
    assert "checksums match" in line


def test_build_quiet(invoke, tmp_path, small_artifact):
    out = tmp_path / "cli.h5"
    result = invoke("build", "--kmax", "2", "--halls", "1-3,523", "-o", str(out), "--jobs", "1", "-q")
    assert_ok(result)
    assert result.stdout.strip().startswith(f"wrote {out}: 4 settings, K=2,")
    assert result.stderr == ""
    with basisdb.open(out) as db:
        assert [s.hall_number for s in db.settings()] == SMALL_HALLS
        assert db.kmax == 2
        db.verify()
    # CLI and library give the same bytes for the same request
    assert out.read_bytes() == small_artifact.read_bytes()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_build_with_progress_bar(invoke, tmp_path):
    out = tmp_path / "bar.h5"
    result = invoke("build", "--kmax", "1", "--halls", "2,1", "-o", str(out), "--jobs", "1")
    assert_ok(result)
    # the progress bar goes to stderr, the summary alone to stdout
    assert result.stdout.splitlines() == [f"wrote {out}: 2 settings, K=1, {out.stat().st_size:,} bytes"]
    with basisdb.open(out) as db:
        assert [s.hall_number for s in db.settings()] == [1, 2]


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "args, contains",
    [
        (["info", "0"], "1..230"),
        (["info", "231"], "231"),
        (["info", "-1"], None),
        (["info", "abc"], "abc"),
        (["info", "P 99"], "P 99"),
        (["info", "--hall", "531"], "531"),
        (["info", "--hall", "0"], "hall"),
        (["info", "225", "--hall", "523"], "not both"),
        (["info"], "group"),
        (["show", "225", "--limit", "-1"], "limit"),
        (["show", "225", "--kmax", "0"], "kmax"),
        (["show", "225", "--kmax", "99"], "kmax"),
        (["show", "--ops", "x,y,z;-x,y,z+1/3", "--kmax", "2"], None),
        (["show", "--ops", "x,y,z;-x,-y,-z", "225"], "not both"),
        (["show", "--ops", "x,y;-x,-y,-z", "--kmax", "2"], "three"),
        (["build", "--kmax", "0"], "kmax"),
        (["build", "--kmax", "-3"], "kmax"),
        (["build", "--kmax", "abc"], "abc"),
        (["build", "--kmax", "128", "-q"], "127"),
        (["build", "--jobs", "0"], "jobs"),
        (["build", "--halls", "5-1"], "5-1"),
        (["build", "--halls", "x", "-q"], "halls"),
        (["build", "--halls", "0", "-q"], "1..530"),
        (["build", "--halls", "531", "-q", "--kmax", "1"], "531"),
        (["verify", "--points", "0"], "points"),
        (["list", "--system", "bogus"], "bogus"),
        (["list", "--number", "abc"], "abc"),
        (["list", "--number", "300"], "1..230"),
        (["list", "--number", "0"], "1..230"),
        (["list", "--number", "300", "--json"], "1..230"),
        (["list", "--plane", "--number", "3"], "plane"),
        (["list", "--plane", "--system", "cubic"], "plane"),
        (["frobnicate"], "frobnicate"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_one_line_errors(invoke, tmp_path, args, contains):
    result = invoke(*args)
    assert_one_line_error(result, contains)
    # a failed build leaves nothing behind in the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_show_ops_not_a_group_names_the_problem(invoke):
    line = assert_one_line_error(invoke("show", "--ops", "x,y,z;-x,y,z+1/3", "--kmax", "2"))
    assert re.search(r"inverse|closed", line), line


@pytest.mark.parametrize("args", [["build", "--halls", "0"], ["build", "--halls", "531", "--kmax", "1"]])
def test_build_bad_halls_with_progress_bar_is_one_line(invoke, tmp_path, args):
    """Without -q the error must still be the only stderr line (no progress-bar label before it)."""
    assert_one_line_error(invoke(*args), contains="hall")
    assert list(tmp_path.iterdir()) == []


def test_build_huge_halls_range_is_refused_clearly(invoke, tmp_path):
    """A range far beyond 1..530 must be refused by its bounds, not by expanding it (MemoryError)."""
    assert_one_line_error(invoke("build", "--halls", "1-99999999999999", "--kmax", "1", "-q"), contains="530")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet", "progress"])
def test_build_into_missing_directory(invoke, tmp_path, quiet):
    out = tmp_path / "no" / "such" / "dir" / "x.h5"
    args = ["build", "--kmax", "1", "--halls", "1", "-o", str(out), "--jobs", "1"] + (["-q"] if quiet else [])
    assert_one_line_error(invoke(*args), contains="does not exist")
    assert not out.parent.exists()


def test_build_into_directory(invoke, tmp_path):
    (tmp_path / "adir").mkdir()
    assert_one_line_error(
        invoke("build", "--kmax", "1", "--halls", "1", "-o", "adir", "-q"), contains="directory"
    )


def test_build_absurd_kmax_refused_up_front(invoke):
    from basisdb.builder import estimate_peak_memory

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pytest.skip("cannot determine this machine's RAM")
    if estimate_peak_memory(120, 2) <= 0.5 * ram:
        pytest.skip("kmax=120 with 2 jobs would fit in half of this machine's RAM")
    # without -q: the refusal must come before the progress bar
    assert_one_line_error(invoke("build", "--kmax", "120", "--jobs", "2"), contains="GiB")


def test_verify_not_hdf5(invoke, tmp_path):
    bogus = tmp_path / "bogus.h5"
    bogus.write_text("this is not an HDF5 file\n" * 100)
    assert_one_line_error(invoke("verify", str(bogus)), contains="not an HDF5 file")


def test_verify_empty_file(invoke, tmp_path):
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    assert_one_line_error(invoke("verify", str(empty)))


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.9, 0.999])
def test_verify_truncated(invoke, tmp_path, small_artifact, fraction):
    data = small_artifact.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    assert_one_line_error(invoke("verify", str(cut)), contains=str(cut))


def test_verify_missing(invoke, tmp_path):
    assert_one_line_error(invoke("verify", str(tmp_path / "missing.h5")), contains="no such file")


def test_verify_directory(invoke, tmp_path):
    (tmp_path / "d.h5").mkdir()
    assert_one_line_error(invoke("verify", str(tmp_path / "d.h5")))


def test_info_with_missing_db(invoke, tmp_path):
    assert_one_line_error(invoke("info", "225", "--db", str(tmp_path / "missing.h5")), contains="missing.h5")


def test_info_hall_not_in_small_artifact(invoke, small_artifact):
    assert_one_line_error(invoke("info", "--hall", "526", "--db", str(small_artifact)), contains="526")


# --------------------------------------------------------------------------- real process
def _console_script() -> Path:
    script = Path(sys.executable).parent / "basisdb"
    if not script.is_file():
        pytest.skip(f"console script not installed next to {sys.executable}")
    return script


@pytest.mark.parametrize("how", ["console-script", "python -m basisdb"])
def test_real_process_error_is_one_line(tmp_path, how):
    cmd = [str(_console_script())] if how == "console-script" else [sys.executable, "-m", "basisdb"]
    proc = subprocess.run(
        cmd + ["info", "231"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_artifact_override(),
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("basisdb: error:") and "231" in lines[0]


def test_real_process_success(tmp_path):
    proc = subprocess.run(
        [str(_console_script()), "info", "225"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_without_artifact_override(),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert _info_fields(proc.stdout)["hall_number"] == "523"
    assert proc.stderr == ""
