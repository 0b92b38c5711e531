"""JAX adapters: basis arrays, differentiable (batched) features and the shared encoding.

>>> import basisdb, basisdb.jax as bj
>>> jb = bj.to_jax(basisdb.open().get(225))          # float32 unless jax_enable_x64 is on
>>> jb.evaluate(x)                                   # (N, n_basis); jax.grad flows through it
>>> feats, mask = bj.BatchedBasis(kmax=6).features(x, hall)
>>> tables = bj.invariant_encoder_tables(3)                      # all 530 settings (a pytree)
>>> params = bj.invariant_encoder_init(jax.random.PRNGKey(0), 64, kmax=3)
>>> h = jax.jit(bj.invariant_encoder_apply)(params, tables, pos, hall, mask=mask)   # (B, N, 64)

The same algorithm as basisdb.torch: per-axis cos/sin tables (float64 when x64
is enabled), per-frequency products and a segment sum per output column.  The
kernel of one setting is jit-compiled (``jit=False``: op by op, for debugging); point
counts are padded to powers of two so that a stream of batches compiles a
handful of shapes only.  float64
needs ``jax.config.update("jax_enable_x64", True)``.

The encoder (``invariant_encoder_tables / _init / _apply``, ``invariant_encoding``) is
the pure-function twin of ``basisdb.torch.InvariantEncoder``: the same stacked plan
(``basisdb._routing.batch_plan``), the same inputs and outputs; ``params["weight"]`` is
the transpose of the torch layer's ``linear.weight``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np

from ._boxindex import box_frequencies
from ._routing import (
    BatchPlan,
    batch_plan,
    check_per_crystal,
    encoding_table,
    term_gather_indices,
    term_table,
)

if TYPE_CHECKING:
    from jax.typing import DTypeLike

    from ._basis import Basis
    from ._vector import VectorBasis

__all__ = [
    "JaxBasis",
    "to_jax",
    "BatchedBasis",
    "EncoderTables",
    "invariant_encoder_tables",
    "invariant_encoding",
    "invariant_encoder_init",
    "invariant_encoder_apply",
    "radial_weights",
    "frequency_lengths",
    "check_halls",
    "JaxVectorBasis",
    "vector_to_jax",
]


def _dtype(dtype):
    x64 = bool(jax.config.read("jax_enable_x64"))
    if dtype is None:
        return jnp.float64 if x64 else jnp.float32
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if dtype == jnp.dtype(jnp.float64) and not x64:
        raise ValueError('float64 needs jax.config.update("jax_enable_x64", True)')
    return dtype


def _kernel_impl(x, u_h, u_k, hk_id, l, column, alpha, beta, *, kmax: int, n_out: int):
    dtype = alpha.dtype
    wide = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    xd = x.astype(wide)
    ang = (2 * jnp.pi) * (xd - jnp.floor(xd))
    a = ang[..., None] * jnp.arange(kmax + 1, dtype=wide)
    c, s = jnp.cos(a), jnp.sin(a)
    cos = jnp.concatenate([c[..., 1:][..., ::-1], c], axis=-1)
    sin = jnp.concatenate([-s[..., 1:][..., ::-1], s], axis=-1)
    c1, s1 = cos[:, 0, u_h], sin[:, 0, u_h]
    c2, s2 = cos[:, 1, u_k], sin[:, 1, u_k]
    re12 = (c1 * c2 - s1 * s2).astype(dtype)[:, hk_id]
    im12 = (c1 * s2 + s1 * c2).astype(dtype)[:, hk_id]
    c3 = cos[:, 2].astype(dtype)[:, l]
    s3 = sin[:, 2].astype(dtype)[:, l]
    vals = alpha * (re12 * c3 - im12 * s3) + beta * (re12 * s3 + im12 * c3)
    acc = jnp.zeros((x.shape[0], n_out), dtype=wide).at[:, column].add(vals.astype(wide))
    return acc.astype(dtype)


_kernel_jit = jax.jit(_kernel_impl, static_argnames=("kmax", "n_out"))


class _Tables:
    def __init__(self, table, dtype, jit: bool = True):
        self.jit = jit
        self.kmax, self.n_out = table.kmax, table.n_out
        self.args = (
            *(jnp.asarray(a) for a in term_gather_indices(table)),
            jnp.asarray(table.column),
            jnp.asarray(table.alpha, dtype=dtype),
            jnp.asarray(table.beta, dtype=dtype),
        )

    def __call__(self, x):
        n = x.shape[0]
        if n == 0:
            return jnp.zeros((0, self.n_out), dtype=self.args[-1].dtype)
        if not self.jit:
            return _kernel_impl(x, *self.args, kmax=self.kmax, n_out=self.n_out)
        size = 1 << max(0, (n - 1).bit_length())  # pad to a power of two: few compiled shapes
        xp = jnp.pad(x, ((0, size - n), (0, 0))) if size != n else x
        return _kernel_jit(xp, *self.args, kmax=self.kmax, n_out=self.n_out)[:n]


def _points(x, dtype, dim: int = 3):
    arr = jnp.asarray(x)
    if arr.dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        arr = arr.astype(dtype)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"coordinates must have shape (N, {dim}), got {arr.shape}")
    if dim < 3:  # a plane group: the kernel is 3-D, with k = (h, k, 0)
        arr = jnp.pad(arr, ((0, 0), (0, 3 - dim)))
    return arr


@dataclass(frozen=True, eq=False)
class JaxBasis:
    """A Basis as JAX arrays (copies) plus differentiable evaluation (see basisdb.torch.TorchBasis)."""

    hall_number: int
    kmax: int
    dim: int
    n_basis: int
    n_box: int
    dtype: DTypeLike
    jit: bool
    frequencies: jax.Array
    box_index: jax.Array
    orbit: jax.Array
    coefficients: jax.Array
    _basis: Basis
    _tables: dict

    def _t(self, name: str) -> _Tables:
        t = self._tables.get(name)
        if t is None:
            t = self._tables[name] = _Tables(
                term_table(self._basis, real=(name == "real")), self.dtype, self.jit
            )
        return t

    def complex_basis(self):
        """B as a BCOO sparse array (n_box, n_basis), complex (jax.experimental.sparse)."""
        from jax.experimental import sparse

        idx = jnp.stack([self.box_index, self.orbit], axis=1)
        return sparse.BCOO((self.coefficients, idx), shape=(self.n_box, self.n_basis))

    def projector(self):
        """P_G = B B^H as a BCOO sparse array (n_box, n_box), complex."""
        from jax.experimental import sparse

        P = self._basis.projector().tocoo()
        cdt = jnp.complex64 if self.dtype == jnp.dtype(jnp.float32) else jnp.complex128
        idx = jnp.asarray(np.stack([P.row, P.col], axis=1).astype(np.int32))
        return sparse.BCOO((jnp.asarray(P.data, dtype=cdt), idx), shape=(self.n_box, self.n_box))

    def evaluate(self, x, real: bool = True):
        """Features at coordinates x (N, 3) in this setting: (N, n_basis) real (or complex)."""
        pts = _points(x, self.dtype, self.dim)
        if real:
            return self._t("real")(pts)
        ri = self._t("complex")(pts)
        return jax.lax.complex(ri[:, 0::2], ri[:, 1::2])

    def encode(self, x):
        """The G-invariant shared encoding (N, n_box)."""
        return _encode(self, _points(x, self.dtype, self.dim))


def _encode(jb: JaxBasis, pts):
    enc = jb._tables.get("enc")
    if enc is None:
        e = encoding_table(jb._basis)
        enc = jb._tables["enc"] = (
            jnp.asarray(e.slot),
            jnp.asarray(e.orbit),
            jnp.asarray(e.a, dtype=jb.dtype),
            jnp.asarray(e.b, dtype=jb.dtype),
        )
    slot, orbit, a, b = enc
    ri = jb._t("complex")(pts)
    vals = a * ri[:, 2 * orbit] + b * ri[:, 2 * orbit + 1]
    return jnp.zeros((pts.shape[0], jb.n_box), dtype=jb.dtype).at[:, slot].set(vals)


def to_jax(basis, dtype=None, jit: bool = True) -> JaxBasis:
    """Copy a Basis into JAX arrays (float32, or float64 when x64 is enabled).

    jit: compile the evaluation kernel (about 0.3 s per setting and padded batch size on a CPU);
    False runs it op by op (for debugging; JAX then compiles every primitive, which is slower).
    """
    dtype = _dtype(dtype)
    cdt = jnp.complex64 if dtype == jnp.dtype(jnp.float32) else jnp.complex128
    return JaxBasis(
        hall_number=basis.setting.hall_number,
        kmax=basis.kmax,
        dim=int(basis.frequencies.shape[1]),
        n_basis=basis.n_basis,
        n_box=basis.n_box,
        dtype=jnp.dtype(dtype),
        jit=bool(jit),
        frequencies=jnp.asarray(np.array(basis.frequencies)),
        box_index=jnp.asarray(np.array(basis.box_indices)),
        orbit=jnp.asarray(np.array(basis.orbit_of)),
        coefficients=jnp.asarray(np.array(basis.coefficients), dtype=cdt),
        _basis=basis,
        _tables={},
    )


class BatchedBasis:
    """Features for a batch of atoms of different settings (see basisdb.torch.BatchedBasis)."""

    def __init__(self, db=None, kmax: int | None = None, dtype=None, jit: bool = True):
        if db is None:
            from ._database import default_database

            db = default_database()
        self.db = db
        self.kmax = db._check_kmax(kmax)
        self.dtype = _dtype(dtype)
        self.n_box = (2 * self.kmax + 1) ** 3
        self.jit = bool(jit)
        self._bases: dict[int, JaxBasis] = {}
        self._lock = threading.Lock()

    def basis(self, hall: int) -> JaxBasis:
        hall = int(hall)
        with self._lock:
            jb = self._bases.get(hall)
            if jb is None:
                jb = self._bases[hall] = to_jax(self.db.get(hall=hall, kmax=self.kmax), self.dtype, self.jit)
        return jb

    def _batched(self, x, hall, width, block):
        pts = _points(x, self.dtype)
        h = np.asarray(hall, dtype=np.int64)
        if h.shape != (pts.shape[0],):
            raise ValueError(f"{pts.shape[0]} points but hall has shape {h.shape}")
        order = np.argsort(h, kind="stable")  # atoms grouped by setting: one gather in, one gather out
        xs = pts[jnp.asarray(order)]
        uniq, starts = np.unique(h[order], return_index=True)
        ends = np.r_[starts[1:], len(h)]
        parts = [block(self.basis(v), xs[lo:hi], width) for v, lo, hi in zip(uniq, starts, ends)]
        if not parts:
            return jnp.zeros((0, width), dtype=self.dtype), h, order
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return jnp.concatenate(parts, axis=0)[jnp.asarray(inverse)], h, order

    def features(self, x, hall, width: int | None = None):
        """Zero-padded real features (N, width) and a bool mask (N, width); hall: (N,) per atom (host array)."""
        h = np.asarray(hall, dtype=np.int64)
        uniq = np.unique(h)
        width = max((self.basis(v).n_basis for v in uniq), default=0) if width is None else int(width)
        for v in uniq:
            if self.basis(v).n_basis > width:
                raise ValueError(
                    f"width={width} is smaller than n_basis={self.basis(v).n_basis} of hall {int(v)}"
                )

        def block(jb, pts, w):
            f = jb._t("real")(pts)
            return jnp.pad(f, ((0, 0), (0, w - jb.n_basis)))

        out, h, _ = self._batched(x, h, width, block)
        n_basis = np.array([self.basis(v).n_basis for v in h]) if len(h) else np.zeros(0, dtype=np.int64)
        mask = np.arange(width)[None, :] < n_basis[:, None]
        return out, jnp.asarray(mask)

    def encode(self, x, hall):
        """The shared G-invariant encoding (N, n_box) of every atom."""
        out, _, _ = self._batched(x, hall, self.n_box, lambda jb, pts, w: _encode(jb, pts))
        return out


# ------------------------------------------------------------------ the encoder (pure functions)
@dataclass(frozen=True, eq=False)
class EncoderTables:
    """The stacked plan (``basisdb._routing.BatchPlan``) as JAX arrays: a pytree whose arrays are
    leaves and whose sizes are static, so it can be passed to jitted functions.

    Arrays: the ``BatchPlan.ARRAYS`` (H, T) / (H, S), ``row_of_hall`` (531,), ``slot_box``
    (n_out,), ``box_frequencies`` (n_box, 3) float.  Static: kmax, n_cols, n_out, n_box, packing,
    hall_numbers (tuple).
    """

    term_box: jax.Array
    term_col: jax.Array
    term_alpha: jax.Array
    term_beta: jax.Array
    enc_slot: jax.Array
    enc_col: jax.Array
    enc_a: jax.Array
    enc_b: jax.Array
    row_of_hall: jax.Array
    point_groups: jax.Array
    point_group_order: jax.Array
    slot_box: jax.Array
    box_frequencies: jax.Array
    kmax: int
    n_cols: int
    n_out: int
    n_box: int
    packing: str
    hall_numbers: tuple


_TABLE_ARRAYS = (
    *BatchPlan.ARRAYS,
    "row_of_hall",
    "point_groups",
    "point_group_order",
    "slot_box",
    "box_frequencies",
)
jax.tree_util.register_dataclass(
    EncoderTables,
    data_fields=list(_TABLE_ARRAYS),
    meta_fields=["kmax", "n_cols", "n_out", "n_box", "packing", "hall_numbers"],
)


def invariant_encoder_tables(
    kmax: int = 3, *, db=None, hall_numbers=None, packing: str = "complex", dtype=None
) -> EncoderTables:
    """Build the stacked tables of ``hall_numbers`` (default all 530 settings of ``db``) once.

    Same plan as ``basisdb.torch.InvariantEncoding`` (``basisdb._routing.batch_plan``); dtype
    float32 (default) or float64 (needs x64).
    """
    if db is None:
        from ._database import default_database

        db = default_database()
    kmax = db._check_kmax(kmax)
    dtype = _dtype(dtype)
    halls = (
        [s.hall_number for s in db.settings()]
        if hall_numbers is None
        else [int(h) for h in np.unique(np.asarray(hall_numbers, dtype=np.int64))]
    )
    plan = batch_plan([db.get(hall=h, kmax=kmax) for h in halls], packing)
    arrays = {
        n: jnp.asarray(
            np.array(getattr(plan, n)), dtype=dtype if getattr(plan, n).dtype.kind == "f" else jnp.int32
        )
        for n in BatchPlan.ARRAYS
    }
    return EncoderTables(
        **arrays,
        row_of_hall=jnp.asarray(np.array(plan.row_of_hall), dtype=jnp.int32),
        point_groups=jnp.asarray(plan.point_groups, dtype=jnp.int32),
        point_group_order=jnp.asarray(plan.point_group_order, dtype=jnp.int32),
        slot_box=jnp.asarray(np.array(plan.slot_box), dtype=jnp.int32),
        box_frequencies=jnp.asarray(box_frequencies(plan.kmax), dtype=dtype),
        kmax=plan.kmax,
        n_cols=plan.n_cols,
        n_out=plan.n_out,
        n_box=plan.n_box,
        packing=plan.packing,
        hall_numbers=tuple(int(h) for h in plan.hall_numbers),
    )


def _box_waves(x, kmax: int, dtype):
    """cos, sin of 2 pi k.x for every box frequency: two (M, n_box) arrays (see basisdb.torch._box_waves)."""
    wide = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    xd = x.astype(wide)
    ang = (2 * jnp.pi) * (xd - jnp.floor(xd))  # (M, 3)
    a = ang[..., None] * jnp.arange(-kmax, kmax + 1, dtype=wide)  # (M, 3, n)
    c, s = jnp.cos(a), jnp.sin(a)
    c1, s1, c2, s2 = c[:, 0, :, None], s[:, 0, :, None], c[:, 1, None, :], s[:, 1, None, :]
    re12 = (c1 * c2 - s1 * s2).astype(dtype)[..., None]  # (M, n, n, 1)
    im12 = (c1 * s2 + s1 * c2).astype(dtype)[..., None]
    c3, s3 = c[:, 2, None, None, :].astype(dtype), s[:, 2, None, None, :].astype(dtype)
    m = x.shape[0]
    return (re12 * c3 - im12 * s3).reshape(m, -1), (re12 * s3 + im12 * c3).reshape(m, -1)


def _plan_encode(t: EncoderTables, x, row):
    """The three steps of ``basisdb._routing.evaluate_batch_plan`` on plan rows ``row`` (M,)."""
    dtype = t.term_alpha.dtype
    cos, sin = _box_waves(x, t.kmax, dtype)
    m = x.shape[0]
    ix = jnp.arange(m)[:, None]
    box = t.term_box[row]
    vals = t.term_alpha[row] * jnp.take_along_axis(cos, box, 1) + t.term_beta[row] * jnp.take_along_axis(
        sin, box, 1
    )
    phi = jnp.zeros((m, t.n_cols), dtype=dtype).at[ix, t.term_col[row]].add(vals)
    col = t.enc_col[row]
    enc = t.enc_a[row] * jnp.take_along_axis(phi, col, 1) + t.enc_b[row] * jnp.take_along_axis(
        phi, col + 1, 1
    )
    return jnp.zeros((m, t.n_out), dtype=dtype).at[ix, t.enc_slot[row]].add(enc)


def _concrete(a) -> np.ndarray | None:
    """``a`` as a numpy array when its values are known (not traced under jit/vmap/grad), else None."""
    if isinstance(a, jax.core.Tracer):
        return None
    return np.asarray(a)


def _layout(t: EncoderTables, positions, hall_number, mask, batch):
    """(x (M', 3), plan row of each point (M',), crystal of each point or None, padded (B, N) or None, valid).

    Shapes are checked always (they are static under jit); values (hall numbers, batch indices) when they
    are concrete.  ``valid`` (M',) bool: False where the hall number is not in the tables (only reachable
    under tracing, where it cannot raise): those rows come out NaN instead of another setting's encoding."""
    x = jnp.asarray(positions)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(t.term_alpha.dtype)
    if x.ndim not in (2, 3) or x.shape[-1] != 3:
        raise ValueError(f"positions must have shape (B, N, 3) or (M, 3), got {tuple(x.shape)}")
    hall = jnp.asarray(hall_number)
    if hall.ndim != 1 or not jnp.issubdtype(hall.dtype, jnp.integer):
        raise ValueError(
            f"hall_number must be a 1-D integer array, got shape {tuple(hall.shape)} of {hall.dtype}"
        )
    known = _concrete(hall)
    if known is not None:  # the hall numbers of crystals (or atoms) with an unmasked atom must be known
        check_halls(t, known[_active(known.shape[0], x.ndim, mask, batch)])
    n_rows = t.row_of_hall.shape[0]
    inside = (hall >= 0) & (hall < n_rows)
    rows = t.row_of_hall[jnp.clip(hall, 0, n_rows - 1)]
    valid = inside & (rows >= 0)
    if x.ndim == 3:
        B, N = x.shape[:2]
        if batch is not None:
            raise ValueError("batch= is for ragged input (positions (M, 3)); padded input uses mask=")
        if tuple(hall.shape) != (B,):
            raise ValueError(f"padded input needs hall_number of shape ({B},), got {tuple(hall.shape)}")
        if mask is not None:
            if tuple(jnp.shape(mask)) != (B, N):
                raise ValueError(f"mask must have shape {(B, N)}, got {tuple(jnp.shape(mask))}")
            x = jnp.where(jnp.asarray(mask, dtype=bool)[..., None], x, 0)
        crystal = jnp.repeat(jnp.arange(B), N)
        return x.reshape(B * N, 3), rows[crystal], crystal, (B, N), valid[crystal]
    M = x.shape[0]
    if mask is not None and tuple(jnp.shape(mask)) != (M,):
        raise ValueError(f"mask must have shape ({M},), got {tuple(jnp.shape(mask))}")
    if batch is None:
        if tuple(hall.shape) != (M,):
            raise ValueError(
                f"ragged input without batch= needs one hall number per atom ({M},), got {tuple(hall.shape)}"
            )
        return x, rows, None, None, valid
    batch = jnp.asarray(batch)
    if tuple(batch.shape) != (M,) or not jnp.issubdtype(batch.dtype, jnp.integer):
        raise ValueError(
            f"batch must be an integer array of shape ({M},) (the crystal of each atom), got {tuple(batch.shape)}"
        )
    b = _concrete(batch)
    if b is not None:
        _check_per_crystal(b, tuple(hall.shape), "hall_number")
    return x, rows[batch], batch, None, valid[batch]


def _active(n: int, ndim: int, mask, batch) -> np.ndarray:
    """Which of the n hall numbers belong to a crystal (or ragged atom) with an unmasked atom: (n,) bool.
    Every one when the mask (or batch) is traced or absent: a masked padding crystal may carry any hall
    number (its rows are zero whatever it is)."""
    m = None if mask is None else _concrete(mask)
    if m is None:
        return np.ones(n, dtype=bool)
    m = m.astype(bool)
    if ndim == 3:  # padded: (B, N) mask, one hall number per crystal
        return np.asarray(m.reshape(n, -1).any(axis=1)) if m.size else np.zeros(n, dtype=bool)
    if batch is None:  # ragged, one hall number per atom
        return m.reshape(-1)
    b = _concrete(batch)
    if b is None:
        return np.ones(n, dtype=bool)
    out = np.zeros(n, dtype=bool)
    out[np.asarray(b)[m.reshape(-1)].astype(np.int64) % max(n, 1)] = True
    return out


def _check_per_crystal(batch: np.ndarray, shape: tuple, name: str) -> None:
    """``basisdb._routing.check_per_crystal`` of a concrete ``batch`` (the torch layer's rule)."""
    m = batch.shape[0]
    lo, hi = (int(batch.min()), int(batch.max())) if m else (None, None)
    check_per_crystal(m, lo, hi, shape, name)


def invariant_encoding(
    tables: EncoderTables, positions, hall_number, mask=None, batch=None, radial_weights=None
):
    """The invariant encoding (pure, jit-able with ``tables`` as an argument).

    Inputs as ``basisdb.torch.InvariantEncoder.encode``: padded positions (B, N, 3), hall_number
    (B,), mask (B, N) -> (B, N, n_out); or ragged positions (M, 3), hall_number (M,) or (B,) with
    batch (M,) -> (M, n_out).  radial_weights: optional (B, n_out) (with batch or padded) or
    (M, n_out) factors; masked rows are zero.

    Raises ValueError for inconsistent shapes (always: they are static under ``jax.jit``) and, when
    the values are concrete (not traced), for hall numbers outside the tables (``check_halls``) and
    for a ``batch`` whose crystal count does not match ``hall_number`` (or ``radial_weights``). Under
    ``jit``/``vmap``/``grad`` the values cannot be checked: the rows of a hall number outside the
    tables come out NaN (never another setting's encoding); call ``check_halls`` on the host first.
    """
    x, rows, crystal, padded, valid = _layout(tables, positions, hall_number, mask, batch)
    if x.shape[0] == 0:  # an empty batch: an empty encoding (shapes are static under jit)
        dtype = tables.term_alpha.dtype
        return jnp.zeros((*padded, tables.n_out) if padded is not None else (0, tables.n_out), dtype=dtype)
    out = _plan_encode(tables, x, jnp.where(valid, rows, 0))
    if radial_weights is not None:
        if crystal is not None:
            if padded is None:
                b = _concrete(crystal)
                if b is not None:
                    _check_per_crystal(b, tuple(jnp.shape(radial_weights)), "lattice")
            elif jnp.shape(radial_weights)[0] != padded[0]:
                raise ValueError(
                    f"lattice must have one entry per crystal ({padded[0]}), got {jnp.shape(radial_weights)[0]}"
                )
        out = out * (radial_weights[crystal] if crystal is not None else radial_weights)
    out = jnp.where(valid[:, None], out, jnp.nan)  # after every other step: masked rows get zero gradients
    if mask is not None:
        out = jnp.where(jnp.asarray(mask, dtype=bool).reshape(-1, 1), out, 0)  # zero even where out is NaN
    return out.reshape(*padded, tables.n_out) if padded is not None else out


def check_halls(tables: EncoderTables, hall_number) -> None:
    """Raise ValueError if some hall number is not in ``tables`` (host-side check; not traceable)."""
    h = np.asarray(hall_number).reshape(-1)
    ok = set(tables.hall_numbers)
    bad = sorted({int(v) for v in h if int(v) not in ok})
    if bad:
        raise ValueError(f"hall numbers not supported by these tables: {bad}")


def _norm(q):
    """|q| over axis -2 with a finite gradient at q = 0 (the k = 0 frequency): 0 there, not NaN."""
    s = (q * q).sum(-2)
    pos = s > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, s, 1.0)), 0.0)


def frequency_lengths(tables: EncoderTables, lattice, hall_number=None):
    """``|k| = |L^-1 k|`` in 1/Angstrom of every box frequency: (..., n_box).

    lattice: (..., 3, 3) rows in Angstrom.  hall_number: None, or (...) the setting of each lattice, whose
    point group first symmetrises the metric, ``G_sym = (1/|P|) sum_R R^T L L^T R, |k|^2 = k^T G_sym^-1 k``
    (as ``basisdb.torch.InvariantEncoding.frequency_lengths``: the same lengths for every equivalent cell
    of a crystal that is symmetric only within a tolerance).
    """
    L = jnp.asarray(lattice, dtype=tables.box_frequencies.dtype)
    if hall_number is not None:
        n_rows = tables.row_of_hall.shape[0]
        rows = tables.row_of_hall[jnp.clip(jnp.asarray(hall_number), 0, n_rows - 1)]
        R = tables.point_groups[rows].astype(L.dtype)  # (..., 48, 3, 3), zero-padded
        G = L @ jnp.swapaxes(L, -1, -2)
        gs = (jnp.swapaxes(R, -1, -2) @ G[..., None, :, :] @ R).sum(-3)
        gs = gs / tables.point_group_order[rows].astype(L.dtype)[..., None, None]
        C = jnp.linalg.cholesky(gs)
        kt = jnp.broadcast_to(tables.box_frequencies.T, C.shape[:-2] + tables.box_frequencies.T.shape)
        q = jax.scipy.linalg.solve_triangular(C, kt, lower=True)  # (..., 3, n_box)
        return _norm(q)
    k = jnp.broadcast_to(tables.box_frequencies.T, L.shape[:-2] + tables.box_frequencies.T.shape)
    q = jnp.linalg.solve(L, k)  # (..., 3, n_box)
    return _norm(q)


def invariant_encoder_init(
    key,
    out_features: int,
    *,
    kmax: int = 3,
    frequency_weighting: str | None = None,
    n_radial: int = 8,
    bias: bool = True,
    packing: str = "complex",
    dtype=None,
) -> dict:
    """Parameters of the encoder: {"weight": (n_out, out_features), "bias": (out_features,), "radial": (n_radial,)}.

    weight and bias are drawn as torch.nn.Linear draws them (uniform in +-1/sqrt(n_out));
    "radial" (only with frequency_weighting="metric") starts at 0.  Note weight is the
    transpose of ``torch.nn.Linear.weight``.
    """
    if frequency_weighting not in (None, "metric"):
        raise ValueError(f'frequency_weighting must be None or "metric", got {frequency_weighting!r}')
    dtype = _dtype(dtype)
    n_box = (2 * int(kmax) + 1) ** 3
    n_out = 2 * n_box if packing == "complex" else n_box
    bound = 1.0 / np.sqrt(n_out)
    kw, kb = jax.random.split(key)
    params = {"weight": jax.random.uniform(kw, (n_out, int(out_features)), dtype, -bound, bound)}
    if bias:
        params["bias"] = jax.random.uniform(kb, (int(out_features),), dtype, -bound, bound)
    if frequency_weighting == "metric":
        params["radial"] = jnp.zeros((int(n_radial),), dtype=dtype)
    return params


def radial_weights(tables: EncoderTables, radial, lattice, radial_max: float | None = None, hall_number=None):
    """``w(|k|) = 1 + sum_r radial_r exp(-((|k| - mu_r)/sigma)^2 / 2)`` of every encoding column: (..., n_out)
    (see ``basisdb.torch.InvariantEncoder``; centres on [0, radial_max], default 0.75 kmax).  hall_number:
    (...) the setting of each lattice (its point group symmetrises the metric: ``frequency_lengths``), or
    None: the metric as given."""
    n = radial.shape[0]
    rmax = 0.75 * tables.kmax if radial_max is None else radial_max  # may be traced
    centres = jnp.linspace(0.0, rmax, n, dtype=radial.dtype)
    q = frequency_lengths(tables, lattice, hall_number).astype(radial.dtype)
    rbf = jnp.exp(-0.5 * ((q[..., None] - centres) / (rmax / (n - 1))) ** 2)
    return (1.0 + rbf @ radial)[..., tables.slot_box]


def invariant_encoder_apply(
    params: dict,
    tables: EncoderTables,
    positions,
    hall_number,
    lattice=None,
    mask=None,
    batch=None,
    radial_max: float | None = None,
):
    """Per-atom embeddings (pure; the contract of ``basisdb.torch.InvariantEncoder.forward``).

    params from ``invariant_encoder_init``; tables from ``invariant_encoder_tables`` (the same
    kmax and packing).  lattice (B, 3, 3) (rows in Angstrom) is needed when params has "radial".
    Returns (B, N, out_features) (padded; masked rows zero) or (M, out_features) (ragged).
    """
    w = None
    if "radial" in params:
        if lattice is None:
            raise ValueError('frequency weighting ("radial" in params) needs the lattice')
        lattice = jnp.asarray(lattice)
        if lattice.shape[-2:] != (3, 3) or lattice.shape[:-2] != jnp.shape(hall_number):
            raise ValueError(
                f"lattice must have shape {(*jnp.shape(hall_number), 3, 3)} (one per hall number: per crystal, "
                f"or per atom for ragged input without batch=), got {tuple(lattice.shape)}"
            )
        w = radial_weights(tables, params["radial"], lattice, radial_max, hall_number)
    enc = invariant_encoding(tables, positions, hall_number, mask=mask, batch=batch, radial_weights=w)
    out = enc @ params["weight"]
    if "bias" in params:
        out = out + params["bias"]
    if mask is not None:
        out = jnp.where(jnp.asarray(mask, dtype=bool)[..., None], out, 0)
    return out


# ---------------------------------------------------------------- vector fields
@dataclass(frozen=True, eq=False)
class JaxVectorBasis:
    """A ``VectorBasis`` with differentiable JAX evaluation (see basisdb.torch.TorchVectorBasis)."""

    kind: str
    hall_number: int
    kmax: int
    n_basis: int
    dtype: DTypeLike
    jit: bool
    _vector: VectorBasis
    _tables: dict

    def _t(self, real: bool) -> _Tables:
        t = self._tables.get(real)
        if t is None:
            t = self._tables[real] = _Tables(self._vector.term_table(real=real), self.dtype, self.jit)
        return t

    def evaluate(self, x, real: bool = True, lattice=None):
        """(N, n_basis, 3) contravariant components; Cartesian with ``lattice`` (rows a, b, c)."""
        pts = _points(x, self.dtype)
        out = self._t(bool(real))(pts)
        if real:
            out = out.reshape(pts.shape[0], self.n_basis, 3)
        else:
            out = jax.lax.complex(out[:, 0::2], out[:, 1::2]).reshape(pts.shape[0], self.n_basis, 3)
        if lattice is not None:
            out = out @ jnp.asarray(lattice, dtype=self.dtype)
        return out


def vector_to_jax(vector, dtype=None, jit: bool = True) -> JaxVectorBasis:
    """JAX evaluation of a ``VectorBasis`` (float32, or float64 when x64 is enabled)."""
    return JaxVectorBasis(
        kind=vector.kind,
        hall_number=vector.basis.setting.hall_number,
        kmax=vector.basis.kmax,
        n_basis=vector.n_basis,
        dtype=jnp.dtype(_dtype(dtype)),
        jit=bool(jit),
        _vector=vector,
        _tables={},
    )
