"""JAX adapters: basis arrays, differentiable (batched) features and the shared encoding.

>>> import basisdb, basisdb.jax as bj
>>> jb = bj.to_jax(basisdb.open().get(225))          # float32 unless jax_enable_x64 is on
>>> jb.evaluate(x)                                   # (N, n_basis); jax.grad flows through it
>>> feats, mask = bj.BatchedBasis(kmax=6).features(x, hall)

The same algorithm as basisdb.torch: per-axis cos/sin tables (float64 when x64
is enabled), per-frequency products and a segment sum per output column.  The
kernel of one setting is jit-compiled (``jit=False``: op by op, for debugging); point
counts are padded to powers of two so that a stream of batches compiles a
handful of shapes only.  float64
needs ``jax.config.update("jax_enable_x64", True)``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._routing import encoding_table, term_table

__all__ = ["JaxBasis", "to_jax", "BatchedBasis"]


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
        K = table.kmax
        f = table.freq + K
        n = 2 * K + 1
        uniq, hk_id = np.unique(f[:, 0] * n + f[:, 1], return_inverse=True)
        self.kmax, self.n_out = K, table.n_out
        self.args = (
            jnp.asarray(uniq // n), jnp.asarray(uniq % n), jnp.asarray(hk_id.reshape(-1)), jnp.asarray(f[:, 2]),
            jnp.asarray(table.column), jnp.asarray(table.alpha, dtype=dtype), jnp.asarray(table.beta, dtype=dtype),
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
    dtype: object
    jit: bool
    frequencies: jax.Array
    box_index: jax.Array
    orbit: jax.Array
    coefficients: jax.Array
    _basis: object
    _tables: dict

    def _t(self, name: str) -> _Tables:
        t = self._tables.get(name)
        if t is None:
            t = self._tables[name] = _Tables(term_table(self._basis, real=(name == "real")), self.dtype, self.jit)
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
        enc = jb._tables["enc"] = (jnp.asarray(e.slot), jnp.asarray(e.orbit), jnp.asarray(e.a, dtype=jb.dtype), jnp.asarray(e.b, dtype=jb.dtype))
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
            from .structures import _default_db

            db = _default_db()
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
                raise ValueError(f"width={width} is smaller than n_basis={self.basis(v).n_basis} of hall {int(v)}")

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
