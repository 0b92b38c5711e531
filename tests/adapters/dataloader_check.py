"""Run as a script by tests/adapters/test_torch.py: featurise perovskites inside torch DataLoader workers.

A fresh interpreter keeps the fork clean (no JAX threads from other tests).  The parent
opens the database and featurises once before the workers fork, so the workers must reopen
the HDF5 file (Database does this after fork).  Prints one JSON line: per-item features
from 0 and from 2 worker processes.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: crystals.py
import crystals

import basisdb


class Perovskites(torch.utils.data.Dataset):
    def __init__(self, n):
        self.rows = crystals.dataset_rows("perov_5")[:n]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        r = basisdb.featurize(self.rows[i]["cif"], kmax=4, symprec=0.1)
        return {
            "hall": r.hall_number,
            "features": torch.as_tensor(np.array(r.features)),
            "pid": __import__("os").getpid(),
        }


def run(workers: int):
    loader = torch.utils.data.DataLoader(
        Perovskites(24),
        batch_size=4,
        num_workers=workers,
        collate_fn=lambda items: items,
        multiprocessing_context="fork" if workers else None,
    )
    out, pids = [], set()
    for batch in loader:
        for item in batch:
            out.append((item["hall"], item["features"].numpy().tolist()))
            pids.add(item["pid"])
    return out, pids


if __name__ == "__main__":
    basisdb.featurize(crystals.literature("NaCl"), kmax=4)  # the parent opens the file before forking
    single, p0 = run(0)
    multi, p2 = run(2)
    print(
        json.dumps(
            {
                "same": single == multi,
                "n": len(single),
                "worker_pids": len(p2 - p0),
                "halls": sorted({h for h, _ in single}),
            }
        )
    )
