"""PyTorch adapters: basis tensors, differentiable (batched) features and the shared encoding.

>>> import basisdb, basisdb.torch as bt
>>> tb = bt.to_torch(basisdb.open().get(225), dtype=torch.float32, device="cuda")
>>> tb.evaluate(x)                        # (N, n_basis), differentiable in x
>>> batched = bt.BatchedBasis(kmax=6)     # many settings in one batch
>>> feats, mask = batched.features(x, hall)   # x (N, 3) canonical coordinates, hall (N,) per atom
>>> enc = batched.encode(x, hall)         # (N, n_box): one index space for every group

Everything returned is a fresh tensor (a copy): callers cannot corrupt the
cached tables.  Plane waves are built from per-axis cos/sin tables of
h 2 pi x_d (h = 0..K, computed in float64, then cast), multiplied per
frequency, and summed per output column with one ``index_add``; the result is
differentiable with respect to the coordinates.  Works on any device torch
supports (``device=None`` keeps tensors where they are / on the CPU).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch

from ._routing import encoding_table, term_table

__all__ = ["TorchBasis", "to_torch", "BatchedBasis", "collate"]

#: about this many (term x point) products per chunk of points: cache-sized on a CPU (measured
#: 2x faster than 4M), large on an accelerator (fewer kernel launches)
_CHUNK_ELEMENTS = {"cpu": 1 << 18}
_CHUNK_DEFAULT = 1 << 23


def _dtype(dtype) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex64 if dtype == torch.float32 else torch.complex128


class _Kernel:
    """Device tensors of one term table (see basisdb._routing.term_table)."""

    def __init__(self, table, dtype: torch.dtype, device):
        K = table.kmax
        f = table.freq + K
        n = 2 * K + 1
        hk = f[:, 0] * n + f[:, 1]
        uniq, hk_id = np.unique(hk, return_inverse=True)
        to = dict(device=device)
        self.kmax = K
        self.n_out = table.n_out
        self.u_h = torch.as_tensor(uniq // n, dtype=torch.long, **to)
        self.u_k = torch.as_tensor(uniq % n, dtype=torch.long, **to)
        self.hk_id = torch.as_tensor(hk_id.reshape(-1), dtype=torch.long, **to)
        self.l = torch.as_tensor(f[:, 2], dtype=torch.long, **to)
        self.column = torch.as_tensor(np.array(table.column), dtype=torch.long, **to)
        self.alpha = torch.as_tensor(np.array(table.alpha), dtype=dtype, **to)
        self.beta = torch.as_tensor(np.array(table.beta), dtype=dtype, **to)
        self.dtype = dtype
        self.n_terms = len(table.column)
        counts = np.bincount(table.column, minlength=max(1, table.n_out))
        self.wide = dtype == torch.float32 and bool(counts.max(initial=0) > 2)


def _axis_tables(x: torch.Tensor, kmax: int):
    """cos and sin of 2 pi h x_d for h = -K..K: two (2K+1, 3, n) float64 tensors (row h + K)."""
    xd = x.to(torch.float64).T  # (3, n)
    ang = (2 * math.pi) * (xd - torch.floor(xd))
    h = torch.arange(kmax + 1, dtype=torch.float64, device=x.device)
    a = h[:, None, None] * ang[None]  # (K+1, 3, n)
    c, s = torch.cos(a), torch.sin(a)
    return torch.cat([c[1:].flip(0), c], dim=0), torch.cat([-s[1:].flip(0), s], dim=0)


def _run_t(kernel: _Kernel, x: torch.Tensor) -> torch.Tensor:
    """Evaluate a kernel at points x (n, 3): (n_out, n) of kernel.dtype (term-major).

    Every intermediate is (terms, points), so gathers copy whole rows and the per-column
    sums are row additions (``index_add`` along dim 0).
    """
    n = x.shape[0]
    out = []
    chunk = max(1, _CHUNK_ELEMENTS.get(x.device.type, _CHUNK_DEFAULT) // max(1, kernel.n_terms))
    for lo in range(0, n, chunk):
        xs = x[lo : lo + chunk]
        # small tables (per axis, per (h, k) pair) in float64; the per-term products in ``dtype``
        cos, sin = _axis_tables(xs, kernel.kmax)
        c1, s1 = cos[:, 0].index_select(0, kernel.u_h), sin[:, 0].index_select(0, kernel.u_h)
        c2, s2 = cos[:, 1].index_select(0, kernel.u_k), sin[:, 1].index_select(0, kernel.u_k)
        re = (c1 * c2 - s1 * s2).to(kernel.dtype).index_select(0, kernel.hk_id)
        im = (c1 * s2 + s1 * c2).to(kernel.dtype).index_select(0, kernel.hk_id)
        c3 = cos[:, 2].to(kernel.dtype).index_select(0, kernel.l)
        s3 = sin[:, 2].to(kernel.dtype).index_select(0, kernel.l)
        vals = kernel.alpha[:, None] * (re * c3 - im * s3) + kernel.beta[:, None] * (re * s3 + im * c3)
        # columns summing more than two terms accumulate in float64 (float32 sums lose ~1e-6)
        wide = torch.float64 if kernel.wide else kernel.dtype
        acc = torch.zeros(kernel.n_out, xs.shape[0], dtype=wide, device=x.device)
        out.append(acc.index_add_(0, kernel.column, vals.to(wide)).to(kernel.dtype))
    if not out:
        return torch.zeros(kernel.n_out, 0, dtype=kernel.dtype, device=x.device)
    return out[0] if len(out) == 1 else torch.cat(out, dim=1)


def _run(kernel: _Kernel, x: torch.Tensor) -> torch.Tensor:
    """Evaluate a kernel at points x (n, 3): (n, n_out) of kernel.dtype."""
    return _run_t(kernel, x).T.contiguous()


def _as_points(x, dtype, device, dim: int = 3) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float64))
    if device is not None:
        t = t.to(device)
    if t.dtype not in (torch.float32, torch.float64):
        t = t.to(dtype)
    if t.ndim != 2 or t.shape[1] != dim:
        raise ValueError(f"coordinates must have shape (N, {dim}), got {tuple(t.shape)}")
    if dim < 3:  # a plane group: the kernels are 3-D, with k = (h, k, 0)
        t = torch.nn.functional.pad(t, (0, 3 - dim))
    return t


@dataclass(frozen=True, eq=False)
class TorchBasis:
    """A Basis as torch tensors (copies) plus differentiable evaluation.

    frequencies (m, 3) long, box_index (m,) long, orbit (m,) long: the non-extinct
    frequencies, their box index and orbit; coefficients (m,) complex: B's
    non-zeros (column = orbit).  real_orbit, real_kind (n_basis,) long: the
    real-basis layout of ``Basis.real_layout``.
    """

    hall_number: int
    kmax: int
    dim: int
    n_basis: int
    n_box: int
    dtype: torch.dtype
    device: torch.device
    frequencies: torch.Tensor
    box_index: torch.Tensor
    orbit: torch.Tensor
    coefficients: torch.Tensor
    real_orbit: torch.Tensor
    real_kind: torch.Tensor
    _basis: object
    _kernels: dict

    def _kernel(self, name: str) -> _Kernel:
        k = self._kernels.get(name)
        if k is None:
            k = self._kernels[name] = _Kernel(term_table(self._basis, real=(name == "real")), self.dtype, self.device)
        return k

    def complex_basis(self) -> torch.Tensor:
        """B as a sparse COO tensor (n_box, n_basis), complex."""
        idx = torch.stack([self.box_index, self.orbit])
        return torch.sparse_coo_tensor(idx, self.coefficients.clone(), (self.n_box, self.n_basis), check_invariants=False).coalesce()

    def real_basis(self) -> torch.Tensor:
        """The real basis' Fourier coefficients as a sparse COO tensor (n_box, n_basis), complex."""
        rows, cols, vals = self._basis._real_coefficients()
        idx = torch.as_tensor(np.stack([rows, cols]), dtype=torch.long, device=self.device)
        v = torch.as_tensor(vals, dtype=_complex_of(self.dtype), device=self.device)
        return torch.sparse_coo_tensor(idx, v, (self.n_box, self.n_basis), check_invariants=False).coalesce()

    def projector(self) -> torch.Tensor:
        """P_G = B B^H as a sparse COO tensor (n_box, n_box), complex."""
        P = self._basis.projector().tocoo()
        idx = torch.as_tensor(np.stack([P.row, P.col]).astype(np.int64), device=self.device)
        v = torch.as_tensor(P.data, dtype=_complex_of(self.dtype), device=self.device)
        return torch.sparse_coo_tensor(idx, v, (self.n_box, self.n_box), check_invariants=False).coalesce()

    def evaluate(self, x, real: bool = True) -> torch.Tensor:
        """Features at coordinates x (N, dim) in this setting: (N, n_basis) real, or complex with real=False."""
        pts = _as_points(x, self.dtype, self.device, self.dim)
        if real:
            return _run(self._kernel("real"), pts)
        ri = _run(self._kernel("complex"), pts)
        return torch.complex(ri[:, 0::2], ri[:, 1::2])

    def encode(self, x) -> torch.Tensor:
        """The G-invariant shared encoding (N, n_box) (basisdb._routing.shared_encoding)."""
        pts = _as_points(x, self.dtype, self.device, self.dim)
        return _encode(self._kernel("complex"), self._enc_tables(), pts, self.n_box)

    def _enc_tables(self):
        t = self._kernels.get("enc")
        if t is None:
            e = encoding_table(self._basis)
            to = dict(device=self.device)
            t = self._kernels["enc"] = (
                torch.as_tensor(np.array(e.slot), dtype=torch.long, **to),
                torch.as_tensor(np.array(e.orbit), dtype=torch.long, **to),
                torch.as_tensor(np.array(e.a), dtype=self.dtype, **to),
                torch.as_tensor(np.array(e.b), dtype=self.dtype, **to),
            )
        return t


def _encode(kernel: _Kernel, enc, pts: torch.Tensor, n_box: int) -> torch.Tensor:
    slot, orbit, a, b = enc
    ri = _run_t(kernel, pts)  # (2 n_orbits, n): Re phi_j in row 2j, Im phi_j in row 2j + 1
    vals = a[:, None] * ri.index_select(0, 2 * orbit) + b[:, None] * ri.index_select(0, 2 * orbit + 1)
    out = torch.zeros(n_box, pts.shape[0], dtype=kernel.dtype, device=pts.device)
    return out.index_copy(0, slot, vals).T.contiguous()


def to_torch(basis, dtype=None, device=None) -> TorchBasis:
    """Copy a Basis into torch tensors (``dtype`` float32/float64, default torch's default dtype)."""
    dtype = _dtype(dtype)
    device = torch.device(device) if device is not None else torch.device("cpu")
    to = dict(device=device)
    orbit, kind = basis.real_layout
    return TorchBasis(
        hall_number=basis.setting.hall_number,
        kmax=basis.kmax,
        dim=int(basis.frequencies.shape[1]),
        n_basis=basis.n_basis,
        n_box=basis.n_box,
        dtype=dtype,
        device=device,
        frequencies=torch.as_tensor(np.array(basis.frequencies), dtype=torch.long, **to),
        box_index=torch.as_tensor(np.array(basis.box_indices), dtype=torch.long, **to),
        orbit=torch.as_tensor(np.array(basis.orbit_of), dtype=torch.long, **to),
        coefficients=torch.as_tensor(np.array(basis.coefficients), dtype=_complex_of(dtype), **to),
        real_orbit=torch.as_tensor(np.array(orbit), dtype=torch.long, **to),
        real_kind=torch.as_tensor(np.array(kind), dtype=torch.long, **to),
        _basis=basis,
        _kernels={},
    )


class BatchedBasis:
    """Features for a batch of atoms from crystals of different settings, in one call.

    db: a Database (default ``basisdb.open()``); kmax: cut-off (default the database's).
    Per-setting tables are built on first use and kept on ``device``.
    """

    def __init__(self, db=None, kmax: int | None = None, dtype=None, device=None):
        if db is None:
            from .structures import _default_db

            db = _default_db()
        self.db = db
        self.kmax = db._check_kmax(kmax)
        self.dtype = _dtype(dtype)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.n_box = (2 * self.kmax + 1) ** 3
        self._bases: dict[int, TorchBasis] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BatchedBasis(kmax={self.kmax}, dtype={self.dtype}, device={self.device}, settings_loaded={len(self._bases)})"

    def basis(self, hall: int) -> TorchBasis:
        hall = int(hall)
        with self._lock:
            tb = self._bases.get(hall)
            if tb is None:
                tb = self._bases[hall] = to_torch(self.db.get(hall=hall, kmax=self.kmax), self.dtype, self.device)
        return tb

    def n_basis(self, halls) -> int:
        return max((self.basis(h).n_basis for h in np.unique(_halls(halls))), default=0)

    def _groups(self, x, hall):
        pts = _as_points(x, self.dtype, self.device)
        h = _halls(hall)
        if len(h) != pts.shape[0]:
            raise ValueError(f"{pts.shape[0]} points but {len(h)} hall numbers")
        for value in np.unique(h):
            idx = np.flatnonzero(h == value)
            yield self.basis(int(value)), torch.as_tensor(idx, dtype=torch.long, device=pts.device), pts

    def features(self, x, hall, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Real features of every atom, zero-padded: (N, width) values and (N, width) bool mask.

        x: (N, 3) canonical coordinates (e.g. ``Featurized.positions``), hall: (N,) hall number of
        each atom's setting.  width defaults to the largest n_basis in the batch.
        """
        h = _halls(hall)
        width = self.n_basis(h) if width is None else int(width)
        n = len(h)
        out = torch.zeros(n, width, dtype=self.dtype, device=self.device)
        mask = torch.zeros(n, width, dtype=torch.bool, device=self.device)
        for tb, idx, pts in self._groups(x, h):
            if tb.n_basis > width:
                raise ValueError(f"width={width} is smaller than n_basis={tb.n_basis} of hall {tb.hall_number}")
            f = _run(tb._kernel("real"), pts.index_select(0, idx))
            out[idx, : tb.n_basis] = f  # in place: autograd records it (out itself needs no grad)
            mask[idx, : tb.n_basis] = True
        return out, mask

    def encode(self, x, hall, index=None) -> torch.Tensor:
        """The shared G-invariant encoding of every atom: (N, n_box), one index space for all settings.

        index: optional box indices to keep (e.g. ``support(hall)``): (N, len(index)) instead.
        """
        h = _halls(hall)
        out = torch.zeros(len(h), self.n_box, dtype=self.dtype, device=self.device)
        for tb, idx, pts in self._groups(x, h):
            out[idx] = _encode(tb._kernel("complex"), tb._enc_tables(), pts.index_select(0, idx), self.n_box)
        if index is not None:
            out = out.index_select(1, torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.device))
        return out

    def support(self, hall) -> torch.Tensor:
        """Sorted box indices where the encoding of some setting in ``hall`` can be non-zero (a compact
        shared index: the union of the settings' non-extinct frequencies)."""
        used = np.unique(np.concatenate([np.asarray(self.db.get(hall=int(v), kmax=self.kmax).box_indices)
                                         for v in np.unique(_halls(hall))] or [np.zeros(0, np.int64)]))
        return torch.as_tensor(used, dtype=torch.long, device=self.device)


def _halls(hall) -> np.ndarray:
    if isinstance(hall, torch.Tensor):
        hall = hall.detach().cpu().numpy()
    h = np.asarray(hall)
    if h.ndim != 1 or (h.size and h.dtype.kind not in "iu"):
        raise ValueError("hall numbers must be a 1-D integer array (one per atom)")
    return h.astype(np.int64)


def collate(results, dtype=None, device=None) -> dict:
    """Concatenate ``Featurized`` results into batch tensors.

    Returns positions (N, 3), hall (N,), numbers (N,), crystal (N,) (index of each atom's
    crystal in ``results``), orbit (N,) long.
    """
    results = list(results)
    dtype = _dtype(dtype)
    to = dict(device=device)
    cat = lambda arrs, dt: torch.as_tensor(np.concatenate(arrs) if arrs else np.zeros(0), dtype=dt, **to)  # noqa: E731
    return {
        "positions": torch.as_tensor(np.concatenate([r.positions for r in results]) if results else np.zeros((0, 3)), dtype=dtype, **to),
        "hall": cat([np.full(r.n_atoms, r.hall_number) for r in results], torch.long),
        "numbers": cat([r.numbers for r in results], torch.long),
        "crystal": cat([np.full(r.n_atoms, i) for i, r in enumerate(results)], torch.long),
        "orbit": cat([r.orbit for r in results], torch.long),
    }
