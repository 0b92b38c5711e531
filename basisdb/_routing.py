"""The shared box encoding (routing for weight sharing) and framework-neutral term tables.

Shared encoding (docs/CONVENTIONS.md section 8).  For a point x in setting G,

    conj(u_G(x)) = P_G^T e(x) = conj(B) phi(x),     one entry per box frequency k,

is G-invariant and lives in the box index space that every setting shares.  Its
entry at k is conj(B[k, O]) phi_O(x) for k in a non-extinct orbit O, else 0.
Because the invariant subspace is closed under conjugation, the entry at -k is
the conjugate of the entry at k, so the real vector

    r[idx(k)]  = sqrt(2) Re conj(u)_k,  r[idx(-k)] = sqrt(2) Im conj(u)_k   (k in the half box)
    r[idx(0)]  = conj(u)_0

(half box: k != 0 that comes before -k in the canonical order) holds the same
information, with the same norm, in n_box real numbers indexed by the box.
``shared_encoding`` computes it; a model applies one weight matrix of shape
(n_box, d) to it for every group.

Term tables.  Every real output column c is a sum over terms t of
alpha_t cos(2 pi k_t.x) + beta_t sin(2 pi k_t.x); ``term_table`` lists
(k_t, c_t, alpha_t, beta_t) so that a framework can evaluate features with
gathers and one scatter-add, differentiably (basisdb.torch, basisdb.jax).

Batch plan.  ``batch_plan`` stacks the term tables and encoding tables of many
settings, padded to common lengths, into one ``BatchPlan``; a batch of atoms of
mixed settings is then evaluated with fixed-shape gathers and scatter-adds and no
loop over settings.  ``evaluate_batch_plan`` is its numpy back-end; the torch
(``basisdb.torch.InvariantEncoder``) and JAX (``basisdb.jax.invariant_encoding``)
back-ends run the same arrays through the same three steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._boxindex import box_frequencies, box_index, canonical_rank
from ._constants import N_SETTINGS

__all__ = [
    "TermTable",
    "term_table",
    "term_gather_indices",
    "EncodingTable",
    "encoding_table",
    "shared_encoding",
    "half_box",
    "BatchPlan",
    "batch_plan",
    "evaluate_batch_plan",
    "frequency_lengths",
    "symmetrized_metric",
    "check_per_crystal",
]

#: the two packings of the shared encoding (see ``encoding_table``)
PACKINGS = ("complex", "real")


@lru_cache(maxsize=8)
def half_box(kmax: int, dim: int = 3) -> tuple[np.ndarray, np.ndarray, int]:
    """(pos, neg, zero): box indices of the half box, of their negatives, and of k = 0."""
    f = box_frequencies(kmax, dim)
    rank = canonical_rank(kmax, dim)
    idx = np.arange(len(f))
    neg = box_index(-f, kmax)
    pos = idx[rank < rank[neg]]
    out = (pos, neg[pos], int(box_index(np.zeros((1, dim), dtype=np.int64), kmax)[0]))
    for a in out[:2]:
        a.setflags(write=False)
    return out


@dataclass(frozen=True)
class TermTable:
    """Output column c = sum over its terms t of alpha_t cos(2 pi k_t.x) + beta_t sin(2 pi k_t.x).

    freq:   (t, 3) int64 frequencies k_t.
    column: (t,) int64 output column of each term.
    alpha, beta: (t,) float64 coefficients.
    n_out:  number of output columns.
    kmax:   cut-off (|k| <= kmax per axis).
    """

    freq: np.ndarray
    column: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    n_out: int
    kmax: int


def term_table(basis, real: bool = True) -> TermTable:
    """Term table of the real features (n_basis columns) or of the complex ones
    (2 n_basis columns: Re phi_j at 2j, Im phi_j at 2j + 1).  Cached on the basis."""
    key = ("term_table", bool(real))
    cached = basis._cache.get(key)
    if cached is not None:
        return cached
    plan = basis._plan(bool(real))
    sizes = np.diff(plan.acc_ptr)
    if real:
        acc = plan.col_acc
        part = plan.col_part.astype(np.int64)
        scale = plan.col_scale
        cols = np.arange(len(acc))
    else:  # each accumulator (orbit) gives two columns: real and imaginary part
        n = len(plan.col_acc)
        acc = np.repeat(plan.col_acc, 2)
        part = np.tile([0, 1], n)
        scale = np.ones(2 * n)
        cols = np.arange(2 * n)
    lens = sizes[acc]
    # the rows of accumulator acc[c] for each column c, concatenated: acc_ptr[a] + 0..size(a)-1
    rows = np.repeat(plan.acc_ptr[acc] - (np.cumsum(lens) - lens), lens) + np.arange(
        int(lens.sum()), dtype=np.int64
    )
    col = np.repeat(cols, sizes[acc])
    w = plan.weights[rows]
    sc = np.repeat(scale, sizes[acc])
    is_im = np.repeat(part, sizes[acc]) == 1
    # Re(w e) = Re w cos - Im w sin ;  Im(w e) = Im w cos + Re w sin
    alpha = np.where(is_im, w.imag, w.real) * sc
    beta = np.where(is_im, w.real, -w.imag) * sc
    table = TermTable(
        freq=np.ascontiguousarray(plan.freqs[rows]),
        column=col.astype(np.int64),
        alpha=alpha,
        beta=beta,
        n_out=len(cols),
        kmax=int(basis.kmax),
    )
    for a in (table.freq, table.column, table.alpha, table.beta):
        a.setflags(write=False)
    basis._cache[key] = table
    return table


def term_gather_indices(table: TermTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How a back-end builds the plane wave of every term from per-axis tables.

    Returns ``(u_h, u_k, hk_id, l)`` (int64): the distinct (h, k) pairs of the terms as
    per-axis table rows ``u_h``, ``u_k`` (0..2K, i.e. h + K), the pair of each term
    ``hk_id`` (t,) and its l row ``l`` (t,).  exp(2 pi i k_t.x) =
    e_1[u_h[hk_id]] e_2[u_k[hk_id]] e_3[l]: the (h, k) products are shared by all l.
    """
    K = table.kmax
    n = 2 * K + 1
    f = table.freq + K
    uniq, hk_id = np.unique(f[:, 0] * n + f[:, 1], return_inverse=True)
    return uniq // n, uniq % n, hk_id.reshape(-1).astype(np.int64), f[:, 2].astype(np.int64)


@dataclass(frozen=True)
class EncodingTable:
    """Shared encoding from complex features: r[slot] = a * Re phi[orbit] + b * Im phi[orbit].

    Every slot is written by exactly one row (rows of different slots never collide),
    so a scatter-add and a scatter-copy give the same result.
    """

    slot: np.ndarray  # (s,) int64 output index written (box index; + n_box for Im with packing "complex")
    orbit: np.ndarray  # (s,) int64 orbit (complex feature) read
    a: np.ndarray  # (s,) float64
    b: np.ndarray  # (s,) float64
    n_box: int
    n_out: int = 0  # number of output columns: n_box ("real") or 2 n_box ("complex")


def encoding_table(basis, packing: str = "real") -> EncodingTable:
    """Gather table of the shared encoding (cached on the basis).

    packing "real": the n_box real packing of ``shared_encoding(real=True)`` (module docstring).
    packing "complex": [Re v, Im v] (2 n_box columns) with v = P_G^T e(x) = conj(B) phi(x),
    i.e. ``shared_encoding(real=False)`` split into real and imaginary parts (the
    convention of the reference model and of ``basisdb.torch.InvariantEncoder``).
    """
    if packing not in PACKINGS:
        raise ValueError(f"packing must be one of {PACKINGS}, got {packing!r}")
    key = ("encoding_table", packing)
    cached = basis._cache.get(key)
    if cached is not None:
        return cached
    bi = basis.box_indices
    c = basis.coefficients
    n_box = basis.n_box
    if packing == "complex":
        # v_k = conj(c_k) phi = (c_re phi_re + c_im phi_im) + i (c_re phi_im - c_im phi_re)
        slot = np.concatenate([bi, bi + n_box])
        orbit = np.concatenate([basis.orbit_of, basis.orbit_of])
        a = np.concatenate([c.real, -c.imag])
        b = np.concatenate([c.imag, c.real])
        n_out = 2 * n_box
    else:
        rank = canonical_rank(basis.kmax, basis.frequencies.shape[1])
        neg = box_index(-basis.frequencies, basis.kmax)
        zero = (basis.frequencies == 0).all(axis=1)
        pos = (rank[bi] < rank[neg]) & ~zero
        s2 = np.sqrt(2.0)
        # conj(u)_k = conj(c_k) phi = (c_re phi_re + c_im phi_im) + i (c_re phi_im - c_im phi_re)
        slot = np.concatenate([bi[zero], bi[pos], neg[pos]])
        orbit = np.concatenate([basis.orbit_of[zero], basis.orbit_of[pos], basis.orbit_of[pos]])
        a = np.concatenate([c.real[zero], s2 * c.real[pos], -s2 * c.imag[pos]])
        b = np.concatenate([c.imag[zero], s2 * c.imag[pos], s2 * c.real[pos]])
        n_out = n_box
    table = EncodingTable(
        slot=slot.astype(np.int64), orbit=orbit.astype(np.int64), a=a, b=b, n_box=n_box, n_out=n_out
    )
    for arr in (table.slot, table.orbit, table.a, table.b):
        arr.setflags(write=False)
    basis._cache[key] = table
    return table


def shared_encoding(basis, x, real: bool = True) -> np.ndarray:
    """G-invariant encoding of points in the box index space shared by every setting.

    x: (N, 3) fractional coordinates in the basis's setting.  real=True: (N, n_box)
    float64, the real packing described in the module docstring; real=False:
    (N, n_box) complex128 conj(u_G(x)) = P_G^T e(x).  Entries outside the
    setting's non-extinct orbits are zero.
    """
    phi = basis.evaluate(x, real=False)
    single = phi.ndim == 1
    phi = np.atleast_2d(phi)
    t = encoding_table(basis, "real" if real else "complex")
    out = np.zeros((len(phi), t.n_out))
    sel = phi[:, t.orbit]
    out[:, t.slot] = t.a * sel.real + t.b * sel.imag
    if not real:
        out = out[:, : basis.n_box] + 1j * out[:, basis.n_box :]
    return out[0] if single else out


@dataclass(frozen=True)
class BatchPlan:
    """The term and encoding tables of several settings, padded and stacked (numpy, read-only).

    Row r of every (H, .) array belongs to setting ``hall_numbers[r]``; padding entries
    have zero coefficients and valid (zero) indices, so they add nothing.  For an atom at
    x (fractional, in its setting) whose setting has row r, with c_b(x), s_b(x) the cosine
    and sine of 2 pi k_b.x for box index b::

        phi[col]  = sum_t [term_col[r, t] == col] (term_alpha[r, t] c_{term_box[r, t]} + term_beta[r, t] s_{term_box[r, t]})
        out[slot] = sum_s [enc_slot[r, s] == slot] (enc_a[r, s] phi[enc_col[r, s]] + enc_b[r, s] phi[enc_col[r, s] + 1])

    phi holds Re phi_j in column 2j and Im phi_j in 2j + 1 (``term_table(basis, real=False)``),
    out is the shared encoding of ``encoding_table(basis, packing)``.

    hall_numbers: (H,) int64 settings in row order.
    row_of_hall:  (531,) int64 row of each hall number, -1 where absent.
    term_box:     (H, T) int64 box index of each term's frequency.
    term_col:     (H, T) int64 phi column of each term.
    term_alpha, term_beta: (H, T) float64 coefficients.
    enc_slot:     (H, S) int64 output column; enc_col (H, S) int64 = 2 * orbit.
    enc_a, enc_b: (H, S) float64.
    n_cols:       width of phi (2 * the largest number of orbits).
    n_out:        width of the encoding (2 n_box for "complex", n_box for "real").
    slot_box:     (n_out,) int64 box index of each output column.
    point_groups: (H, 48, 3, 3) int64 the distinct rotation parts R of each setting's operations (acting
                  on fractional column vectors, x -> R x), zero-padded; point_group_order (H,) int64 their
                  number.  Used to symmetrise a lattice's metric, ``G_sym = (1/|P|) sum_R R^T G R``, before the
                  frequency lengths |k| of a metric weighting (``symmetrized_metric``).
    kmax, n_box, packing.
    """

    hall_numbers: np.ndarray
    row_of_hall: np.ndarray
    term_box: np.ndarray
    term_col: np.ndarray
    term_alpha: np.ndarray
    term_beta: np.ndarray
    enc_slot: np.ndarray
    enc_col: np.ndarray
    enc_a: np.ndarray
    enc_b: np.ndarray
    slot_box: np.ndarray
    point_groups: np.ndarray
    point_group_order: np.ndarray
    n_cols: int
    n_out: int
    n_box: int
    kmax: int
    packing: str

    #: names of the per-setting (H, .) arrays, in the order back-ends use them
    ARRAYS = ("term_box", "term_col", "term_alpha", "term_beta", "enc_slot", "enc_col", "enc_a", "enc_b")

    @property
    def nbytes(self) -> int:
        return int(
            sum(getattr(self, n).nbytes for n in self.ARRAYS) + self.row_of_hall.nbytes + self.slot_box.nbytes
        )


def batch_plan(bases, packing: str = "complex") -> BatchPlan:
    """Stack the term tables (``term_table(b, real=False)``) and encoding tables
    (``encoding_table(b, packing)``) of 3-D bases of one cut-off into a ``BatchPlan``.

    bases: iterable of ``Basis`` with distinct hall numbers and equal ``kmax``.
    """
    bases = list(bases)
    if not bases:
        raise ValueError("batch_plan needs at least one basis")
    kmax = bases[0].kmax
    halls = np.array([b.setting.hall_number for b in bases], dtype=np.int64)
    if any(b.kmax != kmax or b.dim != 3 for b in bases):
        raise ValueError("batch_plan needs 3-D bases of one kmax")
    if len(np.unique(halls)) != len(halls) or halls.min() < 1 or halls.max() > N_SETTINGS:
        raise ValueError(f"batch_plan needs bases of distinct spglib settings (hall numbers 1..{N_SETTINGS})")
    terms = [term_table(b, real=False) for b in bases]
    encs = [encoding_table(b, packing) for b in bases]
    H = len(bases)
    T = max(1, max(len(t.column) for t in terms))
    S = max(1, max(len(e.slot) for e in encs))
    n = 2 * kmax + 1
    real = {"term_alpha", "term_beta", "enc_a", "enc_b"}
    arr = {
        name: np.zeros(
            (H, T if name.startswith("term") else S), dtype=np.float64 if name in real else np.int64
        )
        for name in BatchPlan.ARRAYS
    }
    for r, (t, e) in enumerate(zip(terms, encs)):
        m, s = len(t.column), len(e.slot)
        arr["term_box"][r, :m] = ((t.freq[:, 0] + kmax) * n + (t.freq[:, 1] + kmax)) * n + (
            t.freq[:, 2] + kmax
        )
        arr["term_col"][r, :m] = t.column
        arr["term_alpha"][r, :m] = t.alpha
        arr["term_beta"][r, :m] = t.beta
        arr["enc_slot"][r, :s] = e.slot
        arr["enc_col"][r, :s] = 2 * e.orbit
        arr["enc_a"][r, :s] = e.a
        arr["enc_b"][r, :s] = e.b
    row_of_hall = np.full(N_SETTINGS + 1, -1, dtype=np.int64)
    row_of_hall[halls] = np.arange(H)
    n_box = n**3
    n_out = encs[0].n_out
    point_groups = np.zeros((H, 48, 3, 3), dtype=np.int64)
    point_group_order = np.zeros(H, dtype=np.int64)
    for r, b in enumerate(bases):
        pg = np.unique(np.asarray(b.rotations, dtype=np.int64).reshape(-1, 9), axis=0).reshape(-1, 3, 3)
        point_groups[r, : len(pg)] = pg
        point_group_order[r] = len(pg)
    plan = BatchPlan(
        hall_numbers=halls,
        row_of_hall=row_of_hall,
        point_groups=point_groups,
        point_group_order=point_group_order,
        slot_box=np.arange(n_out, dtype=np.int64) % n_box,
        n_cols=max(2, max(t.n_out for t in terms)),
        n_out=int(n_out),
        n_box=int(n_box),
        kmax=int(kmax),
        packing=packing,
        **arr,
    )
    for a in (
        plan.hall_numbers,
        plan.row_of_hall,
        plan.slot_box,
        *(getattr(plan, k) for k in BatchPlan.ARRAYS),
    ):
        a.setflags(write=False)
    return plan


def _box_waves(x: np.ndarray, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of 2 pi k.x for every box frequency k (box-index order): two (N, n_box) float64."""
    ang = (2.0 * np.pi) * np.mod(x, 1.0)[:, :, None] * np.arange(-kmax, kmax + 1)  # (N, 3, n)
    e = np.exp(1j * ang)
    w = (e[:, 0, :, None, None] * e[:, 1, None, :, None] * e[:, 2, None, None, :]).reshape(len(x), -1)
    return w.real, w.imag


def evaluate_batch_plan(plan: BatchPlan, x, hall) -> np.ndarray:
    """numpy back-end of a ``BatchPlan``: the shared encoding (N, n_out) float64 of atoms at
    fractional coordinates x (N, 3) (each in its own setting), hall (N,) hall numbers."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    row = plan.row_of_hall[np.asarray(hall, dtype=np.int64).reshape(-1)]
    if len(row) != len(x):
        raise ValueError(f"{len(x)} points but {len(row)} hall numbers")
    if np.any(row < 0):
        raise ValueError(
            f"hall numbers not in this plan: {sorted(set(np.asarray(hall).reshape(-1)[row < 0].tolist()))}"
        )
    cos, sin = _box_waves(x, plan.kmax)
    g = lambda name: getattr(plan, name)[row]  # noqa: E731
    tb = g("term_box")
    vals = g("term_alpha") * np.take_along_axis(cos, tb, 1) + g("term_beta") * np.take_along_axis(sin, tb, 1)
    phi = np.zeros((len(x), plan.n_cols))
    np.add.at(phi, (np.arange(len(x))[:, None], g("term_col")), vals)
    col = g("enc_col")
    enc = g("enc_a") * np.take_along_axis(phi, col, 1) + g("enc_b") * np.take_along_axis(phi, col + 1, 1)
    out = np.zeros((len(x), plan.n_out))
    np.add.at(out, (np.arange(len(x))[:, None], g("enc_slot")), enc)
    return out


def check_per_crystal(n_atoms: int, lo: int | None, hi: int | None, shape: tuple, name: str) -> None:
    """The encoder layers' ragged ``batch=`` rule (torch and JAX): ``batch`` holds each atom's crystal,
    no negative index (``lo``, its minimum; None without atoms), and a per-crystal argument ``name``
    (hall_number or lattice) of shape ``shape`` starts with B = ``hi`` + 1, its maximum plus one (so a
    trailing crystal without atoms must be left out of the per-crystal arguments).  ValueError otherwise,
    with a hint when ``shape`` is one entry per atom (what ``basisdb.torch.collate``'s 'hall' is)."""
    if lo is not None and lo < 0:
        raise ValueError(f"batch holds a negative crystal index ({lo})")
    n_crystals = 0 if hi is None else hi + 1
    got = tuple(shape)[:1]
    if got != (n_crystals,):
        hint = (
            f"; it looks like one {name} per atom: drop batch= (then hall_number and lattice are per atom) "
            "or pass one per crystal (basisdb.torch.collate's 'crystal_hall' and 'lattice')"
            if got == (n_atoms,)
            else ""
        )
        raise ValueError(
            f"with batch=, {name} needs one entry per crystal: {n_crystals} crystals (batch.max() + 1), "
            f"got shape {tuple(shape)}{hint}"
        )


def symmetrized_metric(lattice, rotations) -> np.ndarray:
    """``G_sym = (1/|P|) sum_R R^T (L L^T) R`` over the distinct rotations R (k, 3, 3) of a point group acting on
    fractional column vectors: the metric of ``lattice`` (rows in Angstrom) made exactly invariant
    (R^T G_sym R = G_sym), the metric of ``basisdb._vector_structures.ideal_lattice``.  (3, 3) float64."""
    L = np.asarray(lattice, dtype=np.float64)
    R = (
        np.unique(np.asarray(rotations, dtype=np.int64).reshape(-1, 9), axis=0)
        .reshape(-1, 3, 3)
        .astype(np.float64)
    )
    return np.einsum("gji,jk,gkl->il", R, L @ L.T, R) / len(R)


def frequency_lengths(lattice, kmax: int) -> np.ndarray:
    """|k| = sqrt(k^T G* k) in 1/Angstrom for every box frequency (box-index order).

    lattice: (..., 3, 3) rows = lattice vectors in Angstrom; G* = (L L^T)^-1 is the
    reciprocal metric (no 2 pi), so |k| = |L^-1 k| = 1 / d_hkl.  Returns (..., n_box) float64.
    """
    L = np.asarray(lattice, dtype=np.float64)
    q = np.linalg.solve(L[..., None, :, :], box_frequencies(kmax).astype(np.float64)[..., None])[..., 0]
    return np.sqrt((q * q).sum(-1))
