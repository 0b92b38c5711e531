"""Packaging: the wheel carries the artifact and the builder, a plain (non-editable) install
finds the shipped artifact and runs the README's commands without the `build` extra (spglib,
networkx), ``basisdb build`` works once the extra is installed, and ``import basisdb`` stays light.

The wheel/venv test needs the package index (for numpy, scipy, h5py, ...); it is skipped,
not failed, when pip cannot reach it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

_NETWORK_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Connection refused",
    "ConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "Max retries exceeded",
    "ProxyError",
    "No matching distribution found",
    "Could not find a version that satisfies",
)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything that would let this checkout or its venv leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"BASISDB_PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra)
    return env


def _run(cmd, *, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _clean_env(),
        timeout=timeout,
    )


# --------------------------------------------------------------------------- import is light
def test_import_basisdb_is_light(tmp_path):
    code = (
        "import sys, basisdb\n"
        "heavy = ('spglib', 'networkx', 'scipy', 'basisdb.builder', 'click')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "db = basisdb.open()\n"
        "b = db.get(225)\n"
        "import numpy as np\n"
        "b.evaluate(np.random.default_rng(0).random((4, 3)))\n"
        "print(sorted(m for m in ('spglib', 'networkx', 'basisdb.builder') if m in sys.modules))\n"
    )
    proc = _run([sys.executable, "-c", code], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    after_import, after_use = proc.stdout.splitlines()
    assert after_import == "[]", f"`import basisdb` pulled in {after_import}"
    assert after_use == "[]", f"reading a basis pulled in {after_use}"


# --------------------------------------------------------------------------- wheel
@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    proc = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, REPO],
        cwd=dist,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(dist.glob("basisdb-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = {i.filename: i for i in zf.infolist()}
    assert "basisdb/data/basisdb.h5" in names
    assert info["basisdb/data/basisdb.h5"].file_size == (REPO / "data" / "basisdb.h5").stat().st_size
    assert "basisdb/builder/orbits.py" in names
    assert "basisdb/builder/__init__.py" in names
    # exactly the sources of the checkout: no stale module left in setuptools' scratch folder
    # (.setuptools-build/lib is reused between builds), e.g. the former top-level basisdb_build
    expected = (
        {f"basisdb/{p.name}" for p in (REPO / "basisdb").glob("*.py")}
        | {f"basisdb/builder/{p.name}" for p in (REPO / "build" / "builder").glob("*.py")}
        | {f"basisdb/data/{p.name}" for p in (REPO / "data").glob("*.py")}
    )
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == expected, {"stale": sorted(shipped - expected), "missing": sorted(expected - shipped)}
    assert "basisdb/cli.py" in names
    top = {n.split("/", 1)[0] for n in names}
    assert "build" not in top, sorted(n for n in names if n.startswith("build/"))
    assert "data" not in top, sorted(n for n in names if n.startswith("data/"))
    assert not any(n.startswith("tests/") for n in names)
    assert not any(n.endswith(".partial") for n in names)
    dist_info = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert len(dist_info) == 1
    with zipfile.ZipFile(wheel) as zf:
        entry_points = zf.read(dist_info[0]).decode()
    assert "basisdb = basisdb.cli:main" in entry_points


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """A plain venv (no system site-packages) with the wheel and its dependencies from the index."""
    root = tmp_path_factory.mktemp("venv")
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    proc = _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--retries",
            "2",
            "--timeout",
            "30",
            "--disable-pip-version-check",
            wheel,
        ],
        cwd=root,
        timeout=600,
    )
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if any(m in text for m in _NETWORK_MARKERS):
            pytest.skip(
                f"pip cannot reach the package index to install basisdb's dependencies: {text.strip().splitlines()[-1]}"
            )
        pytest.fail(f"pip install of the wheel failed:\n{text[-4000:]}")
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root
    ).stdout.strip()
    cwd = root / "cwd"
    cwd.mkdir()
    return {
        "python": python,
        "bindir": bindir,
        "purelib": Path(purelib).resolve(),
        "cwd": cwd,
        "env": env_dir,
    }


def _venv_env(installed) -> dict[str, str]:
    return _clean_env(PATH=f"{installed['bindir']}{os.pathsep}{os.environ.get('PATH', '')}")


def test_installed_wheel_finds_shipped_artifact(installed):
    code = (
        "import basisdb, sys\n"
        "db = basisdb.open()\n"
        "print(db.path)\n"
        "b = db.get(225)\n"
        "print(b.n_basis)\n"
        "print(basisdb.__file__)\n"
        "assert 'spglib' not in sys.modules and 'networkx' not in sys.modules\n"
    )
    proc = _run(
        [installed["python"], "-c", code], cwd=installed["cwd"], env=_venv_env(installed), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    db_path, n_basis, module_file = proc.stdout.splitlines()
    purelib = installed["purelib"]
    assert Path(db_path).resolve().is_relative_to(purelib), (db_path, purelib)
    assert Path(db_path).resolve() == purelib / "basisdb" / "data" / "basisdb.h5"
    assert Path(module_file).resolve().is_relative_to(purelib), "basisdb was imported from outside the venv"
    assert not Path(module_file).resolve().is_relative_to(REPO)

    import basisdb

    old = os.environ.pop("BASISDB_PATH", None)
    try:
        with basisdb.open() as shipped:
            assert int(n_basis) == shipped.get(225).n_basis
    finally:
        if old is not None:
            os.environ["BASISDB_PATH"] = old


def test_installed_console_script(installed):
    script = installed["bindir"] / "basisdb"
    env = _venv_env(installed)
    proc = _run([script, "info", "225"], cwd=installed["cwd"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    fields = dict(line.split(None, 1) for line in proc.stdout.splitlines() if len(line.split(None, 1)) == 2)
    assert fields["hall_number"] == "523"
    assert fields["number"] == "225"

    proc = _run([script, "path"], cwd=installed["cwd"], env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve().is_relative_to(installed["purelib"])

    proc = _run([script, "info", "231"], cwd=installed["cwd"], env=env, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("basisdb: error:")


def test_readme_commands_without_the_build_extra(installed):
    """A plain `pip install` has no spglib or networkx; the README's commands run all the same, and
    `basisdb build` fails in one line naming the extra."""
    env = _venv_env(installed)
    script = installed["bindir"] / "basisdb"
    proc = _run(
        [
            installed["python"],
            "-c",
            "import importlib.util as u; print(u.find_spec('spglib'), u.find_spec('networkx'))",
        ],
        cwd=installed["cwd"],
        env=env,
    )
    assert proc.stdout.split() == ["None", "None"], "the plain install pulled in spglib or networkx"
    proc = _run([script, "verify"], cwd=installed["cwd"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:") and "530 settings" in proc.stdout
    proc = _run([script, "show", "F d -3 m:2", "--limit", "5"], cwd=installed["cwd"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("F d -3 m:2 (hall 526, No. 227)")
    out = installed["cwd"] / "never.h5"
    proc = _run(
        [script, "build", "--kmax", "1", "--halls", "1", "-o", out, "-q"], cwd=installed["cwd"], env=env
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.strip().endswith("pip install 'basisdb[build]'") and not out.exists()


def test_installed_builder_works(installed, wheel):
    """The builder ships as basisdb.builder: with the `build` extra installed (after the test
    above), `basisdb build` works from the installed wheel."""
    env = _venv_env(installed)
    proc = _run(
        [
            installed["python"],
            "-m",
            "pip",
            "install",
            "--retries",
            "2",
            "--timeout",
            "30",
            "--disable-pip-version-check",
            f"basisdb[build] @ {wheel.as_uri()}",
        ],
        cwd=installed["cwd"],
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        if any(m in text for m in _NETWORK_MARKERS):
            pytest.skip(
                f"pip cannot reach the package index for the build extra: {text.strip().splitlines()[-1]}"
            )
        pytest.fail(f"pip install of the build extra failed:\n{text[-4000:]}")
    script = installed["bindir"] / "basisdb"
    out = installed["cwd"] / "tiny.h5"
    proc = _run(
        [script, "build", "--kmax", "1", "--halls", "1,2,523", "-o", out, "--jobs", "1", "-q"],
        cwd=installed["cwd"],
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    proc = _run([script, "verify", out], cwd=installed["cwd"], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok:") and "3 settings, K=1" in proc.stdout
    # the builder came from the venv, not from this checkout's build/ folder
    proc = _run(
        [installed["python"], "-c", "import basisdb.builder; print(basisdb.builder.__file__)"],
        cwd=installed["cwd"],
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).resolve().is_relative_to(installed["purelib"])
