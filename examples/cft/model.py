"""A compact Crystal-Fourier-Transformer-style regressor (PyTorch).

Per atom: species embedding + an atom encoding + a lattice embedding.  The atom encoding
of the invariant model is basisdb's library layer ``basisdb.torch.InvariantEncoder``: one
linear map of the routed invariant encoding u = P_G^T e(x) in the box index space shared
by every space group (optionally with learnable radial weights of |k| through the
reciprocal metric).  The baselines use a linear map of plain plane waves
[cos 2 pi k.x, sin 2 pi k.x] instead.  Then a few pre-norm transformer blocks over the
atoms of the cell (padding masked; no atom-index positional encoding, so atom order does
not matter), masked mean pooling, and an MLP head that also sees the lattice embedding.

Model kinds (``KINDS``):
  cft              invariant layer on canonical coordinates + Niggli cell parameters
  cft_metric       the same with frequency_weighting="metric"
  cft_subgroup     cft trained with subgroup augmentation (see study.py); same network
  plain            plane waves of the coordinates as written in the CIF + that cell's parameters
  plain_aug        plain, trained on fresh random re-presentations every epoch
  plain_canonical  plane waves of basisdb's canonical coordinates + Niggli parameters
                   (the same frame as cft, without the group average: the hypothesis test)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import basisdb

MAX_Z = 119

# kind -> (encoder, positions key, cell key, cell-parameter key, frequency weighting)
KINDS = {
    "cft": ("invariant", "positions", "cell", "lattice", None),
    "cft_metric": ("invariant", "positions", "cell", "lattice", "metric"),
    "cft_subgroup": ("invariant", "positions", "cell", "lattice", None),
    "plain": ("plane", "raw_positions", "raw_cell", "lattice_raw", None),
    "plain_aug": ("plane", "raw_positions", "raw_cell", "lattice_raw", None),
    "plain_canonical": ("plane", "positions", "cell", "lattice", None),
}


class PlaneWaveEncoder(nn.Module):
    """Linear map of plain plane waves [cos 2 pi k.x, sin 2 pi k.x] over the box |k_i| <= kmax.

    Not invariant under anything but lattice translations: the baseline's encoder.
    """

    def __init__(self, out_features: int, kmax: int):
        super().__init__()
        self.register_buffer(
            "k", torch.as_tensor(basisdb.box_frequencies(kmax), dtype=torch.float32), persistent=False
        )
        self.linear = nn.Linear(2 * self.k.shape[0], out_features)

    def encode(self, positions: torch.Tensor) -> torch.Tensor:
        ang = 2 * torch.pi * positions.to(self.k.dtype) @ self.k.T
        return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)

    def forward(self, positions, hall_number=None, lattice=None, mask=None, batch=None) -> torch.Tensor:
        """positions (..., 3) fractional -> (..., out_features); the other arguments are ignored."""
        return self.linear(self.encode(positions))


class CFTRegressor(nn.Module):
    def __init__(
        self,
        kind: str,
        kmax: int,
        lat_dim: int = 7,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff: int = 128,
        dropout: float = 0.0,
        n_radial: int = 8,
    ):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown model kind {kind!r}; one of {sorted(KINDS)}")
        self.kind = kind
        encoder, _, _, _, weighting = KINDS[kind]
        self.species = nn.Embedding(MAX_Z + 1, d_model)
        if encoder == "invariant":
            from basisdb.torch import InvariantEncoder

            # shared weights over the box index space: one matrix for every space group
            self.encoder = InvariantEncoder(
                d_model, kmax=kmax, frequency_weighting=weighting, n_radial=n_radial
            )
        else:
            self.encoder = PlaneWaveEncoder(d_model, kmax)
        self.lattice = nn.Sequential(nn.Linear(lat_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        block = nn.TransformerEncoderLayer(
            d_model, heads, ff, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(
            nn.LayerNorm(2 * d_model), nn.Linear(2 * d_model, d_model), nn.SiLU(), nn.Linear(d_model, 1)
        )

    def forward(self, batch: dict) -> torch.Tensor:
        """batch: species (B, N) long, positions (B, N, 3) fractional, hall (B,) long, cell (B, 3, 3)
        rows in Angstrom, lat (B, 7) standardised cell parameters, mask (B, N) bool (True = atom) -> (B,)."""
        mask = batch["mask"]
        lat = self.lattice(batch["lat"])
        # ragged call (real atoms only, each with its crystal's index), scattered back into the padding
        crystal = torch.arange(mask.shape[0], device=mask.device)[:, None].expand(mask.shape)[mask]
        atoms = self.encoder(batch["positions"][mask], batch["hall"], lattice=batch["cell"], batch=crystal)
        h = self.species(batch["species"]) + lat[:, None, :]
        h = h.index_put((mask,), h[mask] + atoms)
        pad = ~mask
        h = self.blocks(h, src_key_padding_mask=pad)
        keep = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.head(torch.cat([pooled, lat], dim=-1)).squeeze(-1)


class DistanceMPNN(nn.Module):
    """A presentation-invariant baseline that uses no space group: SchNet-style continuous-filter
    message passing (torch_geometric's ``InteractionBlock`` and ``GaussianSmearing``) over periodic
    neighbour lists (ASE), plus the same Niggli cell-parameter embedding as the invariant model.
    Mean over atoms of a per-atom readout (targets are per atom)."""

    def __init__(
        self,
        hidden: int = 64,
        gaussians: int = 25,
        cutoff: float = 3.5,
        interactions: int = 3,
        lat_dim: int = 7,
    ):
        super().__init__()
        from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus

        self.kind = "mpnn"
        self.embedding = nn.Embedding(MAX_Z + 1, hidden)
        self.smearing = GaussianSmearing(0.0, cutoff, gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden, gaussians, hidden, cutoff) for _ in range(interactions)
        )
        self.lattice = nn.Sequential(nn.Linear(lat_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden // 2), ShiftedSoftplus(), nn.Linear(hidden // 2, 1)
        )

    def forward(self, batch: dict) -> torch.Tensor:
        """batch: species (A,) long, graph (A,) structure of each atom, edge_index (2, E), distance (E,) A,
        lat (B, 7) standardised cell parameters -> (B,)."""
        from torch_geometric.utils import scatter

        lat = self.lattice(batch["lat"])
        h = self.embedding(batch["species"]) + lat[batch["graph"]]
        attr = self.smearing(batch["distance"])
        for block in self.interactions:
            h = h + block(h, batch["edge_index"], batch["distance"], attr)
        per_atom = self.head(h).squeeze(-1)
        return scatter(per_atom, batch["graph"], dim=0, dim_size=batch["lat"].shape[0], reduce="mean")


def periodic_edges(
    cell: np.ndarray, positions: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(src, dst, distance) of every pair closer than ``cutoff`` A, periodic images included (ASE)."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    atoms = Atoms(numbers=np.ones(len(positions), int), scaled_positions=positions, cell=cell, pbc=True)
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    return i.astype(np.int64), j.astype(np.int64), d.astype(np.float32)
