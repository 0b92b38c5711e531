"""Batched torch evaluation of equivariant vector bases for atoms of crystals in different settings.

``basisdb.torch.BatchedVectorBasis`` (re-exported there): the vector analogue of
``BatchedBasis``.  One call evaluates, for N atoms each with its own hall number, the real
polar or axial basis of that atom's setting, zero-padded to a common width:

    values (N, width, 3), mask (N, width)

in contravariant components (along the setting's a, b, c), or Cartesian ones given one lattice
per atom (rows a, b, c; axial fields carry sign(det L), as ``Featurized.vector_features``).
The per-setting kernels are ``TorchVectorBasis``'s (the scalar term kernels with one output
column per field component), built on first use and kept on the device; differentiable in
the points and the lattices.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from ._vector import KINDS

__all__ = ["BatchedVectorBasis"]


class BatchedVectorBasis:
    """Real equivariant vector features for a batch of atoms from crystals of different settings.

    kind: 'polar' or 'axial'.  db: a Database (default ``basisdb.open()``'s shared one, as
    ``BatchedBasis``); kmax: cut-off (default the database's); dtype: float32 / float64.
    """

    def __init__(self, kind: str = "polar", db=None, kmax: int | None = None, dtype=None, device=None):
        from .torch import BatchedBasis

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        scalar = BatchedBasis(db=db, kmax=kmax, dtype=dtype, device=device)  # same defaults and checks
        self.kind = kind
        self.db, self.kmax, self.dtype, self.device = scalar.db, scalar.kmax, scalar.dtype, scalar.device
        self._bases: dict = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"BatchedVectorBasis(kind={self.kind!r}, kmax={self.kmax}, dtype={self.dtype}, "
            f"device={self.device}, settings_loaded={len(self._bases)})"
        )

    def basis(self, hall: int):
        """The ``TorchVectorBasis`` of one setting (cached)."""
        from .torch import vector_to_torch

        hall = int(hall)
        with self._lock:
            tb = self._bases.get(hall)
            if tb is None:
                v = self.db.get(hall=hall, kmax=self.kmax).vector(self.kind)
                tb = self._bases[hall] = vector_to_torch(v, self.dtype, self.device)
        return tb

    def n_basis(self, halls) -> int:
        """Largest number of vector functions among the settings in ``halls``."""
        from .torch import _halls

        return max((self.basis(h).n_basis for h in np.unique(_halls(halls))), default=0)

    def features(self, x, hall, lattice=None, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vector features of every atom, zero-padded: (N, width, 3) values and (N, width) bool mask.

        x: (N, 3) canonical coordinates (``Featurized.positions``); hall: (N,) hall number of each
        atom's setting; lattice: None (contravariant components along a, b, c) or (N, 3, 3) rows
        a, b, c of each atom's cell in Cartesian coordinates (Cartesian components, L^T f, times
        sign(det L) for axial fields).  width defaults to the largest n_basis in the batch.
        Columns [0, n_basis of the atom's setting) are the columns of ``VectorBasis.evaluate``.
        """
        from .torch import _as_points, _halls, _run

        pts = _as_points(x, self.dtype, self.device)
        h = _halls(hall)
        if len(h) != pts.shape[0]:
            raise ValueError(f"{pts.shape[0]} points but {len(h)} hall numbers")
        width = self.n_basis(h) if width is None else int(width)
        n = len(h)
        out = torch.zeros(n, width, 3, dtype=self.dtype, device=self.device)
        mask = torch.zeros(n, width, dtype=torch.bool, device=self.device)
        for value in np.unique(h):
            tb = self.basis(int(value))
            if tb.n_basis > width:
                raise ValueError(f"width={width} is smaller than n_basis={tb.n_basis} of hall {int(value)}")
            idx = torch.as_tensor(np.flatnonzero(h == value), dtype=torch.long, device=pts.device)
            f = _run(tb._kernel(True), pts.index_select(0, idx)).reshape(len(idx), tb.n_basis, 3)
            out[idx, : tb.n_basis] = f
            mask[idx, : tb.n_basis] = True
        if lattice is not None:
            lat = (
                lattice
                if isinstance(lattice, torch.Tensor)
                else torch.as_tensor(np.asarray(lattice, dtype=np.float64))
            )
            lat = lat.to(device=self.device, dtype=self.dtype)
            if lat.shape != (n, 3, 3):
                raise ValueError(f"lattice must have shape (N, 3, 3) = ({n}, 3, 3), got {tuple(lat.shape)}")
            out = torch.einsum("nbj,njk->nbk", out, lat)
            if self.kind == "axial":
                out = (
                    out
                    * torch.sign(torch.linalg.det(lat.detach().to(torch.float64))).to(out.dtype)[
                        :, None, None
                    ]
                )
        return out, mask

    def featurized(
        self, results, width: int | None = None, idealize: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``Featurized.vector_features(kind)`` of every atom of several crystals, in one batch.

        results: a sequence of ``Featurized`` (any settings, the same kmax as this object).
        Returns (values (sum n_atoms, width, 3), mask): the atoms crystal after crystal, Cartesian
        in each input's frame; equal to the numpy ``vector_features`` up to the dtype.
        """
        from ._vector_structures import ideal_lattice

        results = list(results)
        for r in results:
            if r.basis.kmax != self.kmax:
                raise ValueError(
                    f"a result has kmax={r.basis.kmax}, this BatchedVectorBasis has kmax={self.kmax}"
                )
        if not results:
            return (
                torch.zeros(0, width or 0, 3, dtype=self.dtype, device=self.device),
                torch.zeros(0, width or 0, dtype=torch.bool, device=self.device),
            )
        x = np.concatenate([r.positions for r in results])
        hall = np.concatenate([np.full(r.n_atoms, r.hall_number, dtype=np.int64) for r in results])
        lats = [
            ideal_lattice(r.lattice, r.basis.rotations)
            if idealize
            else np.asarray(r.lattice, dtype=np.float64)
            for r in results
        ]
        lat = np.concatenate([np.broadcast_to(L, (r.n_atoms, 3, 3)) for L, r in zip(lats, results)])
        return self.features(x, hall, lattice=lat, width=width)
