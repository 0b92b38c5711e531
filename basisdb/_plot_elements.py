"""Symmetry elements that a picture draws: plane groups, and sections z = z0 of space groups.

Exact (``fractions.Fraction``) and free of matplotlib.  The operations are the
artifact's own (``basis.rotations``, ``basis.translations / basis.denominator``,
centring translations included).  Only operations that map the planes z = const
onto planes z = const and leave the z axis alone (``R[2, :2] = 0`` and
``R[:2, 2] = 0``) give elements here, so a section shows:

- **lines**: mirror and glide planes that contain the c axis, where they cut the
  section.  Types: ``m`` mirror, ``g`` glide with its translation in the section,
  ``c`` glide along c only, ``n`` glide with both (n, d and diagonal glides).
- **axes** parallel to c (they pierce every section): ``'2'``, ``'2_1'``, ``'3'``,
  ``'3_1'``, ``'4_2'``, ``'6_3'``, ... and the rotoinversion axes ``'-3'``,
  ``'-4'``, ``'-6'``.  One symbol per point, the element of highest order
  (a proper axis wins a tie with a rotoinversion axis of the same order); a
  screw subscript is that of the counter-clockwise rotation through 360/n degrees.
- **centres**: inversion centres lying in the section.
- **axes_in_plane**: 2-fold rotation (``'2'``) and screw (``'2_1'``) axes lying in
  the section (e.g. along [100] and [110] in Fm-3m at z = 0).
- **plane**: the types of a mirror or glide plane that *is* the section
  (``m``, ``a``, ``b``, ``n``, ``d`` or ``g``), empty when there is none.

Not drawn: elements oblique to the section (the 3-fold axes along <111> of cubic
groups, planes and 2-fold axes inclined to c, e.g. in rhombohedral-axes settings).
A plane group is the special case of one section: only ``m`` and ``g`` lines and
proper rotation points occur.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import atan2, gcd

import numpy as np

__all__ = ["SectionElements", "section_elements", "symmetry_elements", "page_rotation_sense"]


@dataclass
class SectionElements:
    """The symmetry elements met by one section (module docstring); coordinates are exact Fractions
    in [0, 1) (points) or the line x0 + s v (lines, ``v`` a primitive integer vector)."""

    z: Fraction | None
    axes: list = field(default_factory=list)  # ((x, y), symbol)
    lines: list = field(default_factory=list)  # ((x0, y0), (vx, vy), frozenset of 'm', 'g', 'c', 'n')
    centres: list = field(default_factory=list)  # (x, y)
    axes_in_plane: list = field(default_factory=list)  # ((x0, y0), (vx, vy), frozenset of '2', '2_1')
    plane: frozenset = frozenset()

    def summary(self) -> dict:
        """A plain, comparable description (used by the tests)."""
        return {
            "axes": sorted((tuple(p), s) for p, s in self.axes),
            "lines": sorted((tuple(p), tuple(v), tuple(sorted(t))) for p, v, t in self.lines),
            "centres": sorted(tuple(p) for p in self.centres),
            "axes_in_plane": sorted((tuple(p), tuple(v), tuple(sorted(t))) for p, v, t in self.axes_in_plane),
            "plane": tuple(sorted(self.plane)),
        }


def _frac(z) -> Fraction:
    """A section height as a Fraction: snapped to a denominator <= 48 when within 1e-9."""
    f = Fraction(z).limit_denominator(48) if not isinstance(z, Fraction) else z
    return f if abs(float(f) - float(z)) < 1e-9 else Fraction(z)


def _ops3(basis):
    """The operations as (R (3,3) int64, t 3-tuple of Fractions); plane groups lifted to 3-D (z fixed)."""
    den = basis.denominator
    out = []
    for r, t in zip(basis.rotations, basis.translations):
        r = np.asarray(r, dtype=np.int64)
        t = [Fraction(int(v), den) for v in t]
        if basis.dim == 2:
            r3 = np.eye(3, dtype=np.int64)
            r3[:2, :2] = r
            r, t = r3, t + [Fraction(0)]
        out.append((r, t))
    return out


def _order(m: np.ndarray) -> int:
    n, p = 1, m.copy()
    ident = np.eye(len(m), dtype=m.dtype)
    while not np.array_equal(p, ident):
        p, n = p @ m, n + 1
        if n > 12:
            raise ValueError("not a crystallographic rotation")
    return n


def page_rotation_sense(w: np.ndarray, axes: np.ndarray) -> float:
    """The rotation angle (degrees, in (-180, 180]) of the 2-D integer matrix ``w`` drawn on page axes ``axes``."""
    m = axes @ w @ np.linalg.inv(axes)
    return float(np.degrees(atan2(m[1, 0], m[0, 0])))


def _is_int(f: Fraction) -> bool:
    return f.denominator == 1


def _affine2(w, t2, p):
    return tuple(w[i, 0] * p[0] + w[i, 1] * p[1] + t2[i] for i in range(2))


def _fixes(w, t2, p) -> bool:
    q = _affine2(w, t2, p)
    return all(_is_int(q[i] - p[i]) for i in range(2))


def _fixed_points(w, t2) -> set:
    """Points p in [0, 1)^2 with w p + t2 = p modulo the lattice (w a rotation, w != I)."""
    a = np.eye(2, dtype=np.int64) - w
    det = round(np.linalg.det(a))
    adj = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]])
    pts = set()
    for m0 in range(-abs(det), abs(det) + 1):
        for m1 in range(-abs(det), abs(det) + 1):
            v = (t2[0] + m0, t2[1] + m1)
            pts.add(
                tuple(
                    Fraction(int(adj[i, 0]), 1) * v[0] / det + Fraction(int(adj[i, 1]), 1) * v[1] / det
                    for i in range(2)
                )
            )
    return {(p[0] % 1, p[1] % 1) for p in pts}


def _axis_direction(w: np.ndarray) -> tuple[int, int]:
    """Primitive integer v with w v = v (w a 2-D reflection), first non-zero entry > 0."""
    a, b = next(row for row in (w - np.eye(2, dtype=np.int64)).tolist() if any(row))
    g = gcd(a, b)
    v = (b // g, -a // g)
    return v if (v[0] > 0 or (v[0] == 0 and v[1] > 0)) else (-v[0], -v[1])


def _line_key(x0, v) -> tuple:
    """(vx, vy, c mod 1) naming the line x0 + s v modulo lattice translations: with the integer
    normal n = (-vy, vx) (coprime, so n.Z^2 = Z) the line is n.x = c and a lattice translation
    changes c by an integer."""
    return (v[0], v[1], (-v[1] * x0[0] + v[0] * x0[1]) % 1)


def _key_to_line(key):
    v0, v1, c = key
    n = (-v1, v0)
    point = (Fraction(c) / n[0] % 1, Fraction(0)) if n[0] else (Fraction(0), Fraction(c) / n[1] % 1)
    return point, (v0, v1)


def _reflection_lines(w, t2):
    """For the 2-D map p -> w p + t2 with w a reflection: {line key: in-line translation is integer}."""
    v = _axis_direction(w)
    out: dict[tuple, bool] = {}
    for m0 in range(-2, 3):
        for m1 in range(-2, 3):
            u = (t2[0] + m0, t2[1] + m1)
            wu = (w[0, 0] * u[0] + w[0, 1] * u[1], w[1, 0] * u[0] + w[1, 1] * u[1])
            perp = [(u[i] - wu[i]) / 4 for i in range(2)]  # (I - w) u / 4: a point of the line
            along = [(u[i] + wu[i]) / 2 for i in range(2)]  # (I + w) u / 2: the translation along it
            key = _line_key(perp, v)
            out[key] = out.get(key, False) or all(_is_int(g) for g in along)
    return out


_PLANE_GLIDE = {
    (Fraction(1, 2), Fraction(0)): "a",
    (Fraction(0), Fraction(1, 2)): "b",
    (Fraction(1, 2), Fraction(1, 2)): "n",
}


def section_elements(basis, z=None, axes: np.ndarray | None = None) -> SectionElements:
    """The symmetry elements a picture of ``basis`` draws: of the plane group, or of the section at
    height ``z`` (fractional) of a space group.  ``axes`` (page vectors of x, y as columns) fixes the
    sense of rotation for screw subscripts (default: the picture's own, ``_plot.page_axes``)."""
    if basis.dim == 3 and z is None:
        raise ValueError("give the height z of the section")
    z0 = Fraction(0) if basis.dim == 2 else _frac(z)
    if axes is None:
        from ._plot import page_axes

        axes = page_axes(basis)
    out = SectionElements(z=None if basis.dim == 2 else z0)
    ident2 = np.eye(2, dtype=np.int64)
    ops = []
    for r, t in _ops3(basis):
        if np.any(r[2, :2]) or np.any(r[:2, 2]):
            continue  # oblique to the section: not drawn
        ops.append((r[:2, :2], int(r[2, 2]), t[:2], t[2]))

    lines: dict = {}
    in_plane: dict = {}
    plane: set = set()
    centres: set = set()
    point_ops: dict = {}
    for w, s, t2, tz in ops:
        detw = round(np.linalg.det(w))
        on_section = s == -1 and _is_int(
            2 * z0 - tz
        )  # an element at height tz/2 (mod 1/2) lies in the section
        if s == 1 and detw == -1:  # a plane containing c
            for key, along_int in _reflection_lines(w, t2).items():
                kind = {(True, True): "m", (False, True): "g", (True, False): "c", (False, False): "n"}[
                    (along_int, _is_int(tz))
                ]
                lines.setdefault(key, set()).add(kind)
        elif s == -1 and detw == -1:  # a 2-fold axis perpendicular to c, at height tz/2
            if on_section:
                for key, along_int in _reflection_lines(w, t2).items():
                    in_plane.setdefault(key, set()).add("2" if along_int else "2_1")
        elif s == -1 and np.array_equal(w, ident2):  # a plane parallel to the section
            if on_section:
                g = (t2[0] % 1, t2[1] % 1)
                if g == (0, 0):
                    plane.add("m")
                else:
                    plane.add(_PLANE_GLIDE.get(g, "d" if all(x.denominator in (1, 4) for x in g) else "g"))
        elif s == -1 and np.array_equal(w, -ident2):  # inversion, centre at t/2
            if on_section:
                centres.update(_fixed_points(w, t2))
        elif detw == 1 and not np.array_equal(w, ident2):  # an axis parallel to c
            for p in _fixed_points(w, t2):
                point_ops.setdefault(p, []).append((w, s, tz))

    for p, found in sorted(point_ops.items()):
        best = None  # (order of the element, proper?, symbol)
        for w, s, tz in found:
            if s == 1:
                n = _order(w)
                angle = page_rotation_sense(w, axes)
                if n == 2 or abs(angle - 360.0 / n) < 1e-6:
                    k = (n * tz) % n
                    sym = str(n) if k == 0 else f"{n}_{k}"
                    cand = (n, 1, -k, sym)
                else:
                    continue
            else:
                n = _order(-w)  # rotoinversion -n: -w is the 2-D block of its rotation part
                cand = ({3: 6, 4: 4, 6: 6}[n], 0, 0, f"-{n}")
            if best is None or cand[:3] > best[:3]:
                best = cand
        if best is not None:
            out.axes.append((p, best[3]))
    out.lines = [(*_key_to_line(k), frozenset(v)) for k, v in sorted(lines.items())]
    out.axes_in_plane = [(*_key_to_line(k), frozenset(v)) for k, v in sorted(in_plane.items())]
    out.centres = sorted(centres)
    out.plane = frozenset(plane)
    return out


def symmetry_elements(basis) -> tuple[list, list]:
    """Rotation points and reflection lines of a plane group, within one cell (fractional, exact).

    Returns ``(points, lines)``: points are ``((x, y), n)`` with 0 <= x, y < 1 and n
    the highest rotation order at that point (2, 3, 4 or 6); lines are
    ``((x0, y0), (vx, vy), is_mirror)``, the line x0 + s v of a reflection part,
    ``is_mirror`` False for a glide line that carries no mirror.  Coordinates are
    Fractions; lines are listed once per distinct line through the cell [0, 1)^2.
    """
    if basis.dim != 2:
        raise ValueError("symmetry elements are drawn for plane groups only; use section_elements(basis, z)")
    el = section_elements(basis)
    points = [(p, int(sym.split("_")[0])) for p, sym in el.axes]
    lines = [(p, v, "m" in kinds) for p, v, kinds in el.lines]
    return points, lines
