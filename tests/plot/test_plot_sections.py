"""Space-group pictures tied to the group, not to themselves (issue 15).

- The symmetry elements a section shows (``_plot_elements.section_elements``, exact, from the
  artifact's operations) equal those found here by hand-written rules from *spglib's* operations,
  sampled in floating point on a 48 x 48 grid of the section; plus spot checks against the
  International Tables.
- A section image equals its image under every operation of the group (spglib's) that maps the
  section onto itself; negative controls: operations of the group that move the section elsewhere,
  and a map that is not in the group.
- A function that vanishes on a section is reported as zero and drawn blank; the default functions
  never give an all-blank row; the drawn SVG holds exactly the listed elements.
"""

from __future__ import annotations

import re
from fractions import Fraction as Fr

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import spglib_operations

import basisdb
from basisdb.cli import cli

mpl_image = pytest.importorskip("matplotlib.image")
from basisdb import _plot, _plot_elements  # noqa: E402

G = 48  # the sampling grid of a section: points i/G
HEX = np.array([[1.0, -0.5], [0.0, np.sqrt(3.0) / 2.0]])


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


# ----------------------------------------------------------------- independent classification
def _is_int(a, tol=1e-6):
    return np.abs(a - np.rint(a)) < tol


def _direction(w):
    """Primitive integer v (first non-zero entry > 0) with w v = v: a small search."""
    for a in range(0, 3):
        for b in range(-2, 3):
            if (
                (a, b) != (0, 0)
                and (a > 0 or b > 0)
                and np.gcd(a, b) == 1
                and np.array_equal(w @ (a, b), (a, b))
            ):
                return (a, b)
    raise AssertionError(w)


def _power_order(m):
    p, n = m.copy(), 1
    while not np.array_equal(p, np.eye(len(m), dtype=int)):
        p, n = p @ m, n + 1
    return n


def _reference(hall: int, z0: float):
    """Elements of the section z0 from spglib's operations, by rules written out here.

    Returns dicts keyed by grid points (i, j) meaning (i/G, j/G)."""
    rots, trans = spglib_operations(hall)
    hexagonal = any(np.count_nonzero(r[:2, :2], axis=1).max() > 1 for r in rots)
    page = HEX if hexagonal else np.eye(2)
    ij = np.array([(i, j) for i in range(G) for j in range(G)])
    p = ij / G
    lines, in_plane, centres, plane, axis_ops = {}, {}, set(), set(), {}
    for r, t in zip(rots, trans):
        if np.any(r[2, :2]) or np.any(r[:2, 2]):
            continue
        w, s, t2, tz = r[:2, :2], r[2, 2], t[:2], t[2]
        d2 = p @ w.T + t2 - p  # displacement of every grid point (2-D part)
        here = s == 1 or _is_int(2 * z0 - tz)  # does the element lie in / cross the section?
        detw = round(np.linalg.det(w))
        if (
            detw == -1 and here
        ):  # a reflection in the section's plane: a plane with c, or a 2-fold axis in the section
            v = _direction(w)
            normal = np.array([-v[1], v[0]])
            on = _is_int(d2 @ normal)  # the displacement of a point of the line runs along it
            pure = np.all(_is_int(d2), axis=1)
            for k in np.flatnonzero(on):
                if s == 1:
                    kind = {(True, True): "m", (False, True): "g", (True, False): "c", (False, False): "n"}[
                        (bool(pure[k]), bool(_is_int(tz)))
                    ]
                    lines.setdefault((v, tuple(ij[k])), set()).add(kind)
                else:
                    in_plane.setdefault((v, tuple(ij[k])), set()).add("2" if pure[k] else "2_1")
        elif detw == 1 and not np.array_equal(w, np.eye(2)):
            fixed = np.all(_is_int(d2), axis=1)
            if s == -1 and np.array_equal(w, -np.eye(2)):  # inversion: a centre in the section?
                if here:
                    centres.update(tuple(ij[k]) for k in np.flatnonzero(fixed))
                continue
            for k in np.flatnonzero(fixed):
                axis_ops.setdefault(tuple(ij[k]), []).append((w, s, tz))
        elif s == -1 and here:  # w = I: a plane parallel to the section, at the section
            g = np.round(t2 % 1.0, 6) % 1.0
            names = {(0.0, 0.0): "m", (0.5, 0.0): "a", (0.0, 0.5): "b", (0.5, 0.5): "n"}
            plane.add(names.get(tuple(g), "d" if np.all(_is_int(4 * g)) else "g"))
    axes = {}
    for pt, found in axis_ops.items():
        best = None
        for w, s, tz in found:
            if s == 1:
                n = _power_order(w)
                m = page @ w @ np.linalg.inv(page)
                angle = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
                if n != 2 and abs(angle - 360 / n) > 1e-6:
                    continue  # the screw sense is read from the counter-clockwise rotation
                k = round(n * tz) % n
                cand = (n, 1, -k, f"{n}_{k}" if k else str(n))
            else:
                n = _power_order(-w)
                cand = ({3: 6, 4: 4, 6: 6}[n], 0, 0, f"-{n}")
            best = cand if best is None or cand[:3] > best[:3] else best
        if best is not None:
            axes[pt] = best[3]
    return {"lines": lines, "axes_in_plane": in_plane, "centres": centres, "axes": axes, "plane": plane}


def _grid(p) -> tuple[int, int] | None:
    i, j = p[0] * G, p[1] * G
    return (int(i), int(j)) if i.denominator == 1 and j.denominator == 1 else None


def _rasterise(lines):
    """{(v, grid point): kinds} of the module's lines, on the same grid."""
    out = {}
    for p0, v, kinds in lines:
        normal = (-v[1], v[0])
        c = normal[0] * p0[0] + normal[1] * p0[1]
        for i in range(G):
            for j in range(G):
                if (normal[0] * Fr(i, G) + normal[1] * Fr(j, G) - c).denominator == 1:
                    out.setdefault((tuple(v), (i, j)), set()).update(kinds)
    return out


def _module(basis, z):
    el = _plot_elements.section_elements(basis, z)
    axes = {_grid(p): s for p, s in el.axes}
    assert None not in axes
    return {
        "lines": _rasterise(el.lines),
        "axes_in_plane": _rasterise(el.axes_in_plane),
        "centres": {_grid(p) for p in el.centres},
        "axes": axes,
        "plane": set(el.plane),
    }


CASES = [
    ("Pnma", [0, 1 / 4]),
    ("P2_1/c", [0, 1 / 4]),
    ("P6_3/mmc", [0, 1 / 4]),
    ("Fm-3m", [0, 1 / 4]),
    ("Fd-3m:2", [0, 1 / 8]),
    ("I4_1/amd", [0, 1 / 8]),
    ("P4/nmm:2", [0, 1 / 4]),
    ("P4_2/mnm", [0, 1 / 4]),
    ("R-3m:H", [0, 1 / 6]),
    ("P-6m2", [0, 1 / 2]),
    ("P3_121", [0, 1 / 3]),
    ("Cmce", [0, 1 / 4]),
    ("I-43d", [0, 1 / 8]),
    ("P-4", [0, 1 / 2]),
    ("P6_1", [0]),
]


@pytest.mark.parametrize("group,zs", CASES, ids=[c[0] for c in CASES])
def test_section_elements_match_spglib(db, group, zs):
    basis = db.get(group)
    for z in zs:
        mine, ref = _module(basis, z), _reference(basis.hall_number, z)
        for key in ("plane", "centres", "axes", "lines", "axes_in_plane"):
            assert mine[key] == ref[key], (group, z, key)


def test_section_elements_agree_with_the_international_tables(db):
    def summary(group, z):
        return _plot_elements.section_elements(db.get(group), z)

    el = summary("Pnma", Fr(1, 4))  # P 2_1/n 2_1/m 2_1/a
    assert el.plane == {"a"}  # a-glide plane at z = 1/4
    assert {(p, v): k for p, v, k in el.lines} == {
        ((0, Fr(1, 4)), (1, 0)): {"m"},
        ((0, Fr(3, 4)), (1, 0)): {"m"},  # mirrors y = 1/4, 3/4
        ((Fr(1, 4), 0), (0, 1)): {"n"},
        ((Fr(3, 4), 0), (0, 1)): {"n"},  # n-glides x = 1/4, 3/4
    }
    assert dict(el.axes) == {
        (Fr(1, 4), 0): "2_1",
        (Fr(3, 4), 0): "2_1",
        (Fr(1, 4), Fr(1, 2)): "2_1",
        (Fr(3, 4), Fr(1, 2)): "2_1",
    }
    assert summary("Pnma", 0).centres == [(0, 0), (0, Fr(1, 2)), (Fr(1, 2), 0), (Fr(1, 2), Fr(1, 2))]
    el = summary("P6_3/mmc", Fr(1, 4))
    assert (
        el.plane == {"m"} and dict(el.axes)[(0, 0)] == "6_3" and dict(el.axes)[(Fr(1, 3), Fr(2, 3))] == "-6"
    )
    el = summary("P2_1/c", 0)  # unique axis b: c-glide at y = 1/4, the 2_1 axes at z = 1/4
    assert [(p, v, k) for p, v, k in el.lines] == [
        ((0, Fr(1, 4)), (1, 0), {"c"}),
        ((0, Fr(3, 4)), (1, 0), {"c"}),
    ]
    assert not el.axes_in_plane and summary("P2_1/c", Fr(1, 4)).axes_in_plane
    el = summary("Fd-3m:2", Fr(1, 8))  # origin 2: -43m at 1/8, 1/8, 1/8
    assert dict(el.axes)[(Fr(1, 8), Fr(1, 8))] == "-4"
    el = summary("P6_1", 0)
    assert dict(el.axes) == {
        (0, 0): "6_1",
        (0, Fr(1, 2)): "2_1",
        (Fr(1, 2), 0): "2_1",
        (Fr(1, 2), Fr(1, 2)): "2_1",
        (Fr(1, 3), Fr(2, 3)): "3_1",
        (Fr(2, 3), Fr(1, 3)): "3_1",
    }
    assert dict(summary("P6_5", 0).axes)[(0, 0)] == "6_5"


# ----------------------------------------------------------------- pixels
N = 48  # pixels per cell; every translation of these groups is a multiple of 1/48


def _differs(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels whose colour differs by more than the colour map's largest 8-bit step (round-off
    at a level boundary can move a value to the next entry of the 256-colour table)."""
    return float(np.mean(np.abs(a - b).max(axis=-1) > 4.5 / 255))


def _section_png(basis, column, z, tmp_path):
    # centre 1/2 - 1/(2N): pixel (row j, column i) is the point (i/N, j/N), so every integer matrix maps the grid to itself
    path = _plot.save_cell_png(
        basis, column, tmp_path / f"s{column}.png", pixels=N, centre=(0.5 - 0.5 / N, 0.5 - 0.5 / N), z=z
    )
    img = mpl_image.imread(str(path))[::-1, :, :3]  # the PNG's top row is the largest y: row j is now y = j/N
    assert img.std() > 0.05, "blank section"
    return img


def _mapped(img, w, w_t):
    """The image under x -> w x + w_t: out[j, i] = img at the pixel of w (i, j)/N + w_t."""
    i, j = np.meshgrid(np.arange(N), np.arange(N), indexing="xy")
    x = (w[0, 0] * i + w[0, 1] * j) + w_t[0] * N
    y = (w[1, 0] * i + w[1, 1] * j) + w_t[1] * N
    assert np.allclose(x, np.rint(x)) and np.allclose(y, np.rint(y))
    return img[np.rint(y).astype(int) % N, np.rint(x).astype(int) % N]


PIXEL_CASES = [
    ("Pnma", 1 / 4, 10),
    ("Pnma", 0, 3),
    ("P2_1/c", 0, 4),
    ("P6_3/mmc", 1 / 4, 9),
    ("P4_2/mnm", 0, 7),
    ("Fd-3m:2", 1 / 8, 4),
    ("R-3m:H", 0, 5),
]


@pytest.mark.parametrize("group,z,column", PIXEL_CASES, ids=[f"{g}-z{z:g}" for g, z, _ in PIXEL_CASES])
def test_section_image_is_invariant_under_the_ops_that_keep_the_section(db, tmp_path, group, z, column):
    basis = db.get(group)
    img = _section_png(basis, column, z, tmp_path)
    rots, trans = spglib_operations(basis.hall_number)
    keep = move = 0
    for r, t in zip(rots, trans):
        if np.any(r[2, :2]) or np.any(r[:2, 2]) or np.array_equal(r[:2, :2], np.eye(2)):
            continue
        other = _mapped(img, r[:2, :2], t[:2])
        if _is_int(r[2, 2] * z + t[2] - z):
            keep += 1
            assert _differs(img, other) < 0.002, (group, z, r.tolist(), t.tolist())
        else:  # negative control: the same 2-D map, from an operation that takes the section to another height
            move += 1
            assert _differs(img, other) > 0.2, (
                group,
                z,
                "moves the section, yet keeps the picture",
                r.tolist(),
                t.tolist(),
            )
    assert keep >= 1 and move >= 1


def test_negative_control_a_map_not_in_the_group(db, tmp_path):
    basis = db.get("Pnma")
    img = _section_png(basis, 10, 0.25, tmp_path)
    assert (
        _differs(img, _mapped(img, np.array([[1, 0], [0, -1]]), (0, 0.5))) < 0.002
    )  # the mirror y -> 1/2 - y is in Pnma
    assert _differs(img, _mapped(img, np.array([[1, 0], [0, -1]]), (0, 0))) > 0.2  # y -> -y is not
    assert _differs(img, _mapped(img, np.array([[0, 1], [1, 0]]), (0, 0))) > 0.2  # nor x <-> y


# ----------------------------------------------------------------- zeros, defaults, the drawn file
def test_a_zero_function_is_reported_as_zero(db, tmp_path):
    basis = db.get(hall=488)  # P6_3/mmc: functions 3, 7, 9 (odd l) vanish on z = 0
    rng = np.random.default_rng(0)
    xy = rng.random((200, 2))
    on0 = basis.evaluate(np.column_stack([xy, np.zeros(200)]))
    off = basis.evaluate(np.column_stack([xy, np.full(200, 0.125)]))
    panels = _plot.plan_panels(basis, functions=[1, 3, 7, 9], sections=[0, 0.125])
    for p in panels:
        truth = np.abs((on0 if p["z"] == 0 else off)[:, p["column"]]).max() < 1e-12
        assert p["zero"] == truth, p
    assert [p["column"] for p in panels if p["zero"]] == [3, 7, 9]
    path = _plot.plot_basis(basis, tmp_path / "p.svg", functions=[1, 3, 7, 9], sections=[0, 0.125], dpi=40)
    svg = path.read_text()
    assert svg.count("0 on this section") == 3
    assert svg.count("<image") == 5  # the blank panels carry no picture


def test_zero_tolerance_is_relative_to_the_function(db):
    basis = db.get("Pnma")
    scaled = _plot._Values(basis)
    cols = [1, 2, 3]
    zero = _plot.zero_on_section(basis, cols, 0.25, scaled)
    fmax = _plot.function_max(basis, cols, scaled)
    # the same functions scaled down by 1e-6 are still zero / non-zero in the same places
    assert list(
        _plot.zero_on_section(basis, cols, 0.25, lambda c, x: 1e-6 * scaled(c, x), 1e-6 * fmax)
    ) == list(zero)
    assert list(zero) == [True, False, True]  # seen in the picture; the values say the same:
    x = np.random.default_rng(1).random((100, 2))
    for z, expected in [(0.25, zero), (0.0, _plot.zero_on_section(basis, cols, 0.0, scaled))]:
        vals = basis.evaluate(np.column_stack([x, np.full(100, z)]))[:, cols]
        assert list(np.abs(vals).max(axis=0) < 1e-12) == list(expected)
    assert list(_plot.zero_on_section(basis, cols, 0.0, scaled)) == [False, True, False]


@pytest.mark.parametrize(
    "group",
    ["Pnma", "P2_1/c", "P6_3/mmc", "Fm-3m", "Fd-3m:2", "P4/mmm", "Cmcm", "P2_12_12_1", "Ia-3d", "P-1"],
)
def test_default_functions_have_no_blank_row(db, group):
    basis = db.get(group)
    panels = _plot.plan_panels(basis)
    columns = list(dict.fromkeys(p["column"] for p in panels))
    assert len(columns) == _plot.DEFAULT_N_SPACE
    for c in columns:
        assert not all(p["zero"] for p in panels if p["column"] == c), (group, c)


def test_svg_draws_exactly_the_listed_elements(db, tmp_path):
    basis = db.get("P6_3/mmc")
    svg = _plot.plot_basis(basis, tmp_path / "e.svg", functions=[9], sections=[0.25], dpi=40).read_text()
    el = _plot_elements.section_elements(basis, 0.25)
    drawn = re.findall(r'id="(axis-[^"]+|centre)"', svg)
    assert sorted(d for d in drawn if d.startswith("axis-") and not d.startswith("axis2")) == sorted(
        f"axis-{s}" for _, s in el.axes
    )
    assert "(mirror plane)" in svg


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_output_formats(db, tmp_path, suffix):
    path = _plot.plot_basis(db.get("P2_1/c"), tmp_path / f"x{suffix}", functions=[2], sections=[0], dpi=40)
    head = path.read_bytes()[:8]
    assert {".png": head.startswith(b"\x89PNG"), ".svg": b"<?xml" in head, ".pdf": head.startswith(b"%PDF")}[
        suffix
    ]
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        _plot.plot_basis(db.get("P2_1/c"), tmp_path / "x.jpg", functions=[2])


# ----------------------------------------------------------------- a crystal
def test_structure_picture(db, tmp_path):
    pytest.importorskip("spglib")
    r = basisdb.featurize("examples/NaCl.cif", db=db)
    cell_pos, cell_z = _plot.cell_content(r.basis, r.positions, r.numbers)
    assert len(cell_pos) == 8 and sorted(cell_z.tolist()) == [11] * 4 + [17] * 4
    z = _plot.structure_section(r.basis, cell_pos)
    column = _plot.structure_function(r.basis, cell_pos, cell_z, z)
    assert column > 0 and not _plot.zero_on_section(r.basis, [column], z)[0]
    svg = _plot.plot_structure(r, tmp_path / "nacl.svg", dpi=40).read_text()
    assert (
        svg.count('id="atom"') == 4
    )  # the atoms of the cell on z = 0: Na at 0,0 and 1/2,1/2; Cl at 1/2,0 and 0,1/2
    assert "NaCl" in svg and "section z = 0" in svg


def test_default_section_goes_through_atoms():
    """One atom per height (MoS2's layers: S at 0.1213, Mo at 1/4, ...): the section is a height with atoms
    on it, the special one (Mo at 1/4), never a rounded height with no atom (1/8)."""
    heights = np.array([0.1213, 0.25, 0.3787, 0.6213, 0.75, 0.8787])
    pos = np.stack([np.full(6, 1 / 3), np.full(6, 2 / 3), heights], axis=1)
    assert _plot.structure_section(None, pos) == 0.25
    off = np.stack([np.zeros(3), np.zeros(3), np.array([0.1213, 0.3787, 0.6])], axis=1)
    assert _plot.structure_section(None, off) == 0.1213  # no special height: an atom's own height
    two = np.stack([np.zeros(3), np.zeros(3), np.array([0.1, 0.1, 0.5])], axis=1)
    assert _plot.structure_section(None, two) == 0.1  # the height most atoms lie on


def test_cli_cif(monkeypatch, tmp_path):
    pytest.importorskip("spglib")
    import os

    cif = os.path.abspath("examples/NaCl.cif")
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["plot", "--cif", cif, "--dpi", "40"], prog_name="basisdb")
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == "wrote NaCl.png" and (tmp_path / "NaCl.png").stat().st_size > 1000
    out = CliRunner().invoke(
        cli,
        ["plot", "--cif", cif, "-o", "n.pdf", "--functions", "3", "--sections", "1/4", "--dpi", "40"],
        prog_name="basisdb",
    )
    assert out.exit_code == 0, out.output
    for args, contains in [
        (["plot", "225", "--cif", cif], "--cif"),
        (["plot", "225", "-o", "x.gif"], ".png, .svg or .pdf"),
    ]:
        out = CliRunner().invoke(cli, args, prog_name="basisdb")
        assert out.exit_code != 0 and contains in out.stderr, out.stderr


def test_cli_refuses_sections_for_a_plane_group(tmp_path):
    out = CliRunner().invoke(
        cli, ["plot", "--plane", "p4gm", "--sections", "0,1/2", "-o", str(tmp_path / "p.png")]
    )
    assert out.exit_code == 2 and "a plane group has no sections" in out.output
    assert not (tmp_path / "p.png").exists()
