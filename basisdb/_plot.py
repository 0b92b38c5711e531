"""Pictures of real basis functions (``basisdb plot``).  Needs matplotlib (``pip install basisdb[plot]``).

matplotlib is imported here only, and only when a picture is drawn: ``import
basisdb`` never loads it.  Figures are drawn with the Agg canvas directly
(no pyplot, no global backend switch), so this works without a display and does
not disturb a caller's own matplotlib state.  The file type follows the suffix
of the output path: ``.png``, ``.svg`` or ``.pdf``.

Geometry.  Pictures use a metric that shows the symmetry: hexagonal axes
(a = b, gamma = 120 degrees) for plane groups on a hexagonal lattice and for
space-group settings on hexagonal axes, square (a = b, gamma = 90 degrees) for
everything else (any metric is allowed for oblique and rectangular groups; the
square one is a special case).  Fractional (x, y) are mapped to the page by
(x, y) -> x a + y b with a = (1, 0) and b = (0, 1) or (-1/2, sqrt(3)/2).  A
crystal (``plot_structure``) is drawn on its own cell's a, b and gamma.

Colours.  One symmetric scale per figure (red positive, blue negative, a colour
bar at the right).  A function whose largest value on a section is below
``ZERO_RTOL`` times its largest value over the whole cell is *zero on that
section*: its panel is left blank and says so.  Symmetry elements are those of
``_plot_elements.section_elements``, drawn in the first cell.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._basis import Basis
from ._boxindex import box_frequencies
from ._plot_elements import section_elements, symmetry_elements

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "require_matplotlib",
    "cell_values",
    "save_cell_png",
    "plot_basis",
    "plot_structure",
    "default_columns",
    "choose_columns",
    "function_max",
    "zero_on_section",
    "plan_panels",
    "symmetry_elements",
    "section_elements",
    "page_axes",
    "FORMATS",
    "ZERO_RTOL",
]

_INSTALL = "plotting needs matplotlib, an optional extra: pip install basisdb[plot]"

#: output types, by file suffix
FORMATS = (".png", ".svg", ".pdf")
#: a function is zero on a section when max |f| there <= ZERO_RTOL * max |f| over the cell
ZERO_RTOL = 1e-8
#: default resolution of PNG output (dots per inch)
DEFAULT_DPI = 120
#: default number of functions: plane groups, space groups (one row of sections each)
DEFAULT_N_PLANE, DEFAULT_N_SPACE = 12, 6


def require_matplotlib():
    """Import matplotlib, or raise ImportError with the one line that says what to install."""
    try:
        import matplotlib
        import matplotlib.backends.backend_agg
        import matplotlib.figure
        import matplotlib.image
    except ImportError:
        raise ImportError(_INSTALL) from None
    return matplotlib


def output_format(path) -> str:
    """'png', 'svg' or 'pdf' from the suffix of ``path``; ValueError for anything else."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot write {suffix or 'a file without suffix'!r}: the output must end in .png, .svg or .pdf"
        )
    return suffix[1:]


# ----------------------------------------------------------------- geometry and values
def _on_hexagonal_axes(basis: Basis) -> bool:
    """True when some rotation's (x, y) block is not a signed permutation (hexagonal axes)."""
    block = basis.rotations[:, :2, :2]
    return bool(np.any(np.count_nonzero(block, axis=2) > 1))


def page_axes(basis: Basis) -> np.ndarray:
    """(2, 2) columns a, b: the page vectors of the fractional axes x, y (module docstring)."""
    if _on_hexagonal_axes(basis):
        return np.array([[1.0, -0.5], [0.0, np.sqrt(3.0) / 2.0]])
    return np.eye(2)


class _Values:
    """Evaluates chosen real basis columns; the real basis is built once per figure."""

    def __init__(self, basis: Basis):
        self.basis = basis
        self._real: sp.csc_array | None = None

    def __call__(self, columns, frac: np.ndarray) -> np.ndarray:
        """Real basis columns ``columns`` at fractional points ``frac`` (N, d): (N, len(columns)).

        f_c(x) = sum_k B[k, c] exp(2 pi i k.x) with B the real basis (only the rows the
        chosen columns use, so even P 1 with thousands of functions is cheap).
        """
        if self._real is None:
            self._real = self.basis.real_basis()
        dense = self._real[:, list(columns)].toarray()
        rows = np.flatnonzero(np.any(dense != 0, axis=1))
        freqs = box_frequencies(self.basis.kmax, self.basis.dim)[rows]
        waves = np.exp(2j * np.pi * (frac @ freqs.T))
        return (waves @ dense[rows]).real


def _values(basis: Basis, columns, frac: np.ndarray) -> np.ndarray:
    return _Values(basis)(columns, frac)


def cell_values(basis: Basis, column: int, pixels: int = 64, centre=(0.0, 0.0), z: float = 0.0) -> np.ndarray:
    """Real basis function ``column`` over exactly one unit cell, in fractional coordinates.

    Returns a (pixels, pixels) array ``A`` sampled at pixel centres
    x_i = centre_x - 1/2 + (i + 1/2) / pixels (columns, left to right) and likewise
    y (rows, **bottom to top**: row 0 is the smallest y, as ``origin='lower'``).
    The cell is centred on ``centre``: a rotation or mirror of the group through
    ``centre`` that maps the square of fractional coordinates onto itself
    (e.g. the 4-fold axis of p4mm at the origin) maps the pixel grid onto itself,
    so it appears as an exact symmetry of ``A`` (``np.rot90``, ``A[:, ::-1]``, ...).
    Space groups: the section at height ``z``.
    """
    if not 0 <= column < basis.n_basis:
        raise ValueError(f"basis function {column} out of range for {basis.n_basis} functions")
    u = (np.arange(pixels) + 0.5) / pixels - 0.5
    xx, yy = np.meshgrid(u + centre[0], u + centre[1], indexing="xy")  # A[row=y, col=x]
    pts = [xx.ravel(), yy.ravel()] + ([np.full(xx.size, float(z))] if basis.dim == 3 else [])
    return _values(basis, [column], np.stack(pts, axis=1))[:, 0].reshape(pixels, pixels)


def save_cell_png(
    basis: Basis, column: int, path, pixels: int = 64, centre=(0.0, 0.0), z: float = 0.0, cmap: str = "RdBu_r"
) -> Path:
    """Write ``cell_values`` as a PNG of exactly ``pixels`` x ``pixels``: no axes, no margins.

    The colour scale is symmetric about 0 (blue negative, red positive), and the
    image is drawn with y upwards (its top row is the largest y).
    """
    mpl = require_matplotlib()
    values = cell_values(basis, column, pixels, centre, z)
    scale = float(np.abs(values).max()) or 1.0
    mpl.image.imsave(os.fspath(path), values, cmap=cmap, vmin=-scale, vmax=scale, origin="lower")
    return Path(path)


# ----------------------------------------------------------------- zero on a section
def function_max(basis: Basis, columns, values: _Values | None = None) -> np.ndarray:
    """max |f_c| over the cell for each column, sampled on a grid finer than the highest frequency."""
    values = values or _Values(basis)
    g = 2 * basis.kmax + 2
    u = np.arange(g) / g
    grid = np.stack(np.meshgrid(*([u] * basis.dim), indexing="ij"), axis=-1).reshape(-1, basis.dim)
    return np.abs(values(columns, grid)).max(axis=0)


def _section_grid(basis: Basis, z: float | None, g: int) -> np.ndarray:
    u = np.arange(g) / g
    xx, yy = np.meshgrid(u, u, indexing="xy")
    pts = [xx.ravel(), yy.ravel()]
    if basis.dim == 3:
        if z is None:
            raise ValueError("a section of a 3-D basis needs its height z")
        pts.append(np.full(xx.size, float(z)))
    return np.stack(pts, axis=1)


def zero_on_section(
    basis: Basis, columns, z: float | None, values: _Values | None = None, fmax=None
) -> np.ndarray:
    """For each column: True where the function is zero on the section z (module docstring: ZERO_RTOL).

    Sampled on a (2K + 2)^2 grid of the section; a trigonometric polynomial of degree K that vanishes
    there to round-off vanishes on the whole section."""
    values = values or _Values(basis)
    fmax = function_max(basis, columns, values) if fmax is None else np.asarray(fmax)
    on = np.abs(values(columns, _section_grid(basis, z, 2 * basis.kmax + 2))).max(axis=0)
    return on <= ZERO_RTOL * fmax


def default_columns(basis: Basis, n: int) -> list[int]:
    """The first ``n`` real basis functions after the constant one (just [0] for a 1-function basis)."""
    return list(range(1, min(basis.n_basis, n + 1))) or [0]


def choose_columns(basis: Basis, n: int, sections=None, values: _Values | None = None) -> list[int]:
    """The default functions: the first ``n`` after the constant one that are non-zero on at least one of
    ``sections`` (space groups), so that no row of the picture is blank."""
    if basis.dim == 2 or sections is None:
        return default_columns(basis, n)
    values = values or _Values(basis)
    chosen: list[int] = []
    start = 1
    while len(chosen) < n and start < basis.n_basis:
        block = list(range(start, min(basis.n_basis, start + 4 * n)))
        fmax = function_max(basis, block, values)
        zero = np.all([zero_on_section(basis, block, z, values, fmax) for z in sections], axis=0)
        chosen += [c for c, is_zero in zip(block, zero) if not is_zero]
        start = block[-1] + 1
    return chosen[:n] or [0]


# ----------------------------------------------------------------- figures
def _grid_shape(n: int) -> tuple[int, int]:
    ncols = min(n, 4)
    return (n + ncols - 1) // ncols, ncols


def _panel_values(
    basis: Basis, values: _Values, columns, cells: int, z: float | None, res: int, axes: np.ndarray
):
    """Values (len(columns), ny, nx) on a page-aligned grid covering ``cells`` x ``cells`` cells, and its extent."""
    corners = axes @ np.array([[0, cells, 0, cells], [0, 0, cells, cells]], dtype=float)
    (x0, y0), (x1, y1) = corners.min(axis=1), corners.max(axis=1)
    px = np.linspace(x0, x1, res)
    py = np.linspace(y0, y1, max(2, round(res * (y1 - y0) / (x1 - x0))))
    gx, gy = np.meshgrid(px, py, indexing="xy")
    frac = np.linalg.solve(axes, np.stack([gx.ravel(), gy.ravel()]))
    pts = frac.T if z is None else np.column_stack([frac.T, np.full(gx.size, float(z))])
    out = values(columns, pts).T.reshape(len(columns), *gx.shape)
    # outside the drawn cells (the corners of a hexagonal picture): blank
    inside = np.all((frac > -1e-9) & (frac < cells + 1e-9), axis=0).reshape(gx.shape)
    out[:, ~inside] = np.nan
    return out, (x0, x1, y0, y1)


#: colour levels: a banded map shows level lines (and keeps the PNGs small)
_LEVELS = 17
_MARKERS = {2: "o", 3: "^", 4: "s", 6: "h"}
_LINE_STYLES = {"m": "-", "g": (0, (3.0, 1.6)), "c": (0, (0.8, 1.4)), "n": (0, (3.0, 1.2, 0.8, 1.2))}
_LINE_NAMES = {"m": "mirror", "g": "glide (in section)", "c": "glide along c", "n": "n/d glide"}
_IN_PLANE = {"2": "-", "2_1": (0, (3.0, 1.6))}
_IN_PLANE_COLOUR = "#1a7f37"


def _cmap():
    from matplotlib import colormaps

    return colormaps["RdBu_r"].resampled(_LEVELS).with_extremes(bad=(1, 1, 1, 0))


def _draw_cell_edges(ax, axes: np.ndarray, cells: int) -> None:
    for i in range(cells + 1):
        for a, b in (((i, 0), (i, cells)), ((0, i), (cells, i))):
            seg = axes @ np.array([a, b], dtype=float).T
            ax.plot(seg[0], seg[1], color="0.45", lw=0.5, zorder=1)


def _finish(ax, extent) -> None:
    x0, x1, y0, y1 = extent
    pad = 0.02 * (x1 - x0)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _corners(p) -> list:
    """A point of [0, 1)^2 and its lattice images on the closed cell [0, 1]^2."""
    x, y = float(p[0]), float(p[1])
    return [(x + i, y + j) for i in (0, 1) for j in (0, 1) if x + i <= 1 + 1e-12 and y + j <= 1 + 1e-12]


def _draw_lines(ax, axes, lines, colour, styles, gid_prefix, lw=0.7, alpha=0.9, zorder=2.0) -> int:
    drawn = 0
    for (px, py), (vx, vy), kinds in lines:
        p, v = np.array([float(px), float(py)]), np.array([float(vx), float(vy)])
        kind = next(k for k in styles if k in kinds)
        segs = [s for i in range(-2, 3) for j in range(-2, 3) if (s := _clip_line(p + (i, j), v)) is not None]
        for seg in segs:
            page = axes @ seg.T
            (line,) = ax.plot(
                page[0],
                page[1],
                color=colour,
                lw=lw,
                ls=styles[kind],
                alpha=alpha,
                zorder=zorder,
                solid_capstyle="butt",
            )
            line.set_gid(f"{gid_prefix}-{kind}")
        drawn += 1
    return drawn


def _draw_elements(ax, el, axes: np.ndarray, small: float = 1.0) -> None:
    """The elements of one section (or plane group) in the first cell, in the style of the
    International Tables: axes along c as filled polygons (2 lens/dot, 3 triangle, 4 square,
    6 hexagon), screw axes open with the subscript, rotoinversion axes grey with a dot;
    inversion centres as small rings; planes containing c as lines (mirror solid, glide dashed,
    glide along c dotted, n/d glide dash-dot); 2-fold axes in the section as green lines."""
    _draw_lines(
        ax, axes, el.axes_in_plane, _IN_PLANE_COLOUR, _IN_PLANE, "axis2", lw=2.2, alpha=0.55, zorder=1.5
    )  # a halo under any plane
    _draw_lines(ax, axes, el.lines, "k", _LINE_STYLES, "line")
    for p, sym in el.axes:
        pts = np.array(_corners(p)).T
        page = axes @ pts
        rotoinv = sym.startswith("-")
        n, _, k = sym.lstrip("-").partition("_")
        n = int(n)
        size = (26 if n > 2 else 14) * small
        face = "0.55" if rotoinv else ("white" if k else "k")
        coll = ax.scatter(
            page[0], page[1], marker=_MARKERS[n], s=size, c=face, edgecolors="k", linewidths=0.6, zorder=4
        )
        coll.set_gid(f"axis-{sym}")
        if rotoinv:
            ax.scatter(page[0], page[1], marker="o", s=2.5 * small, c="k", linewidths=0, zorder=5)
        if k:
            for x, y in page.T:
                ax.text(x, y, k, fontsize=4.2 * small, ha="center", va="center", zorder=5, color="k")
    for p in el.centres:
        page = axes @ np.array(_corners(p)).T
        coll = ax.scatter(
            page[0],
            page[1],
            marker="o",
            s=30 * small,
            facecolors="none",
            edgecolors="k",
            linewidths=0.6,
            zorder=3,
        )
        coll.set_gid("centre")


def _clip_line(p: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """The segment of the line p + s v inside the cell [0, 1]^2 (fractional), or None."""
    lo, hi = -np.inf, np.inf
    for i in range(2):
        if v[i] == 0:
            if not -1e-12 <= p[i] <= 1 + 1e-12:
                return None
        else:
            s0, s1 = sorted(((0 - p[i]) / v[i], (1 - p[i]) / v[i]))
            lo, hi = max(lo, s0), min(hi, s1)
    if hi - lo <= 1e-9:
        return None
    return np.array([p + lo * v, p + hi * v])


def _fmt_z(z: float) -> str:
    f = Fraction(z).limit_denominator(48)
    return str(f) if abs(float(f) - z) < 1e-12 else f"{z:g}"


def _legend_text(basis: Basis) -> str:
    if basis.dim == 2:
        return "mirror ——   glide - - -   rotation points: 2 ●  3 ▲  4 ■  6 hexagon"
    return (
        "planes ⊥ section: mirror ——  glide - - -  glide along c ·····  n/d glide -·-·   "
        "axes ∥ c: 2 ●  3 ▲  4 ■  6 hexagon (open: screw, subscript shown; grey with dot: rotoinversion)   "
        "inversion ○   2-fold axes in section: green (2 solid, 2_1 dashed)"
    )


def plan_panels(basis: Basis, functions=None, n: int | None = None, sections=(0.0, 0.25, 0.5)) -> list[dict]:
    """What ``plot_basis`` draws, panel by panel: ``{'column', 'z', 'zero', 'elements'}`` in reading
    order (plane groups: ``z`` None).  ``zero`` is True for a function that is zero on that section."""
    values = _Values(basis)
    zs = [None] if basis.dim == 2 else [float(z) for z in sections]
    if not zs:
        raise ValueError("give at least one section")
    if functions is None:
        n = (DEFAULT_N_PLANE if basis.dim == 2 else DEFAULT_N_SPACE) if n is None else n
        columns = choose_columns(basis, n, None if basis.dim == 2 else zs, values)
    else:
        columns = [int(c) for c in functions]
    if not columns:
        raise ValueError("no basis functions selected")
    bad = [c for c in columns if not 0 <= c < basis.n_basis]
    if bad:
        raise ValueError(
            f"basis function {bad[0]} out of range: this basis has functions 0..{basis.n_basis - 1}"
        )
    fmax = function_max(basis, columns, values)
    zero = {z: zero_on_section(basis, columns, z, values, fmax) for z in zs}
    elements = {z: section_elements(basis, z) for z in zs}
    return [
        {"column": c, "z": z, "zero": bool(zero[z][i]), "elements": elements[z]}
        for i, c in enumerate(columns)
        for z in zs
    ]


def _colorbar(fig, mappable, scale: float, cmap, frame: tuple, label: str, fontsize: float) -> None:
    """The figure's one colour bar, right of the panels, on the symmetric scale [-scale, scale]
    (a bare ScalarMappable when every panel was blank).  frame: (fig_w, fig_h, right, top, bottom, cap) in inches."""
    fig_w, fig_h, right, top, bottom, cap = frame
    cb_ax = fig.add_axes(
        ((fig_w - right + 0.22) / fig_w, bottom / fig_h, 0.12 / fig_w, (fig_h - top - bottom - cap) / fig_h)
    )
    if mappable is None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        mappable = ScalarMappable(norm=Normalize(-scale, scale), cmap=cmap)
    cb = fig.colorbar(mappable, cax=cb_ax)
    cb.ax.tick_params(labelsize=5.5, length=2)
    cb.set_label(label, fontsize=fontsize)


class _PanelPage:
    """A page of nrows x ncols equal panels (inches): title band, a caption line per panel, a legend
    band at the bottom and the colour bar's margin at the right.  Shared by the scalar and vector
    section pictures."""

    top, cap, gap, left, right = 0.42, 0.2, 0.08, 0.1, 0.75

    def __init__(
        self, nrows: int, ncols: int, panel_w: float, panel_h: float, bottom: float, dpi: int, title: str
    ):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.ncols, self.panel_w, self.panel_h, self.bottom = ncols, panel_w, panel_h, bottom
        self.fig_w = self.left + ncols * panel_w + (ncols - 1) * self.gap + self.right
        self.fig_h = self.top + nrows * (panel_h + self.cap) + (nrows - 1) * self.gap + bottom
        self.fig = Figure(figsize=(self.fig_w, self.fig_h), dpi=dpi)
        FigureCanvasAgg(self.fig)
        self.fig.text(0.5, 1 - 0.2 / self.fig_h, title, ha="center", va="center", fontsize=8.5)

    def axes(self, i: int):
        """The axes of panel i (row-major)."""
        r, c = divmod(i, self.ncols)
        x = self.left + c * (self.panel_w + self.gap)
        y = self.fig_h - self.top - (r + 1) * (self.panel_h + self.cap) - r * self.gap
        fw, fh = self.fig_w, self.fig_h
        return self.fig.add_axes((x / fw, y / fh, self.panel_w / fw, self.panel_h / fh))

    def colorbar(self, mappable, scale: float, cmap, label: str, fontsize: float) -> None:
        frame = (self.fig_w, self.fig_h, self.right, self.top, self.bottom, self.cap)
        _colorbar(self.fig, mappable, scale, cmap, frame, label, fontsize)

    def legend(self, text: str, **kw) -> None:
        """One line (or a wrapped paragraph) of legend centred in the bottom band."""
        self.fig.text(
            0.5 * (self.fig_w - self.right) / self.fig_w,
            0.5 * self.bottom / self.fig_h,
            text,
            ha="center",
            va="center",
            fontsize=6,
            color="0.2",
            **kw,
        )


def _zero_label(ax, text: str = "0 on this section", fontsize: float = 6.5) -> None:
    """The label of a panel on which the function (or field component) vanishes identically."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=fontsize,
        color="0.3",
        zorder=6,
        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.6", "lw": 0.5},
        gid="zero-label",
    )


def _heatmap(ax, image: np.ndarray, extent, cmap, scale: float, **kw):
    """imshow of values on a page-aligned pixel grid, symmetric colour range [-scale, scale]."""
    return ax.imshow(
        image,
        origin="lower",
        extent=extent,
        cmap=cmap,
        vmin=-scale,
        vmax=scale,
        interpolation="nearest",
        zorder=0,
        **kw,
    )


def plot_basis(
    basis: Basis,
    path,
    functions=None,
    n: int | None = None,
    cells: int = 2,
    sections=(0.0, 0.25, 0.5),
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Write a picture (PNG, SVG or PDF by the suffix of ``path``) of real basis functions of ``basis``.

    Plane groups: a grid of panels, functions ``functions`` (default: 1..n, skipping the
    constant function 0) over ``cells`` x ``cells`` cells.  Space groups: one row per function,
    one column per section z in ``sections``; by default the first ``n`` functions that are not
    zero on every section.  Symmetry elements (``section_elements``) are drawn in the first cell,
    one symmetric colour scale serves the whole figure (colour bar at the right), and a function
    that is zero on a section is left blank and labelled so.
    """
    fmt = output_format(path)
    require_matplotlib()
    panels = plan_panels(basis, functions, n, sections)
    s = basis.setting
    zs = list(dict.fromkeys(p["z"] for p in panels))
    columns = list(dict.fromkeys(p["column"] for p in panels))
    if basis.is_plane:
        nrows, ncols = _grid_shape(len(panels))
        title = f"{s.hm_full} (plane group {s.number}): real basis functions, K = {basis.kmax}"
    else:
        nrows, ncols = len(columns), len(zs)
        title = (
            f"{s.hm_extended} (No. {s.number}, hall {s.hall_number}): sections z = const, K = {basis.kmax}"
        )
    axes = page_axes(basis)
    corners = axes @ np.array([[0, 1, 0, 1], [0, 0, 1, 1]], dtype=float)
    width, height = np.ptp(corners, axis=1)
    panel_w = 1.7 if cells > 1 else 1.3
    panel_h = panel_w * height / width
    res = int(min(panel_w * dpi, 300))  # about one sample per pixel
    values = _Values(basis)
    grids, extent = {}, None
    for z in zs:
        cols_z = [p["column"] for p in panels if p["z"] == z and not p["zero"]]
        if cols_z:
            vals, extent = _panel_values(basis, values, cols_z, cells, z, res, axes)
            grids.update({(c, z): v for c, v in zip(cols_z, vals)})
    if extent is None:
        _, extent = _panel_values(basis, values, [0], cells, zs[0], 8, axes)
    scale = max([float(np.nanmax(np.abs(v))) for v in grids.values()] + [0.0]) or 1.0

    # layout in inches: title band, panels (each with a caption line), legend band; colour bar at the right
    page = _PanelPage(nrows, ncols, panel_w, panel_h, 0.5 if basis.dim == 3 else 0.3, dpi, title)
    cmap = _cmap()
    image = None
    for i, p in enumerate(panels):
        ax = page.axes(i)
        key = (p["column"], p["z"])
        if key in grids:
            image = _heatmap(ax, grids[key], extent, cmap, scale)
        else:
            _zero_label(ax)
        _draw_cell_edges(ax, axes, cells)
        _draw_elements(ax, p["elements"], axes)
        _finish(ax, extent)
        label = f"#{p['column']}" if p["z"] is None else f"#{p['column']}   z = {_fmt_z(p['z'])}"
        plane = p["elements"].plane
        if plane:
            label += f"   ({'mirror' if 'm' in plane else '/'.join(sorted(plane)) + '-glide'} plane)"
        ax.set_title(label, fontsize=6.5, pad=2.5)
    page.colorbar(image, scale, cmap, "value of the basis function", 6)
    page.legend(_legend_text(basis), wrap=True)
    fig = page.fig
    _save(fig, path, fmt, dpi)
    return Path(path)


def _save(fig, path, fmt: str, dpi: int) -> None:
    from matplotlib import rc_context

    # SVG text stays text (searchable, small); PDF embeds TrueType fonts; no timestamps in PDF/SVG
    meta = {"png": None, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[fmt]
    with rc_context({"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "basisdb"}):
        fig.savefig(os.fspath(path), dpi=dpi, format=fmt, metadata=meta)


# ----------------------------------------------------------------- a crystal
# fmt: off
_SYMBOLS = ["X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"]
# fmt: on


def _symbol(z: int) -> str:
    return _SYMBOLS[z] if 0 <= z < len(_SYMBOLS) else f"Z{z}"


def cell_content(basis: Basis, positions, numbers, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """All atoms of the conventional cell: ``positions`` expanded by the group's operations, in [0, 1)."""
    rots, trans = basis.operations()
    pos = np.asarray(positions, dtype=float)
    imgs = (np.einsum("oij,nj->noi", rots, pos) + trans[None]) % 1.0  # (n, order, 3)
    out_p: list[np.ndarray] = []
    out_z: list[int] = []
    for i in range(len(pos)):
        for q in imgs[i]:
            q = np.where(q > 1 - tol, 0.0, q)
            if not any(np.all(np.abs(((q - p) + 0.5) % 1.0 - 0.5) < tol) for p in out_p):
                out_p.append(q)
                out_z.append(int(numbers[i]))
    return np.array(out_p).reshape(-1, 3), np.array(out_z, dtype=np.int64)


def structure_axes(lattice) -> np.ndarray:
    """Page vectors of x, y for a cell with rows a, b, c: a along the page's x, |a| = 1, true b/a and gamma."""
    a, b = np.asarray(lattice, dtype=float)[:2]
    la, lb = np.linalg.norm(a), np.linalg.norm(b)
    cos_g = float(a @ b) / (la * lb)
    return np.array([[1.0, lb / la * cos_g], [0.0, lb / la * np.sqrt(max(0.0, 1 - cos_g**2))]])


def structure_section(basis: Basis, cell_pos: np.ndarray) -> float:
    """The default section of a crystal: the height z (mod 1) that the most atoms of the cell lie on.

    Heights are grouped to the nearest 1/48.  Among the groups with most atoms, the first whose atoms lie
    on a multiple of 1/48 (within 1e-6: a special height) gives that value, else the first group gives
    its first atom's height: a section always goes through atoms (MoS2, one atom per height: the Mo
    layer at 1/4, not 1/8, which the S at 0.1213 rounds to and where no atom lies)."""
    z = np.asarray(cell_pos, dtype=float)[:, 2] % 1.0
    zs = np.round(z * 48) / 48 % 1.0
    uniq, counts = np.unique(zs, return_counts=True)
    best = uniq[counts == counts.max()]
    for value in best:
        gap = np.abs(z[zs == value] - value)
        if np.min(np.minimum(gap, 1.0 - gap)) <= 1e-6:
            return float(value)
    return float(z[zs == best[0]][0])


def structure_function(basis: Basis, cell_pos, cell_numbers, z: float, values: _Values | None = None) -> int:
    """The default function of a crystal picture: the non-constant one with the largest
    |sum_j Z_j f_c(x_j)| over the cell's atoms (the crystal's strongest invariant component) that is
    not zero on the section z."""
    values = values or _Values(basis)
    weight = np.asarray(cell_numbers, dtype=float)
    weight = np.where(weight > 0, weight, 1.0)
    strength = np.abs(weight @ basis.evaluate(np.asarray(cell_pos, dtype=float)))
    strength[0] = -1.0
    order = [int(c) for c in np.argsort(-strength, kind="stable") if c != 0]
    for start in range(0, len(order), 16):
        block = order[start : start + 16]
        zero = zero_on_section(basis, block, z, values)
        for c, is_zero in zip(block, zero):
            if not is_zero:
                return c
    return 0


def plot_structure(
    result,
    path,
    function: int | None = None,
    z: float | None = None,
    cells: int = 1,
    dpi: int = DEFAULT_DPI,
    slab: float = 0.6,
) -> Path:
    """A crystal in its basis: the section z of its canonical cell (true a, b, gamma), the atoms within
    ``slab`` Angstrom of it (full size on the section, smaller further off), one invariant function in
    colour and the symmetry elements of the section.

    ``result`` is a ``basisdb.featurize`` result; only its ``basis``, ``positions``, ``numbers`` and
    ``lattice`` are used.  Defaults: z the height with most atoms; the function with the largest
    |sum_j Z_j f_c(x_j)| (``structure_function``)."""
    fmt = output_format(path)
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    basis = result.basis
    lattice = np.asarray(result.lattice, dtype=float)
    cell_pos, cell_z = cell_content(basis, result.positions, result.numbers)
    z = structure_section(basis, cell_pos) if z is None else float(z)
    values = _Values(basis)
    column = structure_function(basis, cell_pos, cell_z, z, values) if function is None else int(function)
    if not 0 <= column < basis.n_basis:
        raise ValueError(
            f"basis function {column} out of range: this basis has functions 0..{basis.n_basis - 1}"
        )
    zero = bool(zero_on_section(basis, [column], z, values)[0])
    axes = structure_axes(lattice)
    el = section_elements(basis, z, axes=axes)
    corners = axes @ np.array([[0, cells, 0, cells], [0, 0, cells, cells]], dtype=float)
    width, height = np.ptp(corners, axis=1)
    panel_w = 3.6
    panel_h = panel_w * height / width
    fig_w, fig_h = panel_w + 1.5, panel_h + 0.95
    fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.15 / fig_w, 0.45 / fig_h, panel_w / fig_w, panel_h / fig_h))
    s = basis.setting
    counts: dict[int, int] = {}
    for n in cell_z:
        counts[int(n)] = counts.get(int(n), 0) + 1
    from math import gcd as _gcd

    g = 0
    for v in counts.values():
        g = _gcd(g, v)
    formula = "".join(f"{_symbol(k)}{v // g if v // g > 1 else ''}" for k, v in sorted(counts.items())) + (
        f" (x{g} in the cell)" if g > 1 else ""
    )
    fig.text(
        0.5,
        1 - 0.2 / fig_h,
        f"{formula}: {s.hm_extended} (No. {s.number}, hall {s.hall_number}), section z = {_fmt_z(z)}, function #{column}",
        ha="center",
        va="center",
        fontsize=7.5,
    )
    cmap = _cmap()
    res = int(min(panel_w * dpi, 450))
    if zero:
        _zero_label(ax, f"#{column} is 0 on this section", fontsize=7)
        scale = 1.0
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        image = ScalarMappable(norm=Normalize(-scale, scale), cmap=cmap)
        extent = (*np.sort(corners[0])[[0, -1]], *np.sort(corners[1])[[0, -1]])
    else:
        vals, extent = _panel_values(basis, values, [column], cells, z, res, axes)
        scale = float(np.nanmax(np.abs(vals))) or 1.0
        image = _heatmap(ax, vals[0], extent, cmap, scale, alpha=0.85)
    _draw_cell_edges(ax, axes, cells)
    _draw_elements(ax, el, axes, small=1.3)
    # atoms near the section, with their lattice images in the drawn cells
    d001 = abs(np.linalg.det(lattice)) / np.linalg.norm(np.cross(lattice[0], lattice[1]))
    dz = ((cell_pos[:, 2] - z + 0.5) % 1.0 - 0.5) * d001  # Angstrom from the section
    near = np.abs(dz) <= slab + 1e-9
    species = sorted(set(int(v) for v in cell_z))
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    shown = set()
    for i in np.flatnonzero(near):
        base = cell_pos[i, :2]
        pts = np.array([base + (a, b) for a in range(-1, cells + 1) for b in range(-1, cells + 1)])
        pts = pts[np.all((pts > -1e-6) & (pts < cells + 1e-6), axis=1)]
        page = axes @ pts.T
        on = abs(dz[i]) < 1e-3
        colour = palette(species.index(int(cell_z[i])) % 10)
        label = None if int(cell_z[i]) in shown else _symbol(int(cell_z[i]))
        shown.add(int(cell_z[i]))
        coll = ax.scatter(
            page[0],
            page[1],
            s=60 if on else 28,
            c=[colour],
            edgecolors="k",
            linewidths=0.8 if on else 0.4,
            alpha=1.0 if on else 0.55,
            zorder=7,
            label=label,
        )
        coll.set_gid("atom")
    _finish(ax, extent)
    if shown:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=6.5,
            frameon=False,
            handletextpad=0.2,
            borderaxespad=0.0,
        )
    cb_ax = fig.add_axes(((0.15 + panel_w + 0.2) / fig_w, 0.45 / fig_h, 0.11 / fig_w, 0.55 * panel_h / fig_h))
    cb = fig.colorbar(image, cax=cb_ax)
    cb.ax.tick_params(labelsize=5.5, length=2)
    cb.set_label(f"f_{column}", fontsize=6)
    n_on = int(np.sum(np.abs(dz) < 1e-3))
    fig.text(
        0.5,
        0.22 / fig_h,
        f"{n_on} atoms on the section (large), {int(near.sum()) - n_on} within {slab:g} Å (small, pale); cell a = {np.linalg.norm(lattice[0]):.3f} Å, "
        f"b = {np.linalg.norm(lattice[1]):.3f} Å, gamma = {np.degrees(np.arccos(np.clip((axes[0, 1]) / np.linalg.norm(axes[:, 1]), -1, 1))):.1f}°",
        ha="center",
        va="center",
        fontsize=5.5,
        color="0.25",
    )
    _save(fig, path, fmt, dpi)
    return Path(path)
