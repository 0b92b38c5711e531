"""Systematic absences against reflection conditions written out by hand from
International Tables for Crystallography, Vol. A (general and special conditions
for the classes hkl, 0kl, hhl, h00, ... of each group).

Each predicate ``allowed(h, k, l)`` takes integer arrays and returns True where
the reflection is *allowed*.  Conditions for a class (e.g. cubic 0kl) are
applied to every symmetry-equivalent class (h0l, hk0, ...), which is how the
tables intend them.  Hexagonal groups use (h, k, l) with i = -(h + k).

At K = 8, a frequency of the closed set must be extinct iff it violates a
condition.  Each condition is also checked against gemmi, so that a failure
says whether the hand-written table or the artifact is at fault.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import closed_set, flat_index, spglib_operations

K = 8


def _even(a):
    return a % 2 == 0


def _mod(a, m):
    return a % m == 0


def _perms(h, k, l):
    """The three cyclic placements (a, b, c) of an index triple."""
    return ((h, k, l), (k, l, h), (l, h, k))


# ------------------------------------------------------------------------- cubic
def f_centring(h, k, l):
    """F: h+k, h+l, k+l = 2n (all indices of equal parity)."""
    return _even(h + k) & _even(h + l) & _even(k + l)


def i_centring(h, k, l):
    """I: h+k+l = 2n."""
    return _even(h + k + l)


def fm3m(h, k, l):
    """225 F m -3 m: hkl: h+k, h+l, k+l = 2n; 0kl: k,l = 2n; hhl: h+l = 2n; h00: h = 2n (all implied by F)."""
    return f_centring(h, k, l)


def fd3m(h, k, l):
    """227 F d -3 m (both origin choices):
    hkl: h+k, h+l, k+l = 2n; 0kl: k+l = 4n and k,l = 2n; hhl: h+l = 2n; h00: h = 4n."""
    ok = f_centring(h, k, l)
    for a, b, c in _perms(h, k, l):  # 0kl, h0l, hk0
        zero = a == 0
        ok &= ~zero | (_even(b) & _even(c) & _mod(b + c, 4))
    for a, b, c in _perms(h, k, l):  # h00, 0k0, 00l
        axis = (b == 0) & (c == 0)
        ok &= ~axis | _mod(a, 4)
    return ok


def fd3(h, k, l):
    """203 F d -3 (both origin choices): hkl: F; 0kl: k+l = 4n and k,l = 2n; h00: h = 4n."""
    return fd3m(h, k, l)  # the same table as F d -3 m (hhl: h+l = 2n is implied by F)


def ia3d(h, k, l):
    """230 I a -3 d: hkl: h+k+l = 2n; 0kl: k,l = 2n; hhl: 2h+l = 4n; h00: h = 4n."""
    ok = i_centring(h, k, l)
    for a, b, c in _perms(h, k, l):
        ok &= (a != 0) | (_even(b) & _even(c))  # 0kl and equivalents
    for a, b, c in _perms(h, k, l):
        # hhl and its m-3m equivalents: two indices of equal modulus (a, b), third c
        pair = np.abs(a) == np.abs(b)
        ok &= ~pair | _mod(2 * a + c, 4)
    for a, b, c in _perms(h, k, l):
        ok &= ~((b == 0) & (c == 0)) | _mod(a, 4)
    return ok


def i43d(h, k, l):
    """220 I -4 3 d: hkl: h+k+l = 2n; hhl: 2h+l = 4n; h00: h = 4n."""
    ok = i_centring(h, k, l)
    for a, b, c in _perms(h, k, l):
        pair = np.abs(a) == np.abs(b)
        ok &= ~pair | _mod(2 * a + c, 4)
    for a, b, c in _perms(h, k, l):
        ok &= ~((b == 0) & (c == 0)) | _mod(a, 4)
    return ok


def p213(h, k, l):
    """198 P 21 3: h00: h = 2n (and 0k0, 00l)."""
    ok = np.ones_like(h, dtype=bool)
    for a, b, c in _perms(h, k, l):
        ok &= ~((b == 0) & (c == 0)) | _even(a)
    return ok


# ---------------------------------------------------------------- monoclinic / orthorhombic
def p21c_b(h, k, l):
    """14 P 1 21/c 1 (unique axis b, cell choice 1): h0l: l = 2n; 0k0: k = 2n; 00l: l = 2n."""
    ok = (k != 0) | _even(l)
    ok &= ~((h == 0) & (l == 0)) | _even(k)
    return ok


def p212121(h, k, l):
    """19 P 21 21 21: h00: h = 2n; 0k0: k = 2n; 00l: l = 2n."""
    return p213(h, k, l)


def pnma(h, k, l):
    """62 P n m a: 0kl: k+l = 2n; hk0: h = 2n; h00: h = 2n; 0k0: k = 2n; 00l: l = 2n."""
    ok = (h != 0) | _even(k + l)
    ok &= (l != 0) | _even(h)
    ok &= ~((k == 0) & (l == 0)) | _even(h)
    ok &= ~((h == 0) & (l == 0)) | _even(k)
    ok &= ~((h == 0) & (k == 0)) | _even(l)
    return ok


# -------------------------------------------------------------------------- tetragonal
def p42mnm(h, k, l):
    """136 P 42/m n m: 0kl: k+l = 2n; 00l: l = 2n; h00: h = 2n (0kl ~ h0l under the 4-fold)."""
    ok = (h != 0) | _even(k + l)
    ok &= (k != 0) | _even(h + l)
    return ok


def p41212(h, k, l):
    """92 P 41 21 2: 00l: l = 4n; h00: h = 2n (and 0k0: k = 2n)."""
    ok = ~((h == 0) & (k == 0)) | _mod(l, 4)
    ok &= ~((k == 0) & (l == 0)) | _even(h)
    ok &= ~((h == 0) & (l == 0)) | _even(k)
    return ok


def i41a(h, k, l):
    """88 I 41/a (both origin choices): hkl: h+k+l = 2n; hk0: h,k = 2n; 00l: l = 4n."""
    ok = i_centring(h, k, l)
    ok &= (l != 0) | (_even(h) & _even(k))
    ok &= ~((h == 0) & (k == 0)) | _mod(l, 4)
    return ok


def i41amd(h, k, l):
    """141 I 41/a m d (both origin choices): hkl: h+k+l = 2n; hk0: h,k = 2n; 0kl: k+l = 2n;
    hhl: 2h+l = 4n; 00l: l = 4n; h00: h = 2n; h-h0: h = 2n."""
    ok = i_centring(h, k, l)
    ok &= (l != 0) | (_even(h) & _even(k))
    ok &= (np.abs(h) != np.abs(k)) | _mod(2 * h + l, 4)  # hhl and h-hl
    ok &= ~((h == 0) & (k == 0)) | _mod(l, 4)
    return ok


def i41acd(h, k, l):
    """142 I 41/a c d (both origin choices): hkl: h+k+l = 2n; hk0: h,k = 2n; 0kl: k,l = 2n;
    hhl: 2h+l = 4n; 00l: l = 4n; h00: h = 2n; hh0: h = 2n."""
    ok = i41amd(h, k, l)
    ok &= (h != 0) | (_even(k) & _even(l))  # 0kl
    ok &= (k != 0) | (_even(h) & _even(l))  # h0l (4-fold equivalent)
    return ok


# ----------------------------------------------------------------- hexagonal / trigonal
def _hex_i(h, k):
    return -(h + k)


def p63mmc(h, k, l):
    """194 P 63/m m c: hh(-2h)l: l = 2n; 000l: l = 2n.

    The hh(-2h)l class and its 6/mmm equivalents: any two of (h, k, i) equal.
    """
    i = _hex_i(h, k)
    cls = (h == k) | (k == i) | (h == i)
    return ~cls | _even(l)


def p63mc(h, k, l):
    """186 P 63 m c: hh(-2h)l: l = 2n; 000l: l = 2n."""
    return p63mmc(h, k, l)


def r_obverse(h, k, l):
    """R (obverse, hexagonal axes): -h+k+l = 3n."""
    return _mod(-h + k + l, 3)


def r3c_hex(h, k, l):
    """167 R -3 c, hexagonal axes: hkil: -h+k+l = 3n; hh(-2h)l: l = 3n;
    h(-h)0l: h+l = 3n, l = 2n; 000l: l = 6n; h(-h)00: h = 3n.

    The h(-h)0l class and its -3m equivalents: one of (h, k, i) is zero.
    """
    i = _hex_i(h, k)
    ok = r_obverse(h, k, l)
    cls = (h == 0) | (k == 0) | (i == 0)
    ok &= ~cls | _even(l)
    return ok


def r3c_rh(h, k, l):
    """167 R -3 c, rhombohedral axes: hhl: l = 2n; hhh: h = 2n (hhl with its -3m equivalents hlh, lhh)."""
    ok = np.ones_like(h, dtype=bool)
    for a, b, c in _perms(h, k, l):
        ok &= (a != b) | _even(c)
    return ok


def no_conditions(h, k, l):
    return np.ones_like(h, dtype=bool)


#: hall_number -> (expected H-M symbol fragment, condition)
CONDITIONS = {
    1: ("P 1", no_conditions),
    2: ("P -1", no_conditions),
    81: ("P 1 2_1/c 1", p21c_b),
    115: ("P 2_1 2_1 2_1", p212121),
    292: ("P n m a", pnma),
    364: ("I 4_1/a:1", i41a),
    365: ("I 4_1/a:2", i41a),
    369: ("P 4_1 2_1 2", p41212),
    419: ("P 4_2/m n m", p42mnm),
    426: ("I 4_1/a m d:1", i41amd),
    427: ("I 4_1/a m d:2", i41amd),
    428: ("I 4_1/a c d:1", i41acd),
    429: ("I 4_1/a c d:2", i41acd),
    460: ("R -3 c:H", r3c_hex),
    461: ("R -3 c:R", r3c_rh),
    480: ("P 6_3 m c", p63mc),
    488: ("P 6_3/m m c", p63mmc),
    492: ("P 2_1 3", p213),
    498: ("F d -3:1", fd3),
    499: ("F d -3:2", fd3),
    516: ("I -4 3 d", i43d),
    523: ("F m -3 m", fm3m),
    525: ("F d -3 m:1", fd3m),
    526: ("F d -3 m:2", fd3m),
    530: ("I a -3 d", ia3d),
}
HALLS = sorted(CONDITIONS)


def _allowed(hall, freqs):
    return np.asarray(CONDITIONS[hall][1](freqs[:, 0], freqs[:, 1], freqs[:, 2]), dtype=bool)


@pytest.mark.parametrize("hall", HALLS)
def test_setting_is_the_one_the_conditions_are_for(db, hall):
    assert db.get_setting(hall=hall).hm_extended == CONDITIONS[hall][0]


@pytest.mark.parametrize("hall", HALLS)
def test_extinct_iff_condition_violated(db, hall):
    b = db.get(hall=hall, kmax=K)
    ok_basis = _allowed(hall, b.frequencies)
    ok_ext = _allowed(hall, b.extinct)
    assert ok_basis.all(), (
        f"basis frequencies violating ITA conditions: {b.frequencies[~ok_basis][:10].tolist()}"
    )
    assert not ok_ext.any(), f"extinct frequencies allowed by ITA: {b.extinct[ok_ext][:10].tolist()}"
    # and together they are the whole closed set (computed from spglib's rotations)
    closed = closed_set(spglib_operations(hall)[0], K)
    assert len(b.frequencies) + len(b.extinct) == len(closed)
    n_forbidden = int((~_allowed(hall, closed)).sum())
    assert n_forbidden == len(b.extinct)


@pytest.mark.parametrize("hall", HALLS)
def test_hand_written_conditions_agree_with_gemmi(hall):
    """Guards the hand-written table itself: if this fails, the table (not basisdb) is suspect."""
    gemmi = pytest.importorskip("gemmi")
    ops = list(gemmi.spacegroup_table_itb())[hall - 1].operations()
    closed = closed_set(spglib_operations(hall)[0], K)
    absent = np.asarray(ops.systematic_absences(closed.astype(np.int32)), dtype=bool)
    ok = _allowed(hall, closed)
    bad = np.flatnonzero(ok == absent)
    assert bad.size == 0, f"ITA table vs gemmi disagree at {closed[bad[:10]].tolist()}"


def test_conditions_are_not_vacuous(db):
    """The non-trivial tables forbid something, and F/I centring alone forbid the expected fraction."""
    b = db.get(hall=523, kmax=K)
    closed = closed_set(spglib_operations(523)[0], K)
    assert len(b.extinct) == int((~f_centring(*closed.T)).sum()) > 0
    for hall in HALLS:
        if CONDITIONS[hall][1] is not no_conditions:
            assert len(db.get(hall=hall, kmax=K).extinct) > 0, hall
    # a few famous absences
    assert not ia3d(*np.array([[2], [2], [2]]))[0]  # garnet 222
    assert fd3m(*np.array([[2], [2], [0]]))[0] and not fd3m(*np.array([[2], [0], [0]]))[0]
    assert not p63mmc(*np.array([[0], [0], [1]]))[0] and p63mmc(*np.array([[1], [0], [1]]))[0]


def test_hexagonal_box_is_truncated_not_padded(db):
    """In hexagonal settings the box is not closed: e.g. (8, 8, 0) maps to (-16, 8, 0) under the 6-fold."""
    b = db.get(hall=488, kmax=K)
    every = np.concatenate([b.frequencies, b.extinct])
    idx = set(flat_index(every, K).tolist())
    assert int(flat_index(np.array([8, 8, 0]), K)) not in idx
    assert int(flat_index(np.array([4, 4, 0]), K)) in idx
