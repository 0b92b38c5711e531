"""A compact Crystal-Fourier-Transformer-style regressor (PyTorch).

Per atom: species embedding + a linear map of the atom's encoding in the shared box
index space (one weight matrix for every space group: the routed invariant encoding
u = conj(B) phi(x) lives in the same (2K+1)^3 space whatever the group) + a lattice
embedding.  A few pre-norm transformer blocks over the atoms of the cell (padding
masked; no atom-index positional encoding, so atom order does not matter), masked
mean pooling, and an MLP head that also sees the lattice embedding.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

MAX_Z = 119


class CFTRegressor(nn.Module):
    def __init__(self, enc_dim: int, lat_dim: int = 7, d_model: int = 64, heads: int = 4, layers: int = 2, ff: int = 128, dropout: float = 0.0):
        super().__init__()
        self.species = nn.Embedding(MAX_Z + 1, d_model)
        self.route = nn.Linear(enc_dim, d_model)  # shared weights over the box index space
        self.lattice = nn.Sequential(nn.Linear(lat_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        block = nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True, norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(2 * d_model), nn.Linear(2 * d_model, d_model), nn.SiLU(), nn.Linear(d_model, 1))

    def forward(self, species: torch.Tensor, enc: torch.Tensor, lattice: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """species (B, N) long, enc (B, N, D), lattice (B, 7), pad (B, N) bool (True = padding) -> (B,)."""
        lat = self.lattice(lattice)
        h = self.species(species) + self.route(enc) + lat[:, None, :]
        h = self.blocks(h, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(h.dtype)
        pooled = (h * keep).sum(1) / keep.sum(1).clamp_min(1.0)
        return self.head(torch.cat([pooled, lat], dim=-1)).squeeze(-1)


def collate(records: list[dict], enc_key: str, lat_key: str, lat_mean: np.ndarray, lat_std: np.ndarray):
    """Pad a list of featurised structures into batch tensors (mixed groups and sizes)."""
    n = max(len(r["numbers"]) for r in records)
    d = records[0][enc_key].shape[1]
    species = np.zeros((len(records), n), dtype=np.int64)
    enc = np.zeros((len(records), n, d), dtype=np.float32)
    pad = np.ones((len(records), n), dtype=bool)
    for i, r in enumerate(records):
        m = len(r["numbers"])
        species[i, :m] = r["numbers"]
        enc[i, :m] = r[enc_key]
        pad[i, :m] = False
    lat = np.stack([(r[lat_key] - lat_mean) / lat_std for r in records]).astype(np.float32)
    return torch.from_numpy(species), torch.from_numpy(enc), torch.from_numpy(lat), torch.from_numpy(pad)
