"""Exact space-group operations: integer rotations, translations over ``DEN``.

An operation g = (R, t) acts on fractional coordinates as ``x -> R @ x + t``.
``R`` is an integer (3, 3) matrix and ``t = translations / DEN``: arrays named
``translations`` hold the integer numerators reduced modulo ``DEN`` (lattice
translations are implicit), as the artifact's dataset and ``Basis.translations`` do.
Nothing here uses floats except at the boundary (parsing ``0.5`` or a float
translation array, which must be an exact multiple of ``1 / DEN``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np

from ._constants import DEN, MAX_ORDER
from ._errors import NotAGroupError

__all__ = [
    "DEN",
    "parse_triplet",
    "parse_triplets",
    "as_exact_operations",
    "check_group",
    "group_generators",
    "format_triplet",
]

_TERM = re.compile(r"([+-]?)([^+-]+)")
_AXES = {"x": 0, "y": 1, "z": 2}


def _exact_numerator(value: Fraction | float, what: str) -> int:
    """``value * DEN`` as an int, or ValueError if it is not a multiple of 1/DEN."""
    scaled = Fraction(value) * DEN if isinstance(value, Fraction) else value * DEN
    nearest = round(scaled)
    residual = scaled - nearest
    if residual > 1e-6 or residual < -1e-6:
        raise ValueError(f"{what} = {float(value)!r} is not a multiple of 1/{DEN}")
    return int(nearest)


def parse_triplet(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse one CIF-style operation such as ``"-y+1/2, x-y, z+1/6"``.

    Returns ``(R, translations)``: ``R`` int64 (3, 3), ``translations`` int64 (3,) numerators
    over ``DEN`` reduced modulo ``DEN``.  Raises ValueError on malformed text.
    """
    if not isinstance(text, str):
        raise ValueError(f"an operation must be a string like 'x,y,z', got {type(text).__name__}")
    parts = [p.strip().lower().replace(" ", "") for p in text.strip().strip("'\"").split(",")]
    if len(parts) != 3 or any(not p for p in parts):
        raise ValueError(f"operation {text!r} must have three comma-separated components")
    rot = np.zeros((3, 3), dtype=np.int64)
    trans = np.zeros(3, dtype=np.int64)
    for row, comp in enumerate(parts):
        pos = 0
        for match in _TERM.finditer(comp):
            if match.start() != pos:
                raise ValueError(f"cannot parse component {comp!r} of operation {text!r}")
            pos = match.end()
            sign = -1 if match.group(1) == "-" else 1
            body = match.group(2)
            axis = body[-1] if body[-1] in _AXES else None
            coeff_text = body[:-1] if axis else body
            if coeff_text.endswith("*"):
                coeff_text = coeff_text[:-1]
            try:
                coeff = Fraction(coeff_text) if coeff_text else Fraction(1)
            except (ValueError, ZeroDivisionError):
                raise ValueError(f"cannot parse term {body!r} of operation {text!r}") from None
            if axis is None:
                trans[row] += sign * _exact_numerator(coeff, f"translation in {text!r}")
            else:
                if coeff.denominator != 1:
                    raise ValueError(f"rotation part of {text!r} must be integer")
                rot[row, _AXES[axis]] += sign * int(coeff)
        if pos != len(comp):
            raise ValueError(f"cannot parse component {comp!r} of operation {text!r}")
    return rot, trans % DEN


def parse_triplets(ops: Iterable[str] | str) -> tuple[np.ndarray, np.ndarray]:
    """Parse many triplets (an iterable, or one string separated by ``;`` or newlines).

    Returns ``(rotations, translations)`` of shapes (n, 3, 3) and (n, 3), int64.
    """
    if isinstance(ops, str):
        ops = [s for s in re.split(r"[;\n]", ops) if s.strip()]
    parsed = [parse_triplet(s) for s in ops]
    if not parsed:
        raise ValueError("no operations given")
    return np.stack([r for r, _ in parsed]), np.stack([t for _, t in parsed])


def as_exact_operations(rotations: Sequence, translations: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Convert float or int arrays to exact ``(rotations int64 (n,3,3), translations int64 (n,3))``.

    The ``translations`` given are fractional (floats, e.g. spglib's); each must be a
    multiple of ``1/DEN`` to within 1e-6.
    """
    rot = np.asarray(rotations)
    tra = np.asarray(translations, dtype=float)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3) or tra.shape != (rot.shape[0], 3):
        raise ValueError(
            f"rotations must have shape (n, 3, 3) and translations (n, 3); got {rot.shape} and {tra.shape}"
        )
    if rot.shape[0] == 0:
        raise ValueError("no operations given")
    if not np.all(np.isfinite(tra)) or not np.all(np.isfinite(rot.astype(float))):
        raise ValueError("operations contain NaN or inf")
    rot_int = np.rint(rot.astype(float)).astype(np.int64)
    if np.any(np.abs(rot_int - rot) > 1e-9):
        raise ValueError("rotation matrices must be integer in fractional coordinates")
    scaled = tra * DEN
    numerators = np.rint(scaled).astype(np.int64)
    if np.any(np.abs(scaled - numerators) > 1e-6):
        raise ValueError(f"translations must be multiples of 1/{DEN}")
    return rot_int, numerators % DEN


def _key(rot: np.ndarray, translations: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in rot.ravel()) + tuple(int(v) % DEN for v in translations)


def _compose(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """Key of a*b, i.e. x -> Ra (Rb x + tb) + ta."""
    ra = np.array(a[:9]).reshape(3, 3)
    rb = np.array(b[:9]).reshape(3, 3)
    return _key(ra @ rb, ra @ np.array(b[9:]) + np.array(a[9:]))


def check_group(rotations: np.ndarray, translations: np.ndarray) -> None:
    """Raise NotAGroupError unless the operations form a space group modulo lattice translations.

    ``rotations`` (n, 3, 3) integer, ``translations`` (n, 3) numerators over ``DEN``.
    Checks: unimodular integer rotations, no duplicates (mod 1), the identity
    present, closure under composition and presence of every inverse.
    """
    n = len(rotations)
    if n > MAX_ORDER:
        raise NotAGroupError(
            f"{n} operations: a 3-D space group has at most {MAX_ORDER} modulo lattice translations"
        )
    dets = np.rint(np.linalg.det(rotations.astype(float))).astype(int)
    bad = np.flatnonzero(np.abs(dets) != 1)
    if bad.size:
        raise NotAGroupError(
            f"operation {bad[0]} has det(R) = {dets[bad[0]]}; rotations must be unimodular (det = +-1)"
        )
    keys = [_key(r, t) for r, t in zip(rotations, translations)]
    index: dict[tuple[int, ...], int] = {}
    for i, k in enumerate(keys):
        if k in index:
            raise NotAGroupError(f"operations {index[k]} and {i} are the same modulo lattice translations")
        index[k] = i
    identity = _key(np.eye(3, dtype=np.int64), np.zeros(3, dtype=np.int64))
    if identity not in index:
        raise NotAGroupError("the identity x,y,z is missing")
    for i, a in enumerate(keys):
        ra = np.array(a[:9]).reshape(3, 3)
        inv_r = np.rint(np.linalg.inv(ra)).astype(np.int64)
        inv = _key(inv_r, -(inv_r @ np.array(a[9:])))
        if inv not in index:
            raise NotAGroupError(f"the inverse of {format_triplet(rotations[i], translations[i])} is missing")
        for j, b in enumerate(keys):
            if _compose(a, b) not in index:
                raise NotAGroupError(
                    "not closed: the product of "
                    f"{format_triplet(rotations[i], translations[i])} and {format_triplet(rotations[j], translations[j])} is missing"
                )


def group_generators(rotations: np.ndarray, translations: np.ndarray) -> list[int]:
    """Indices of a small generating set, chosen greedily in list order.

    An operation is added when it is not yet in the subgroup generated by the
    ones chosen before it; the result is deterministic for a given list order.
    """
    keys = [_key(r, t) for r, t in zip(rotations, translations)]
    identity = _key(np.eye(3, dtype=np.int64), np.zeros(3, dtype=np.int64))
    generated = {identity}
    chosen: list[int] = []
    for i, k in enumerate(keys):
        if k in generated:
            continue
        chosen.append(i)
        frontier = list(generated)
        gens = [keys[j] for j in chosen]
        while frontier:
            new = []
            for a in frontier:
                for g in gens:
                    c = _compose(g, a)
                    if c not in generated:
                        generated.add(c)
                        new.append(c)
            frontier = new
        if len(generated) == len(keys):
            break
    return chosen


def _fmt_frac(num: int) -> str:
    f = Fraction(int(num) % DEN, DEN)
    return "" if f == 0 else f"+{f.numerator}/{f.denominator}"


def format_triplet(rot: np.ndarray, translations: np.ndarray) -> str:
    """Format ``(R, translations)`` as ``'-y+1/2,x-y,z+1/6'``."""
    out = []
    for row in range(3):
        s = ""
        for axis, name in enumerate("xyz"):
            c = int(rot[row, axis])
            if c == 0:
                continue
            sign = "-" if c < 0 else ("+" if s else "")
            s += sign + ("" if abs(c) == 1 else str(abs(c))) + name
        out.append((s or "0") + _fmt_frac(translations[row]))
    return ",".join(out)
