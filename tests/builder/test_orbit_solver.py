"""The builder's orbit solver (dual frequency graph, networkx) against an independent reference.

Reference: the Reynolds projection ``P e_k = sum_g s_g exp(2 pi i k.t_g) e_{R_g^T k}`` computed
term by term in complex arithmetic (``s_g = -1`` for a primed operation acting on a time-odd
field).  A kept orbit's basis function must be a non-zero multiple of ``P e_r`` of its
representative r; an extinct frequency must have ``P e_k == 0``; a frequency whose orbit leaves
the box appears in neither list.
"""

from __future__ import annotations

import numpy as np
import pytest

from basisdb._format import DEN, box_frequencies

pytest.importorskip("spglib")

from basisdb.builder.magnetic import magnetic_record
from basisdb.builder.orbits import solve_orbits
from basisdb.builder.settings import setting_record

KMAX = 3


def _reynolds(k: np.ndarray, rotations, translations, signs) -> dict[tuple[int, ...], complex]:
    """Coefficients of sum_g s_g exp(2 pi i k.t_g / DEN) e_{R_g^T k} (zeros dropped)."""
    out: dict[tuple[int, ...], complex] = {}
    for r, t, s in zip(rotations, translations, signs):
        key = tuple(int(v) for v in k @ r)
        out[key] = out.get(key, 0) + s * np.exp(2j * np.pi * int(k @ t) / DEN)
    return {key: v for key, v in out.items() if abs(v) > 1e-9}


def _check_against_reynolds(rotations, translations, signs, sol) -> None:
    in_box = {tuple(int(v) for v in k) for k in box_frequencies(KMAX)}
    kept = {tuple(int(v) for v in k) for k in sol.frequencies}
    extinct = {tuple(int(v) for v in k) for k in sol.extinct}
    assert not kept & extinct
    for j in range(len(sol.orbit_ptr) - 1):
        rows = slice(sol.orbit_ptr[j], sol.orbit_ptr[j + 1])
        freqs, phases = sol.frequencies[rows].astype(np.int64), sol.phases[rows]
        ref = _reynolds(freqs[0], rotations, translations, signs)
        assert set(ref) == {tuple(int(v) for v in k) for k in freqs}
        scale = ref[tuple(int(v) for v in freqs[0])]
        for k, p in zip(freqs, phases):
            assert ref[tuple(int(v) for v in k)] / scale == pytest.approx(np.exp(2j * np.pi * int(p) / DEN))
    for k in in_box - kept:
        images = {tuple(int(v) for v in np.array(k) @ r) for r in rotations}
        if images <= in_box:  # orbit inside the box: not kept, so extinct
            assert k in extinct
            assert _reynolds(np.array(k), rotations, translations, signs) == {}
        else:
            assert k not in extinct


@pytest.mark.parametrize("hall", [1, 2, 81, 115, 366, 458, 485, 526, 530])
def test_settings_match_reynolds_projection(hall):
    rec = setting_record(hall)
    sol = solve_orbits(rec.rotations, rec.translations, KMAX)
    _check_against_reynolds(rec.rotations, rec.translations, np.ones(len(rec.rotations)), sol)


@pytest.mark.parametrize("uni", [6, 7, 1200, 1500, 1599, 1651])  # types 3, 4, 4, 3, 4, 3
def test_time_odd_magnetic_match_reynolds_projection(uni):
    rec = magnetic_record(uni)
    assert rec.type in (3, 4)
    sol = solve_orbits(rec.rotations, rec.translations, KMAX, phase_offsets=(DEN // 2) * rec.time_reversals)
    signs = np.where(rec.time_reversals == 1, -1.0, 1.0)
    _check_against_reynolds(rec.rotations, rec.translations, signs, sol)
