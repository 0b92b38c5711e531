"""Pictures of real basis functions (``basisdb plot``).  Needs matplotlib (``pip install basisdb[plot]``).

matplotlib is imported here only, and only when a picture is drawn: ``import
basisdb`` never loads it.  Figures are drawn with the Agg canvas directly
(no pyplot, no global backend switch), so this works without a display and does
not disturb a caller's own matplotlib state.

Geometry.  Pictures use a metric that shows the symmetry: hexagonal axes
(a = b, gamma = 120 degrees) for plane groups on a hexagonal lattice and for
space-group settings on hexagonal axes, square (a = b, gamma = 90 degrees) for
everything else (any metric is allowed for oblique and rectangular groups; the
square one is a special case).  Fractional (x, y) are mapped to the page by
(x, y) -> x a + y b with a = (1, 0) and b = (0, 1) or (-1/2, sqrt(3)/2).
"""
from __future__ import annotations

import os
from fractions import Fraction
from math import gcd
from pathlib import Path

import numpy as np

from ._basis import Basis
from ._boxindex import box_frequencies

__all__ = ["require_matplotlib", "cell_values", "save_cell_png", "plot_basis", "default_columns", "symmetry_elements", "page_axes"]

_INSTALL = "plotting needs matplotlib, an optional extra: pip install basisdb[plot]"


def require_matplotlib():
    """Import matplotlib, or raise ImportError with the one line that says what to install."""
    try:
        import matplotlib
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.image  # noqa: F401
    except ImportError:
        raise ImportError(_INSTALL) from None
    return matplotlib


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


def _values(basis: Basis, columns, frac: np.ndarray) -> np.ndarray:
    """Real basis columns ``columns`` at fractional points ``frac`` (N, d): (N, len(columns)).

    f_c(x) = sum_k B[k, c] exp(2 pi i k.x) with B the real basis (only the rows the
    chosen columns use, so even P 1 with thousands of functions is cheap).
    """
    dense = basis.real_basis()[:, list(columns)].toarray()  # (n_box, len(columns)), small
    rows = np.flatnonzero(np.any(dense != 0, axis=1))
    freqs = box_frequencies(basis.kmax, basis.dim)[rows]
    coeff = dense[rows]
    waves = np.exp(2j * np.pi * (frac @ freqs.T))
    return (waves @ coeff).real


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


def save_cell_png(basis: Basis, column: int, path, pixels: int = 64, centre=(0.0, 0.0), z: float = 0.0, cmap: str = "RdBu_r") -> Path:
    """Write ``cell_values`` as a PNG of exactly ``pixels`` x ``pixels``: no axes, no margins.

    The colour scale is symmetric about 0 (blue negative, red positive), and the
    image is drawn with y upwards (its top row is the largest y).
    """
    mpl = require_matplotlib()
    values = cell_values(basis, column, pixels, centre, z)
    scale = float(np.abs(values).max()) or 1.0
    mpl.image.imsave(os.fspath(path), values, cmap=cmap, vmin=-scale, vmax=scale, origin="lower")
    return Path(path)


# ----------------------------------------------------------------- symmetry elements
def _rotation_order(rot: np.ndarray) -> int:
    n, m = 1, rot.copy()
    while not np.array_equal(m, np.eye(len(rot), dtype=m.dtype)):
        m, n = m @ rot, n + 1
    return n


def symmetry_elements(basis: Basis) -> tuple[list, list]:
    """Rotation points and reflection lines of a plane group, within one cell (fractional, exact).

    Returns ``(points, lines)``: points are ``((x, y), n)`` with 0 <= x, y < 1 and n
    the highest rotation order at that point (2, 3, 4 or 6); lines are
    ``((x0, y0), (vx, vy), is_mirror)``, the line x0 + s v of a reflection part,
    ``is_mirror`` False for a glide line that carries no mirror.  Coordinates are
    Fractions; lines are listed once per distinct line through the cell [0, 1)^2.
    """
    if basis.dim != 2:
        raise ValueError("symmetry elements are drawn for plane groups only")
    den = basis.denominator
    ops = [(r.astype(np.int64), [Fraction(int(v), den) for v in t]) for r, t in zip(basis.rotations, basis.translations)]
    ident = np.eye(2, dtype=np.int64)
    cands = set()
    for rot, t in ops:
        if round(np.linalg.det(rot)) != 1 or np.array_equal(rot, ident):
            continue
        a = ident - rot  # (I - R) x = t + m, x = adj(I - R)(t + m) / det(I - R)
        det = int(round(np.linalg.det(a)))
        adj = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]])
        for m0 in range(-det, det + 1):
            for m1 in range(-det, det + 1):
                w = (t[0] + m0, t[1] + m1)
                x = tuple((adj[i, 0] * w[0] + adj[i, 1] * w[1]) / det % 1 for i in range(2))
                cands.add(x)
    points = []
    for x in sorted(cands):
        n = sum(
            1
            for rot, t in ops
            if round(np.linalg.det(rot)) == 1
            and all((rot[i, 0] * x[0] + rot[i, 1] * x[1] + t[i] - x[i]).denominator == 1 for i in range(2))
        )
        points.append((x, n))
    lines: dict[tuple, bool] = {}
    for rot, t in ops:
        if round(np.linalg.det(rot)) != -1:
            continue
        v = _axis_direction(rot)
        for m0 in range(-2, 3):
            for m1 in range(-2, 3):
                w = (t[0] + m0, t[1] + m1)
                perp = [(w[i] - (rot[i, 0] * w[0] + rot[i, 1] * w[1])) / 4 for i in range(2)]  # (I - R) w / 4
                glide = [(w[i] + (rot[i, 0] * w[0] + rot[i, 1] * w[1])) / 2 for i in range(2)]  # (I + R) w / 2
                key = _line_key(perp, v)
                mirror = all(g.denominator == 1 for g in glide)
                lines[key] = lines.get(key, False) or mirror
    out_lines = []
    for (v0, v1, c), mirror in sorted(lines.items()):
        n = (-v1, v0)  # the line is n.x = c; a point on it:
        point = (Fraction(c, 1) / n[0], Fraction(0)) if n[0] else (Fraction(0), Fraction(c, 1) / n[1])
        out_lines.append((point, (v0, v1), mirror))
    return points, out_lines


def _axis_direction(rot: np.ndarray) -> tuple[int, int]:
    """Primitive integer v with R v = v (the line direction of a 2-D reflection), first non-zero entry > 0."""
    a, b = next(row for row in (rot - np.eye(2, dtype=np.int64)).tolist() if any(row))
    g = gcd(a, b)
    v = (b // g, -a // g)
    return v if (v[0] > 0 or (v[0] == 0 and v[1] > 0)) else (-v[0], -v[1])


def _line_key(x0, v) -> tuple:
    """(v, c mod 1) naming the line x0 + s v modulo lattice translations.

    With the integer normal n = (-v_y, v_x) (coprime entries, so n.Z^2 = Z) the line
    is n.x = c with c = n.x0, and a lattice translation changes c by an integer.
    """
    c = (-v[1] * x0[0] + v[0] * x0[1]) % 1
    return (v[0], v[1], c)


# ----------------------------------------------------------------- figures
def _grid_shape(n: int) -> tuple[int, int]:
    ncols = min(n, 4)
    return (n + ncols - 1) // ncols, ncols


def _panel_values(basis: Basis, column: int, cells: int, z: float | None, res: int):
    """Values on a page-aligned grid covering ``cells`` x ``cells`` cells, and its extent."""
    axes = page_axes(basis)
    corners = axes @ np.array([[0, cells, 0, cells], [0, 0, cells, cells]], dtype=float)
    (x0, y0), (x1, y1) = corners.min(axis=1), corners.max(axis=1)
    px = np.linspace(x0, x1, res)
    py = np.linspace(y0, y1, max(2, int(res * (y1 - y0) / (x1 - x0))))
    gx, gy = np.meshgrid(px, py, indexing="xy")
    frac = np.linalg.solve(axes, np.stack([gx.ravel(), gy.ravel()]))
    pts = frac.T if z is None else np.column_stack([frac.T, np.full(gx.size, z)])
    return _values(basis, [column], pts)[:, 0].reshape(gx.shape), (x0, x1, y0, y1)


#: colour levels: a banded map shows level lines (and keeps the PNGs small)
_LEVELS = 17


def _draw_panel(ax, basis: Basis, values: np.ndarray, extent, scale: float, cells: int) -> None:
    from matplotlib import colormaps

    axes = page_axes(basis)
    cmap = colormaps["RdBu_r"].resampled(_LEVELS)
    ax.imshow(values, origin="lower", extent=extent, cmap=cmap, vmin=-scale, vmax=scale, interpolation="nearest")
    for i in range(cells + 1):  # cell edges
        for a, b in (((i, 0), (i, cells)), ((0, i), (cells, i))):
            seg = axes @ np.array([a, b], dtype=float).T
            ax.plot(seg[0], seg[1], color="0.45", lw=0.5)
    if basis.dim == 2:
        _draw_elements(ax, basis, axes)
    x0, x1, y0, y1 = extent
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_axis_off()


_MARKERS = {2: "o", 3: "^", 4: "s", 6: "h"}


def _draw_elements(ax, basis: Basis, axes: np.ndarray) -> None:
    """Symmetry elements in the first cell, as in the International Tables' diagrams:
    rotation points (2 dot, 3 triangle, 4 square, 6 hexagon), mirror lines (solid)
    and glide lines (dashed)."""
    points, lines = symmetry_elements(basis)
    for (x, y), n in points:
        pts = np.array([[float(x) + i, float(y) + j] for i in (0, 1) for j in (0, 1) if float(x) + i <= 1 and float(y) + j <= 1]).T
        page = axes @ pts
        ax.scatter(page[0], page[1], marker=_MARKERS.get(n, "o"), s=12 if n > 2 else 6, c="k", linewidths=0, zorder=3)
    for (px, py), (vx, vy), mirror in lines:
        p, v = np.array([float(px), float(py)]), np.array([float(vx), float(vy)])
        for i in range(-2, 3):
            for j in range(-2, 3):
                seg = _clip_line(p + (i, j), v)
                if seg is not None:
                    page = axes @ seg.T
                    ax.plot(page[0], page[1], color="k", lw=0.6, ls="-" if mirror else (0, (2.5, 1.5)), alpha=0.8, zorder=2)


def _clip_line(p: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    """The segment of the line p + s v inside the cell [0, 1]^2 (fractional), or None."""
    lo, hi = -np.inf, np.inf
    for i in range(2):
        if v[i] == 0:
            if not 0 <= p[i] <= 1:
                return None
        else:
            s0, s1 = sorted(((0 - p[i]) / v[i], (1 - p[i]) / v[i]))
            lo, hi = max(lo, s0), min(hi, s1)
    if hi - lo <= 1e-9:
        return None
    return np.array([p + lo * v, p + hi * v])


def default_columns(basis: Basis, n: int) -> list[int]:
    """The first ``n`` real basis functions after the constant one (just [0] for a 1-function basis)."""
    return list(range(1, min(basis.n_basis, n + 1))) or [0]


def plot_basis(basis: Basis, path, functions=None, n: int = 12, cells: int = 2, sections=(0.0, 0.25, 0.5), dpi: int = 80) -> Path:
    """Write a PNG of real basis functions of ``basis`` to ``path``.

    Plane groups: a grid of panels, function ``functions`` (default: 1..n, skipping the
    constant function 0) over ``cells`` x ``cells`` cells with the cell edges, mirror
    lines (solid), glide lines (dashed) and rotation points (2: dot, 3: triangle,
    4: square, 6: hexagon) drawn in the first cell.  Space groups: one row per function, one column per
    section z in ``sections``.  Colours: red positive, blue negative, scaled per panel.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = default_columns(basis, n) if functions is None else [int(c) for c in functions]
    if not columns:
        raise ValueError("no basis functions selected")
    bad = [c for c in columns if not 0 <= c < basis.n_basis]
    if bad:
        raise ValueError(f"basis function {bad[0]} out of range: this basis has functions 0..{basis.n_basis - 1}")
    s = basis.setting
    if basis.is_plane:
        panels = [(c, None) for c in columns]
        nrows, ncols = _grid_shape(len(panels))
        title = f"{s.hm_full} (plane group {s.number}), real basis functions, K={basis.kmax}"
    else:
        zs = [float(z) for z in sections]
        panels = [(c, z) for c in columns for z in zs]
        nrows, ncols = len(columns), len(zs)
        title = f"{s.hm_extended} (hall {s.hall_number}), sections z = const, K={basis.kmax}"
    corners = page_axes(basis) @ np.array([[0, 1, 0, 1], [0, 0, 1, 1]], dtype=float)
    width, height = np.ptp(corners, axis=1)
    panel_w, panel_h = 1.9, 1.9 * height / width  # inches; the panel has the cells' page aspect
    res = int(panel_w * dpi)  # one sample per pixel
    fig = Figure(figsize=(panel_w * ncols, (panel_h + 0.2) * nrows + 0.3), dpi=dpi)
    FigureCanvasAgg(fig)
    fig.suptitle(title, fontsize=8)
    grids = [_panel_values(basis, column, cells, z, res) for column, z in panels]
    scale = {}  # one colour scale per function (all its sections), so a near-zero section looks near zero
    for (column, _), (values, _) in zip(panels, grids):
        scale[column] = max(scale.get(column, 0.0), float(np.abs(values).max()))
    for i, ((column, z), (values, extent)) in enumerate(zip(panels, grids)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        _draw_panel(ax, basis, values, extent, scale[column] or 1.0, cells)
        label = f"#{column}" if z is None else f"#{column}, z={_fmt_z(z)}"
        ax.set_title(label, fontsize=7, pad=2)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.35 / ((panel_h + 0.2) * nrows + 0.3), wspace=0.08, hspace=0.25)
    fig.savefig(os.fspath(path), dpi=dpi, format="png")
    return Path(path)


def _fmt_z(z: float) -> str:
    f = Fraction(z).limit_denominator(48)
    return str(f) if abs(float(f) - z) < 1e-12 else f"{z:g}"
