"""PyTorch adapters: basis tensors, differentiable (batched) features and the shared encoding.

>>> import basisdb, basisdb.torch as bt
>>> tb = bt.to_torch(basisdb.open().get(225), dtype=torch.float32, device="cuda")
>>> tb.evaluate(x)                        # (N, n_basis), differentiable in x
>>> batched = bt.BatchedBasis(kmax=6)     # many settings in one batch
>>> feats, mask = batched.features(x, hall)   # x (N, 3) canonical coordinates, hall (N,) per atom
>>> enc = batched.encode(x, hall)         # (N, n_box): one index space for every group
>>> layer = bt.InvariantEncoder(64, kmax=3)   # the encoder layer: all 530 settings, one weight matrix
>>> h = layer(pos, hall, mask=mask)       # pos (B, N, 3), hall (B,) long, mask (B, N) -> (B, N, 64)

``InvariantEncoder`` / ``InvariantEncoding`` evaluate the stacked plan of
``basisdb._routing.batch_plan`` (the term tables of ``Basis.evaluate`` and the
encoding tables of ``shared_encoding``, padded and stacked over settings) with
fixed-shape gathers and scatter-adds, so a batch of crystals of mixed groups needs no
loop over groups, and ``torch.compile`` traces it as one graph.  Their tables are
non-persistent buffers.  On a small, shared CPU, ``torch.set_num_threads(1)`` can be
much faster than the default (measured 10x on 2 oversubscribed cores).

Everything returned is a fresh tensor (a copy): callers cannot corrupt the
cached tables.  Plane waves are built from per-axis cos/sin tables of
h 2 pi x_d (h = 0..K, computed in float64, then cast), multiplied per
frequency, and summed per output column with one ``index_add``; the result is
differentiable with respect to the coordinates.  Works on any device torch
supports (``device=None`` keeps tensors where they are / on the CPU).
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

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
    from ._basis import Basis
    from ._vector import VectorBasis

__all__ = [
    "TorchBasis",
    "to_torch",
    "BatchedBasis",
    "collate",
    "InvariantEncoder",
    "InvariantEncoding",
    "invariant_encoding",
    "TorchVectorBasis",
    "vector_to_torch",
    "BatchedVectorBasis",
]

#: about this many (term x point) products per chunk of points: cache-sized on a CPU (measured
#: 2x faster than 4M), large on an accelerator (fewer kernel launches)
_CHUNK_ELEMENTS = {"cpu": 1 << 18}
_CHUNK_DEFAULT = 1 << 23


def _dtype(dtype) -> torch.dtype:
    """torch.float32 / torch.float64, also given as a name ("float32", "float64") or numpy dtype."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype):
        with contextlib.suppress(TypeError):  # not a dtype numpy knows: refused below
            dtype = {"float32": torch.float32, "float64": torch.float64}.get(np.dtype(dtype).name, dtype)
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex64 if dtype == torch.float32 else torch.complex128


class _Kernel:
    """Device tensors of one term table (see basisdb._routing.term_table)."""

    def __init__(self, table, dtype: torch.dtype, device):
        to = dict(device=device)
        self.kmax = table.kmax
        self.n_out = table.n_out
        self.u_h, self.u_k, self.hk_id, self.l = (
            torch.as_tensor(a, dtype=torch.long, **to) for a in term_gather_indices(table)
        )
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
    _basis: Basis
    _kernels: dict

    def __repr__(self) -> str:
        return (
            f"TorchBasis(hall_number={self.hall_number}, kmax={self.kmax}, n_basis={self.n_basis}, "
            f"dtype={self.dtype}, device={self.device})"
        )

    def _kernel(self, name: str) -> _Kernel:
        k = self._kernels.get(name)
        if k is None:
            k = self._kernels[name] = _Kernel(
                term_table(self._basis, real=(name == "real")), self.dtype, self.device
            )
        return k

    def complex_basis(self) -> torch.Tensor:
        """B as a sparse COO tensor (n_box, n_basis), complex."""
        idx = torch.stack([self.box_index, self.orbit])
        return torch.sparse_coo_tensor(
            idx, self.coefficients.clone(), (self.n_box, self.n_basis), check_invariants=False
        ).coalesce()

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
            from ._database import default_database

            db = default_database()
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
                tb = self._bases[hall] = to_torch(
                    self.db.get(hall=hall, kmax=self.kmax), self.dtype, self.device
                )
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
                raise ValueError(
                    f"width={width} is smaller than n_basis={tb.n_basis} of hall {tb.hall_number}"
                )
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
            out = out.index_select(
                1, torch.as_tensor(np.asarray(index), dtype=torch.long, device=self.device)
            )
        return out

    def support(self, hall) -> torch.Tensor:
        """Sorted box indices where the encoding of some setting in ``hall`` can be non-zero (a compact
        shared index: the union of the settings' non-extinct frequencies)."""
        used = np.unique(
            np.concatenate(
                [
                    np.asarray(self.db.get(hall=int(v), kmax=self.kmax).box_indices)
                    for v in np.unique(_halls(hall))
                ]
                or [np.zeros(0, np.int64)]
            )
        )
        return torch.as_tensor(used, dtype=torch.long, device=self.device)


def _check_batch(batch: torch.Tensor, n_atoms: int, per_crystal: tuple, name: str) -> None:
    """ValueError unless ``batch`` has shape (n_atoms,) and fits ``per_crystal`` (``check_per_crystal``)."""
    if tuple(batch.shape) != (n_atoms,):
        raise ValueError(
            f"batch must have shape ({n_atoms},) (the crystal of each atom), got {tuple(batch.shape)}"
        )
    lo, hi = (int(batch.min()), int(batch.max())) if n_atoms else (None, None)
    check_per_crystal(n_atoms, lo, hi, per_crystal, name)


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
    crystal in ``results``), orbit (N,) long, and crystal_hall (B,) long (each crystal's hall number:
    the per-crystal form that ``InvariantEncoder(..., batch=b["crystal"])`` takes).
    """
    results = list(results)
    dtype = _dtype(dtype)
    to = dict(device=device)
    cat = lambda arrs, dt: torch.as_tensor(np.concatenate(arrs) if arrs else np.zeros(0), dtype=dt, **to)  # noqa: E731
    return {
        "positions": torch.as_tensor(
            np.concatenate([r.positions for r in results]) if results else np.zeros((0, 3)), dtype=dtype, **to
        ),
        "hall": cat([np.full(r.n_atoms, r.hall_number) for r in results], torch.long),
        "numbers": cat([r.numbers for r in results], torch.long),
        "crystal": cat([np.full(r.n_atoms, i) for i, r in enumerate(results)], torch.long),
        "orbit": cat([r.orbit for r in results], torch.long),
        "crystal_hall": torch.as_tensor([int(r.hall_number) for r in results], dtype=torch.long, **to),
    }


# ------------------------------------------------------------------ the encoder layer
def _plan_for(db, kmax, hall_numbers, packing: str) -> BatchPlan:
    """The stacked plan (basisdb._routing.batch_plan) of ``hall_numbers`` (default: every setting of ``db``)."""
    if db is None:
        from ._database import default_database

        db = default_database()
    kmax = db._check_kmax(kmax)
    halls = (
        [s.hall_number for s in db.settings()]
        if hall_numbers is None
        else [int(h) for h in np.unique(np.asarray(hall_numbers, dtype=np.int64))]
    )
    return batch_plan([db.get(hall=h, kmax=kmax) for h in halls], packing)


def _box_waves(x: torch.Tensor, kmax: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of 2 pi k.x for every box frequency (box-index order): two (M, n_box) tensors of ``dtype``.

    Per-axis tables and the (h, k) products in float64, then cast; the l factor in ``dtype``.
    """
    cos, sin = _axis_tables(x, kmax)  # (n, 3, M) float64, row h + K
    n = 2 * kmax + 1
    c1, s1, c2, s2 = cos[:, 0, None], sin[:, 0, None], cos[None, :, 1], sin[None, :, 1]
    re12 = (c1 * c2 - s1 * s2).to(dtype).reshape(n * n, 1, -1)  # (n*n, 1, M)
    im12 = (c1 * s2 + s1 * c2).to(dtype).reshape(n * n, 1, -1)
    c3, s3 = cos[None, :, 2].to(dtype), sin[None, :, 2].to(dtype)  # (1, n, M)
    re = (re12 * c3 - im12 * s3).reshape(n**3, -1).T
    im = (re12 * s3 + im12 * c3).reshape(n**3, -1).T
    return re, im


def _plan_encode(
    t: dict, x: torch.Tensor, row: torch.Tensor, kmax: int, n_cols: int, n_out: int, dtype: torch.dtype
) -> torch.Tensor:
    """Evaluate the stacked plan (buffers ``t``, see ``BatchPlan``) at x (G, A, 3): A atoms that share
    plan row ``row[g]`` (G,) (a padded crystal: A = N; ragged atoms: A = 1).  Returns (G, A, n_out).

    Three steps, as in ``basisdb._routing.evaluate_batch_plan``: plane waves of the box,
    per-term values scattered into phi (Re/Im of each orbit function), phi gathered into
    the encoding.  Shapes are fixed by (G, A, plan): no loop over settings, compile-friendly.
    The tables are gathered once per group and broadcast over its atoms.
    """
    G, A = x.shape[0], x.shape[1]
    if G * A == 0:  # an empty batch (no crystals, or crystals of no atoms): an empty encoding
        return torch.zeros(G, A, n_out, dtype=dtype, device=x.device)

    def rows(name: str) -> torch.Tensor:
        v = t[name].index_select(0, row)  # (G, T) or (G, S)
        if name in _FLOAT_ARRAYS:
            return v.view(torch.float64).to(dtype)[:, None, :]
        return v.long()[:, None, :].expand(G, A, v.shape[-1])

    cos, sin = _box_waves(x.reshape(G * A, 3), kmax, dtype)
    cos, sin = cos.reshape(G, A, -1), sin.reshape(G, A, -1)
    box = rows("term_box")
    vals = rows("term_alpha") * cos.gather(2, box) + rows("term_beta") * sin.gather(2, box)
    phi = torch.zeros(G, A, n_cols, dtype=dtype, device=x.device).scatter_add(2, rows("term_col"), vals)
    col = rows("enc_col")
    enc = rows("enc_a") * phi.gather(2, col) + rows("enc_b") * phi.gather(2, col + 1)
    return torch.zeros(G, A, n_out, dtype=dtype, device=x.device).scatter_add(2, rows("enc_slot"), enc)


def _unknown_nan_masked_zero(out: torch.Tensor, rows: torch.Tensor, per_row: int, mask) -> torch.Tensor:
    """The last step of the encoding: ``out`` (G * per_row, n) with NaN where the plan row is -1 (a hall
    number the layer does not hold: reachable unmasked only under torch.compile), then zero where ``mask``
    is False.  Both by ``where`` after every other step, so a masked row is zero with zero gradients even
    when it is NaN or its crystal carries any hall number."""
    out = torch.where((rows >= 0).repeat_interleave(per_row)[:, None], out, torch.nan)
    if mask is None:
        return out
    return torch.where(torch.as_tensor(mask, device=out.device).to(torch.bool).reshape(-1, 1), out, 0.0)


def _checking() -> bool:
    """Data-dependent input checks run in eager mode only (not while torch.compile traces)."""
    try:
        return not torch.compiler.is_compiling()
    except AttributeError:  # pragma: no cover - old torch
        return True


_FLOAT_ARRAYS = ("term_alpha", "term_beta", "enc_a", "enc_b")


class InvariantEncoding(torch.nn.Module):
    """The group-conditional invariant encoding of atoms of mixed settings, without weights.

    Holds the stacked plan (``basisdb._routing.batch_plan``: the same term and encoding
    tables that ``Basis.evaluate`` and ``shared_encoding`` use) of ``hall_numbers`` as
    non-persistent buffers: ``.to(device/dtype)`` moves them, ``state_dict()`` omits them.

    Args:
        kmax: box cut-off K (1..the artifact's K); n_box = (2K + 1)**3.
        db: a ``Database`` (default: ``basisdb.open()``); used only during construction.
        hall_numbers: settings to support (default: all 530).
        packing: "complex" (default): [Re v, Im v], 2 n_box columns, v = P_G^T e(x) = conj(B) phi(x)
            (``shared_encoding(real=False)``, the reference model's input); "real": the n_box real
            packing of ``shared_encoding(real=True)`` (same information, half the width).
        dtype: float32/float64 of the tables and the result (default torch's default dtype).
        device: where the tables live.

    Attributes: kmax, n_box, n_out (width of the encoding), packing, hall_numbers (tuple).
    """

    # non-persistent buffers, registered in __init__ (with those named in BatchPlan.ARRAYS)
    row_of_hall: torch.Tensor
    slot_box: torch.Tensor
    box_frequencies: torch.Tensor
    point_groups: torch.Tensor
    point_group_order: torch.Tensor
    _anchor: torch.Tensor

    def __init__(
        self, kmax: int = 3, *, db=None, hall_numbers=None, packing: str = "complex", dtype=None, device=None
    ):
        super().__init__()
        plan = _plan_for(db, kmax, hall_numbers, packing)
        self.kmax, self.n_box, self.n_out, self.n_cols, self.packing = (
            plan.kmax,
            plan.n_box,
            plan.n_out,
            plan.n_cols,
            plan.packing,
        )
        self.hall_numbers = tuple(int(h) for h in plan.hall_numbers)
        to = dict(device=device)
        # The float64 coefficients are stored bit-cast as int64, so that ``.to(dtype)`` never rounds
        # them (float32 -> float64 keeps full precision); ``_tables`` casts them to ``self.dtype``.
        # Index tables are stored as int32 (half the memory) and widened after the per-batch row gather.
        for name in BatchPlan.ARRAYS:
            a = np.array(getattr(plan, name))
            t = (
                torch.as_tensor(a.view(np.int64))
                if a.dtype.kind == "f"
                else torch.as_tensor(a.astype(np.int32))
            )
            self.register_buffer(name, t.to(device) if device is not None else t, persistent=False)
        self.register_buffer(
            "row_of_hall", torch.as_tensor(np.array(plan.row_of_hall), **to), persistent=False
        )
        self.register_buffer("slot_box", torch.as_tensor(np.array(plan.slot_box), **to), persistent=False)
        self.register_buffer(
            "box_frequencies", torch.as_tensor(box_frequencies(plan.kmax), **to), persistent=False
        )
        # each setting's point group (int8: entries -1..1, not cast by ``.to(dtype)``), for the metric weights
        self.register_buffer(
            "point_groups", torch.as_tensor(plan.point_groups.astype(np.int8), **to), persistent=False
        )
        self.register_buffer(
            "point_group_order", torch.as_tensor(plan.point_group_order, **to), persistent=False
        )
        # an empty tensor whose dtype follows ``.to(dtype)``: the module's compute dtype
        self.register_buffer("_anchor", torch.zeros(0, dtype=_dtype(dtype), **to), persistent=False)

    def extra_repr(self) -> str:
        return f"kmax={self.kmax}, n_out={self.n_out}, packing={self.packing!r}, settings={len(self.hall_numbers)}"

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the encoding (float32/float64; follows ``.to(dtype)``)."""
        return self._anchor.dtype

    def _rows(self, hall: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """The plan row of each hall number, -1 for one this encoder does not hold.  In eager mode a
        ValueError names the unsupported ones among the ``active`` entries (default all): a masked padding
        crystal may carry any hall number.  Rows of -1 come out NaN (``_unknown_nan_masked_zero``), never
        another setting's encoding (under torch.compile, where nothing can raise)."""
        hall = torch.as_tensor(hall, device=self.row_of_hall.device)
        if _checking() and (
            hall.dtype.is_floating_point or hall.dtype == torch.bool or hall.dtype.is_complex
        ):
            raise ValueError(f"hall_number must be an integer tensor, got {hall.dtype}")
        hall = hall.long()
        n = self.row_of_hall.shape[0]
        inside = (hall >= 0) & (hall < n)
        rows = torch.where(inside, self.row_of_hall[hall.clamp(0, n - 1)], -1)
        if _checking():
            bad = rows < 0
            if active is not None and active.shape == bad.shape:
                bad = bad & active
            if bad.any():
                raise ValueError(
                    f"hall numbers not supported by this encoder: {sorted(set(hall[bad].tolist()))}"
                )
        return rows

    def _layout(self, positions, hall_number, mask, batch):
        """(x (G, A, 3), plan row of each group (G,), crystal of each atom (G*A,) or None, padded shape (B, N)
        or None, plan row of each lattice: (B,) per crystal (padded, or ragged with batch), else (M,)).

        Padded input: groups are crystals (G = B, A = N); ragged: single atoms (G = M, A = 1)."""
        x = torch.as_tensor(positions, device=self.row_of_hall.device)
        if not x.dtype.is_floating_point:
            x = x.to(self.dtype)
        m = None if mask is None else torch.as_tensor(mask, device=x.device).to(torch.bool)
        if x.ndim == 3 and x.shape[-1] == 3:
            B, N = x.shape[0], x.shape[1]
            if batch is not None:
                raise ValueError("batch= is for ragged input (positions (M, 3)); padded input uses mask=")
            if m is not None:
                if tuple(m.shape) != (B, N):
                    raise ValueError(f"mask must have shape {(B, N)}, got {tuple(m.shape)}")
                x = torch.where(m[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
            rows = self._rows(hall_number, None if m is None else m.any(dim=1))
            if tuple(rows.shape) != (B,):
                raise ValueError(f"padded input needs hall_number of shape ({B},), got {tuple(rows.shape)}")
            crystal = torch.arange(B, device=x.device).repeat_interleave(N)
            return x, rows, crystal, (B, N), rows
        if x.ndim != 2 or x.shape[-1] != 3:
            raise ValueError(f"positions must have shape (B, N, 3) or (M, 3), got {tuple(x.shape)}")
        if m is not None and tuple(m.shape) != (x.shape[0],):
            raise ValueError(f"mask must have shape ({x.shape[0]},), got {tuple(m.shape)}")
        if batch is not None:
            batch = torch.as_tensor(batch, device=x.device).long()
            n_hall = tuple(torch.as_tensor(hall_number).shape)
            active = None
            if _checking():
                _check_batch(batch, x.shape[0], n_hall, "hall_number")
                if m is not None:
                    active = torch.zeros(n_hall[0], dtype=torch.bool, device=x.device)
                    active[batch[m]] = True
            rows = self._rows(hall_number, active)
            return x[:, None, :], rows.index_select(0, batch), batch, None, rows
        rows = self._rows(hall_number, m)
        if tuple(rows.shape) != (x.shape[0],):
            raise ValueError(
                f"ragged input without batch= needs one hall number per atom ({x.shape[0]},), got {tuple(rows.shape)}"
            )
        return x[:, None, :], rows, None, None, rows

    def forward(self, positions, hall_number, mask=None, batch=None) -> torch.Tensor:
        """The encoding (..., n_out) of ``self.dtype``; see ``InvariantEncoder.forward`` for the input layouts."""
        x, rows, _, padded, _ = self._layout(positions, hall_number, mask, batch)
        out = _unknown_nan_masked_zero(
            self._evaluate(x, rows).reshape(-1, self.n_out), rows, x.shape[1], mask
        )
        return out.reshape(*padded, self.n_out) if padded is not None else out

    def _evaluate(self, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(G, A, 3) points, (G,) plan rows -> (G, A, n_out) encoding in ``self.dtype``.  A row of -1 (a hall
        number not held) is evaluated as row 0: the callers make it NaN after every other step (so that a
        masked padding crystal's zero rows have zero, not NaN, gradients)."""
        tables = {name: getattr(self, name) for name in BatchPlan.ARRAYS}
        return _plan_encode(tables, x, rows.clamp_min(0), self.kmax, self.n_cols, self.n_out, self.dtype)

    def frequency_lengths(self, lattice: torch.Tensor, hall_number=None) -> torch.Tensor:
        """``|k| = sqrt(k^T G* k) = |L^-1 k|`` in 1/Angstrom of every box frequency: (..., n_box).

        lattice: (..., 3, 3), rows = lattice vectors in Angstrom (G* = (L L^T)^-1, no 2 pi).
        hall_number: None, or (...) the setting of each lattice: then G = L L^T is first made exactly
        invariant under the setting's point group, ``G_sym = (1/|P|) sum_R R^T G R``
        (``basisdb._routing.symmetrized_metric``, the metric of ``ideal_lattice``), and G* = G_sym^-1.  A
        DFT-relaxed or measured cell is symmetric only within a tolerance, and featurize may present a
        crystal in any of its equivalent canonical cells (e.g. (a, b, c) -> (-a, b, -c) in C 2/m): with the
        symmetrised metric the lengths, and so the metric weights, are the same for all of them.
        """
        rows = None if hall_number is None else self._rows(hall_number)
        return self._frequency_lengths(lattice, rows)

    def _frequency_lengths(self, lattice: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """``frequency_lengths`` with the plan rows of the settings (None: the metric as given)."""
        L = lattice.to(self.dtype)
        k = self.box_frequencies.to(self.dtype)
        if rows is None:
            q = torch.linalg.solve(L.unsqueeze(-3), k.unsqueeze(-1)).squeeze(-1)  # (..., n_box, 3)
            return torch.linalg.vector_norm(q, dim=-1)
        rows = rows.clamp_min(0)  # a row of -1 (a hall number not held) is NaN in the encoding anyway
        R = self.point_groups[rows].to(self.dtype)  # (..., 48, 3, 3), zero-padded
        G = L @ L.transpose(-1, -2)
        gs = (R.transpose(-1, -2) @ G.unsqueeze(-3) @ R).sum(-3)
        gs = gs / self.point_group_order[rows].to(self.dtype)[..., None, None]
        # |k|^2 = k^T G_sym^-1 k = |C^-1 k|^2 with G_sym = C C^T (a norm, so k = 0 has a finite gradient)
        C = torch.linalg.cholesky(gs)
        q = torch.linalg.solve_triangular(C, k.T.expand(*C.shape[:-2], 3, k.shape[0]), upper=False)
        return torch.linalg.vector_norm(q, dim=-2)


class InvariantEncoder(torch.nn.Module):
    """Group-conditional invariant encoding + one shared linear map, for batches of crystals of mixed groups.

    Every atom at fractional coordinates x (in its crystal's setting, e.g.
    ``Featurized.positions``; canonical coordinates make the output presentation-independent)
    is encoded as v = P_G^T e(x) = conj(B_G) phi_G(x) in the box index space that all
    settings share (``encode``), optionally weighted per frequency by a learnable function of
    the wave vector's length, and mapped by one ``Linear(n_out, out_features)`` that serves
    every group.  The output is exactly invariant under the operations of each atom's group
    (x -> R x + t), up to rounding.

    Args:
        out_features: width of the per-atom embedding.
        kmax: box cut-off K (default 3); n_box = (2K + 1)**3, the encoding has n_out = 2 n_box
            columns with packing "complex" (686 at K = 3).
        db: a ``Database`` (default ``basisdb.open()``), read only during construction.
        hall_numbers: settings to support (default all 530). Construction builds the stacked
            tables of all of them once (all 530: ~0.2 s and 18 MB at K = 3; ~1 s and 112 MB at K = 6);
            the first use of a database also reads its 530 settings (~2-4 s on 2 cores).
        frequency_weighting: None, or "metric": multiply the encoding's column for frequency k by
            ``w(|k|) = 1 + sum_r theta_r exp(-((|k| - mu_r) / sigma)**2 / 2)``, ``|k| = sqrt(k^T G* k)`` in
            1/Angstrom from the crystal's lattice (G* the reciprocal metric, no 2 pi, of the metric
            averaged over the setting's point group: exactly invariant for a cell that is symmetric only
            within a tolerance, whichever equivalent canonical cell featurize picked), n_radial
            Gaussians with centres mu_r evenly spaced on [0, radial_max] and sigma their spacing;
            theta (``radial``) starts at 0, so w starts at 1.  Needs ``lattice`` in forward.
        n_radial: number of radial Gaussians (for "metric").
        radial_max: last centre in 1/Angstrom (default 0.75 * kmax).
        bias: bias of the linear map.
        packing: "complex" (default) or "real" (see ``InvariantEncoding``).
        dtype, device: of the tables and the weights (default torch's default dtype, CPU).

    Trainable parameters: ``linear.weight`` (out_features, n_out), ``linear.bias``
    (out_features,), ``radial`` (n_radial,) with "metric"; the group tables are
    non-persistent buffers (not in ``state_dict()``).
    """

    def __init__(
        self,
        out_features: int,
        *,
        kmax: int = 3,
        db=None,
        hall_numbers=None,
        frequency_weighting: str | None = None,
        n_radial: int = 8,
        radial_max: float | None = None,
        bias: bool = True,
        packing: str = "complex",
        dtype=None,
        device=None,
    ):
        super().__init__()
        if frequency_weighting not in (None, "metric"):
            raise ValueError(f'frequency_weighting must be None or "metric", got {frequency_weighting!r}')
        dtype = _dtype(dtype)
        self.encoding = InvariantEncoding(
            kmax, db=db, hall_numbers=hall_numbers, packing=packing, dtype=dtype, device=device
        )
        self.kmax, self.n_box, self.n_out = self.encoding.kmax, self.encoding.n_box, self.encoding.n_out
        self.out_features = int(out_features)
        self.frequency_weighting = frequency_weighting
        if frequency_weighting == "metric":
            if n_radial < 2:
                raise ValueError(f"n_radial must be >= 2, got {n_radial}")
            radial_max = 0.75 * self.kmax if radial_max is None else float(radial_max)
            self.radial = torch.nn.Parameter(torch.zeros(int(n_radial), dtype=dtype, device=device))
            self.radial_max = radial_max
        else:
            self.register_parameter("radial", None)
        self.linear = torch.nn.Linear(self.n_out, self.out_features, bias=bias, dtype=dtype, device=device)

    @property
    def hall_numbers(self) -> tuple[int, ...]:
        return self.encoding.hall_numbers

    def radial_weights(self, lattice: torch.Tensor, hall_number=None) -> torch.Tensor:
        """``w(|k|)`` of every encoding column for each lattice: (..., n_out).

        lattice: (..., 3, 3) rows in Angstrom; hall_number: (...) the setting of each lattice, whose point
        group symmetrises the metric first (``InvariantEncoding.frequency_lengths``; what ``encode`` and
        ``forward`` do), or None: the metric as given.
        """
        rows = None if hall_number is None else self.encoding._rows(hall_number)
        return self._radial_weights(lattice, rows)

    def _radial_weights(self, lattice: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        n = self.radial.shape[0]
        centres = torch.linspace(0.0, self.radial_max, n, dtype=self.radial.dtype, device=self.radial.device)
        q = self.encoding._frequency_lengths(lattice, rows).to(self.radial.dtype)  # (..., n_box)
        rbf = torch.exp(
            -0.5 * ((q[..., None] - centres) / (self.radial_max / (n - 1))) ** 2
        )  # (..., n_box, n_radial)
        w = 1.0 + rbf @ self.radial
        return w.index_select(-1, self.encoding.slot_box)

    def encode(self, positions, hall_number, lattice=None, mask=None, batch=None) -> torch.Tensor:
        """The invariant encoding before the linear map (times the metric weights if enabled).

        Same inputs as ``forward``; returns (B, N, n_out) (padded) or (M, n_out) (ragged) of
        the module's dtype: columns 0..n_box-1 Re v, n_box..2 n_box-1 Im v, v = P_G^T e(x), in
        box-index order (``basisdb.box_frequencies(kmax)``).  Masked rows are zero.
        """
        enc = self.encoding
        x, rows, crystal, padded, lattice_rows = enc._layout(positions, hall_number, mask, batch)
        out = enc._evaluate(x, rows).reshape(-1, enc.n_out)
        if self.frequency_weighting == "metric":
            if lattice is None:
                raise ValueError('frequency_weighting="metric" needs the lattice')
            lattice = torch.as_tensor(lattice, device=out.device)
            if padded is None and crystal is not None and _checking():  # ragged with batch=: per crystal
                _check_batch(crystal, crystal.shape[0], tuple(lattice.shape), "lattice")
            if lattice.shape[-2:] != (3, 3) or lattice.shape[:-2] != lattice_rows.shape:
                per = "atom (ragged input without batch=)" if crystal is None else "crystal"
                raise ValueError(
                    f"lattice must have shape {(*lattice_rows.shape, 3, 3)} (one per {per}), got {tuple(lattice.shape)}"
                )
            w = self._radial_weights(lattice, lattice_rows)
            if crystal is not None:
                w = w.index_select(0, crystal)
            out = out * w
        out = _unknown_nan_masked_zero(out, rows, x.shape[1], mask)
        return out.reshape(*padded, enc.n_out) if padded is not None else out

    def forward(self, positions, hall_number, lattice=None, mask=None, batch=None) -> torch.Tensor:
        """Per-atom embeddings of a batch of crystals of mixed groups.

        Padded: positions (B, N, 3) fractional coordinates (float32/float64) in each crystal's
        setting; hall_number (B,) long; lattice (B, 3, 3) rows = lattice vectors in Angstrom
        (needed only with "metric"); mask (B, N) bool, True = real atom (padding rows may hold
        anything, also NaN) -> (B, N, out_features), masked rows zero.
        Ragged: positions (M, 3); hall_number (M,) per atom, or (B,) per crystal with batch (M,)
        long = each atom's crystal; lattice (B, 3, 3) with batch, else (M, 3, 3); optional mask (M,)
        -> (M, out_features).
        """
        enc = self.encode(positions, hall_number, lattice=lattice, mask=mask, batch=batch)
        out = self.linear(enc)
        if mask is not None:
            out = torch.where(torch.as_tensor(mask, device=out.device).to(torch.bool)[..., None], out, 0.0)
        return out


_ENCODINGS: dict = {}
_ENCODINGS_LOCK = threading.Lock()


def invariant_encoding(
    positions, hall_number, *, kmax: int = 3, db=None, mask=None, batch=None, packing: str = "complex"
) -> torch.Tensor:
    """Functional form of ``InvariantEncoding`` (no weights): the encoding of padded or ragged atoms.

    The tables of all settings of ``db`` (default ``basisdb.open()``) are built on first use per
    (db, kmax, packing, dtype, device) and cached; dtype and device follow ``positions``
    (float32/float64).  Inputs and result as in ``InvariantEncoder.encode``.
    """
    x = torch.as_tensor(positions)
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.get_default_dtype()
    key = (id(db), kmax, packing, dtype, x.device)
    with _ENCODINGS_LOCK:
        mod = _ENCODINGS.get(key)
        if mod is None:
            mod = _ENCODINGS[key] = InvariantEncoding(
                kmax, db=db, packing=packing, dtype=dtype, device=x.device
            )
    return mod(x, hall_number, mask=mask, batch=batch)


# ---------------------------------------------------------------- vector fields
@dataclass(frozen=True, eq=False)
class TorchVectorBasis:
    """A ``VectorBasis`` (``Basis.vector(kind)``) with differentiable torch evaluation.

    ``evaluate(x)`` -> (N, n_basis, 3) contravariant components (along a, b, c), or Cartesian
    ones with ``lattice`` (rows a, b, c); ``real=False`` gives the complex basis.  The kernel is
    the scalar one (``_routing.TermTable``, one output column per field component).
    """

    kind: str
    hall_number: int
    kmax: int
    n_basis: int
    dtype: torch.dtype
    device: torch.device
    _vector: VectorBasis
    _kernels: dict

    def __repr__(self) -> str:
        return (
            f"TorchVectorBasis(kind={self.kind!r}, hall_number={self.hall_number}, kmax={self.kmax}, "
            f"n_basis={self.n_basis}, dtype={self.dtype}, device={self.device})"
        )

    def _kernel(self, real: bool) -> _Kernel:
        k = self._kernels.get(real)
        if k is None:
            k = self._kernels[real] = _Kernel(self._vector.term_table(real=real), self.dtype, self.device)
        return k

    def evaluate(self, x, real: bool = True, lattice=None) -> torch.Tensor:
        pts = _as_points(x, self.dtype, self.device)
        out = _run(self._kernel(bool(real)), pts)
        if real:
            out = out.reshape(pts.shape[0], self.n_basis, 3)
        else:
            out = torch.complex(out[:, 0::2], out[:, 1::2]).reshape(pts.shape[0], self.n_basis, 3)
        if lattice is not None:
            lat = (
                lattice
                if isinstance(lattice, torch.Tensor)
                else torch.as_tensor(np.asarray(lattice, dtype=np.float64))
            )
            out = out @ lat.to(device=out.device, dtype=out.dtype)
        return out


def vector_to_torch(vector, dtype=None, device=None) -> TorchVectorBasis:
    """Torch evaluation of a ``VectorBasis`` (``dtype`` float32/float64, default torch's default dtype)."""
    dtype = _dtype(dtype)
    device = torch.device(device) if device is not None else torch.device("cpu")
    return TorchVectorBasis(
        kind=vector.kind,
        hall_number=vector.basis.setting.hall_number,
        kmax=vector.basis.kmax,
        n_basis=vector.n_basis,
        dtype=dtype,
        device=device,
        _vector=vector,
        _kernels={},
    )


from ._torch_vector import BatchedVectorBasis  # noqa: E402  (mixed-setting vector features; needs the names above)
