"""``basisdb plot --vector``: equivariant vector fields as arrows on sections z = const.

Each panel is one real basis field of ``Basis.vector(kind)`` on one section: arrows give the
components in the page (a and b drawn as in ``_plot.page_axes``: 120 degrees on hexagonal
axes, square otherwise), the colour the component along c (c drawn perpendicular to the
page, unit length).  The symmetry elements each section meets are drawn as in
``basisdb plot``.  matplotlib is imported by the function, never by ``import basisdb``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._basis import Basis
from ._plot import (
    DEFAULT_DPI,
    _cmap,
    _draw_cell_edges,
    _draw_elements,
    _finish,
    _fmt_z,
    _heatmap,
    _PanelPage,
    _save,
    _zero_label,
    output_format,
    page_axes,
    require_matplotlib,
)
from ._plot_elements import section_elements

__all__ = ["plot_vector", "vector_panels"]

#: arrows per cell edge
_ARROWS = 8


def _section_points(cells: int, z: float, m: int) -> tuple[np.ndarray, tuple[int, ...]]:
    u = (np.arange(m * cells) + 0.5) / m
    gx, gy = np.meshgrid(u, u, indexing="xy")
    frac = np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, float(z))])
    return frac, gx.shape


def vector_panels(
    basis: Basis, kind: str = "polar", functions=None, n: int = 4, sections=(0.0, 0.25, 0.5)
) -> list[dict]:
    """What ``plot_vector`` draws: ``{'column', 'z', 'zero'}`` per panel, reading order."""
    v = basis.vector(kind)
    if v.n_basis == 0:
        raise ValueError(f"{basis.setting.hm_extended} has no {kind} vector fields at K = {basis.kmax}")
    zs = [float(z) for z in sections]
    if not zs:
        raise ValueError("give at least one section")
    pts = np.concatenate([_section_points(1, z, 6)[0] for z in zs])
    size = (
        np.abs(v.evaluate(pts)).reshape(len(zs), -1, v.n_basis, 3).max(axis=(1, 3))
    )  # (sections, functions)
    if functions is None:
        columns = [int(c) for c in np.flatnonzero(size.max(axis=0) > 1e-9)[:n]] or [0]
    else:
        columns = [int(c) for c in functions]
        bad = [c for c in columns if not 0 <= c < v.n_basis]
        if bad:
            raise ValueError(f"vector field {bad[0]} out of range: this basis has fields 0..{v.n_basis - 1}")
    return [
        {"column": c, "z": z, "zero": bool(size[i, c] <= 1e-9)} for c in columns for i, z in enumerate(zs)
    ]


def plot_vector(
    basis: Basis,
    path,
    kind: str = "polar",
    functions=None,
    n: int | None = None,
    cells: int = 2,
    sections=(0.0, 0.25, 0.5),
    dpi: int = DEFAULT_DPI,
) -> Path:
    """Write a picture of real equivariant vector fields (one row per field, one column per section)."""
    fmt = output_format(path)
    require_matplotlib()

    panels = vector_panels(basis, kind, functions, 4 if n is None else n, sections)
    v = basis.vector(kind)
    zs = list(dict.fromkeys(p["z"] for p in panels))
    columns = list(dict.fromkeys(p["column"] for p in panels))
    axes = page_axes(basis)
    fields = {}
    for z in zs:
        frac, _shape = _section_points(cells, z, _ARROWS)
        f = v.evaluate(frac)[:, columns]  # (P, c, 3) contravariant
        in_page = f[:, :, :2] @ axes.T  # in-page components
        xy = frac[:, :2] @ axes.T
        for i, c in enumerate(columns):
            fields[(c, z)] = (xy, in_page[:, i], f[:, i, 2])
    arrow = max(float(np.hypot(*p.T).max()) for _, p, _ in fields.values()) or 1.0
    corners = axes @ np.array([[0, cells, 0, cells], [0, 0, cells, cells]], dtype=float)
    (x0, y0), (x1, y1) = corners.min(axis=1), corners.max(axis=1)
    # the component along c as a background image on a page-aligned pixel grid
    res = 96
    gx, gy = np.meshgrid(
        np.linspace(x0, x1, res), np.linspace(y0, y1, max(2, round(res * (y1 - y0) / (x1 - x0))))
    )
    frac2 = np.linalg.solve(axes, np.stack([gx.ravel(), gy.ravel()]))
    inside = np.all((frac2 > -1e-9) & (frac2 < cells + 1e-9), axis=0).reshape(gx.shape)
    images = {}
    for z in zs:
        vals = v.evaluate(np.column_stack([frac2.T, np.full(gx.size, z)]))[:, columns, 2]
        for i, c in enumerate(columns):
            img = vals[:, i].reshape(gx.shape).copy()
            img[~inside] = np.nan
            images[(c, z)] = img
    scale = max(float(np.nanmax(np.abs(im))) for im in images.values()) or 1.0
    s = basis.setting
    nrows, ncols = len(columns), len(zs)
    panel_w = 1.9
    panel_h = panel_w * (y1 - y0) / (x1 - x0)
    title = f"{s.hm_extended} (No. {s.number}, hall {s.hall_number}): {kind} vector fields, K = {basis.kmax}"
    page = _PanelPage(nrows, ncols, panel_w, panel_h, 0.35, dpi, title)
    cmap = _cmap()
    quiv = None
    for i, p in enumerate(panels):
        ax = page.axes(i)
        xy, arrows, _ = fields[(p["column"], p["z"])]
        if p["zero"]:
            _zero_label(ax)
        else:
            quiv = _heatmap(ax, images[(p["column"], p["z"])], (x0, x1, y0, y1), cmap, scale)
            big = np.hypot(*arrows.T) > 1e-3 * arrow
            ax.quiver(
                xy[big, 0],
                xy[big, 1],
                arrows[big, 0],
                arrows[big, 1],
                color="0.1",
                angles="xy",
                scale_units="xy",
                scale=arrow * _ARROWS / 0.9,
                width=0.006,
                zorder=3,
            )
        _draw_cell_edges(ax, axes, cells)
        _draw_elements(ax, section_elements(basis, p["z"]), axes)
        _finish(ax, (x0, x1, y0, y1))
        ax.set_title(f"#{p['column']}   z = {_fmt_z(p['z'])}", fontsize=6.5, pad=2.5)
    page.colorbar(quiv, scale, cmap, "component along c", 5.5)
    page.legend("arrows: components along a, b (as drawn); colour: along c (perpendicular); contravariant")
    fig = page.fig
    _save(fig, path, fmt, dpi)
    return Path(path)
