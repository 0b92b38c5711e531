"""Pictures (``basisdb plot``): the pixels of a rendered p4mm function have the group's symmetry,
the optional matplotlib dependency, and the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import basisdb
from basisdb.cli import cli

mpl_image = pytest.importorskip("matplotlib.image")

from basisdb import _plot  # noqa: E402


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


def _read(path) -> np.ndarray:
    img = mpl_image.imread(str(path))
    assert img.dtype == np.float32 and img.ndim == 3
    return img


def _differs(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels whose colour differs by more than one 8-bit step."""
    return float(np.mean(np.abs(a - b).max(axis=-1) > 1.5 / 255))


@pytest.mark.parametrize("column", [1, 2, 3, 5])
def test_p4mm_picture_has_the_symmetry_of_the_4mm_site(db, tmp_path, column):
    """One cell centred on the 4-fold axis at the origin: the pixel array equals its 90 degree
    rotation, its mirror images across both axes and across the diagonal."""
    basis = db.get(plane="p4mm")
    path = _plot.save_cell_png(basis, column, tmp_path / "cell.png", pixels=64)
    img = _read(path)
    assert img.shape[:2] == (64, 64)  # exactly one cell, no axes, no margins
    assert img[..., :3].std() > 0.05, "blank picture"
    for name, other in [
        ("rot90", np.rot90(img)),
        ("rot180", np.rot90(img, 2)),
        ("mirror x -> -x", img[:, ::-1]),
        ("mirror y -> -y", img[::-1, :]),
        ("mirror x <-> y", np.transpose(img, (1, 0, 2))),
    ]:
        assert _differs(img, other) < 0.002, name


def test_p4gm_picture_has_no_mirror_through_its_4_fold_axis(db, tmp_path):
    """Negative control: p4gm has the 4-fold axis at the origin, but its mirrors miss it."""
    basis = db.get(plane="p4gm")
    img = _read(_plot.save_cell_png(basis, 3, tmp_path / "cell.png", pixels=64))
    assert _differs(img, np.rot90(img)) < 0.002
    assert _differs(img, img[:, ::-1]) > 0.2
    # its diagonal mirror x, y -> -y + 1/2, -x + 1/2 passes through (1/4, 1/4): centre the cell there
    img = _read(_plot.save_cell_png(basis, 3, tmp_path / "cell2.png", pixels=64, centre=(0.25, 0.25)))
    # (x, y) -> (-y, -x) about the centre.  The PNG's top row is the largest y, so on the page the
    # line x + y = 1/2 runs from the top-left to the bottom-right corner: the array's main diagonal.
    assert _differs(img, img.transpose(1, 0, 2)) < 0.002
    assert _differs(img, np.rot90(img, 2).transpose(1, 0, 2)) > 0.2  # y, x is not an operation of p4gm


def test_cell_values_are_the_basis_functions(db):
    basis = db.get(plane="p6mm")
    values = _plot.cell_values(basis, 4, pixels=8, centre=(0.5, 0.25))
    u = (np.arange(8) + 0.5) / 8 - 0.5
    x, y = np.meshgrid(u + 0.5, u + 0.25, indexing="xy")
    expected = basis.evaluate(np.stack([x.ravel(), y.ravel()], axis=1))[:, 4].reshape(8, 8)
    np.testing.assert_allclose(values, expected, atol=1e-12)
    space = db.get(225)
    v3 = _plot.cell_values(space, 2, pixels=4, z=0.25)
    u = (np.arange(4) + 0.5) / 4 - 0.5
    x, y = np.meshgrid(u, u, indexing="xy")
    pts = np.stack([x.ravel(), y.ravel(), np.full(16, 0.25)], axis=1)
    np.testing.assert_allclose(v3, space.evaluate(pts)[:, 2].reshape(4, 4), atol=1e-12)


def test_symmetry_elements_match_ita():
    from fractions import Fraction as Fr

    db = basisdb.open()
    points, lines = _plot.symmetry_elements(db.get(plane="p4mm"))
    assert dict(points) == {(0, 0): 4, (Fr(1, 2), Fr(1, 2)): 4, (0, Fr(1, 2)): 2, (Fr(1, 2), 0): 2}
    points, _ = _plot.symmetry_elements(db.get(plane="p6mm"))
    assert (
        dict(points)[(0, 0)] == 6
        and dict(points)[(Fr(1, 3), Fr(2, 3))] == 3
        and dict(points)[(Fr(1, 2), 0)] == 2
    )
    _, lines = _plot.symmetry_elements(db.get(plane="pg"))
    assert lines and not any(mirror for _, _, mirror in lines)
    points, lines = _plot.symmetry_elements(db.get(plane="p2mg"))
    mirrors = {(p[0] % 1, v) for p, v, mirror in lines if mirror}
    assert mirrors == {(Fr(1, 4), (0, 1)), (Fr(3, 4), (0, 1))}  # mirrors x = 1/4, 3/4 (ITA)
    with pytest.raises(ValueError):
        _plot.symmetry_elements(db.get(1))


@pytest.mark.parametrize("kind", ["plane", "space"])
def test_plot_basis_writes_a_small_png(db, tmp_path, kind):
    if kind == "plane":
        basis, kwargs = db.get(plane="p31m"), {"n": 6}
    else:
        basis, kwargs = db.get("P6_3/mmc"), {"functions": [1, 2], "sections": [0, 0.25]}
    path = _plot.plot_basis(basis, tmp_path / "out.png", dpi=50, **kwargs)
    img = _read(path)
    assert img[..., :3].std() > 0.05
    assert path.stat().st_size < 150_000
    with pytest.raises(ValueError, match="out of range"):
        _plot.plot_basis(basis, tmp_path / "bad.png", functions=[basis.n_basis])


def test_import_basisdb_does_not_load_matplotlib():
    code = (
        "import sys, basisdb, numpy as np\n"
        "b = basisdb.open().get(plane='p4gm'); b.evaluate(np.zeros((2, 2)))\n"
        "import basisdb.cli\n"
        "print('matplotlib' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="basisdb", catch_exceptions=True)


def test_without_matplotlib_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install basisdb\[plot\]"):
        _plot.require_matplotlib()
    out = _invoke("plot", "--plane", "p4gm", "-o", tmp_path / "x.png")
    assert out.exit_code != 0 and isinstance(out.exception, SystemExit)
    lines = out.stderr.splitlines()
    assert lines == [
        "basisdb: error: plotting needs matplotlib, an optional extra: pip install basisdb[plot]"
    ]
    assert not (tmp_path / "x.png").exists()


def test_cli_plot(monkeypatch, tmp_path):
    monkeypatch.delenv("BASISDB_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    out = _invoke("plot", "--plane", "p4gm", "--n", "4", "--cells", "1", "--dpi", "40")
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == "wrote p4gm.png" and (tmp_path / "p4gm.png").is_file()
    out = _invoke("plot", "225", "--functions", "1,3", "--sections", "0,1/4", "-o", "fm3m.png", "--dpi", "40")
    assert out.exit_code == 0, out.output
    assert _read(tmp_path / "fm3m.png")[..., :3].std() > 0.05
    for args, contains in [
        (("plot", "--plane", "p4gm", "--n", "0"), "--n"),
        (("plot", "--plane", "p4gm", "--functions", "x"), "--functions"),
        (("plot", "225", "--sections", "a"), "--sections"),
        (("plot", "--plane", "p4gm", "--functions", "999"), "out of range"),
        (("plot", "--plane", "p4gm", "--cells", "0"), "--cells"),
    ]:
        out = _invoke(*args)
        assert out.exit_code != 0 and isinstance(out.exception, SystemExit), args
        lines = out.stderr.splitlines()
        assert len(lines) == 1 and contains in lines[0], (args, lines)
