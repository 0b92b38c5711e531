"""Cost of the encoder layer (basisdb.torch.InvariantEncoder): construction, tables, forward/backward.

    python bench/bench_encoder.py [--kmax 3 6] [--threads 1] [--device cpu|cuda] [--json out.json]

For all 530 settings: time to read the settings from the artifact (first use of a
database), time and bytes of the stacked tables, and the median forward / backward time
of a padded batch of B crystals of N atoms of random settings (positions without and
with requires_grad).  Not a test: numbers vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch

import basisdb
from basisdb.torch import InvariantEncoder


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kmax", type=int, nargs="+", default=[3, 6])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--atoms", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # noqa: E731 (MB, Linux)
    db = basisdb.open()
    report = {"device": a.device, "threads": a.threads, "batch": a.batch, "atoms": a.atoms, "runs": []}
    for K in a.kmax:
        t0 = time.perf_counter()
        for h in range(1, 531):
            db.get(hall=h, kmax=K)
        t1 = time.perf_counter()
        layer = InvariantEncoder(64, kmax=K, db=db, device=a.device)
        t2 = time.perf_counter()
        run = {
            "kmax": K,
            "read_settings_s": round(t1 - t0, 3),
            "tables_s": round(t2 - t1, 3),
            "table_mb": round(sum(b.numel() * b.element_size() for b in layer.buffers()) / 1e6, 1),
        }
        rng = np.random.default_rng(0)
        hall = torch.tensor(rng.integers(1, 531, a.batch), device=a.device)
        mask = torch.ones(a.batch, a.atoms, dtype=torch.bool, device=a.device)
        for grad in (False, True):
            x = torch.tensor(
                rng.random((a.batch, a.atoms, 3)), dtype=torch.float32, device=a.device, requires_grad=grad
            )
            times = []
            for _ in range(a.repeats):
                _sync(a.device)
                s = time.perf_counter()
                out = layer(x, hall, mask=mask)
                _sync(a.device)
                f = time.perf_counter()
                out.square().mean().backward()
                _sync(a.device)
                times.append((f - s, time.perf_counter() - f))
            fw, bw = np.median(times[1:] if len(times) > 1 else times, axis=0)
            run[f"forward_ms{'_xgrad' if grad else ''}"] = round(1e3 * fw, 1)
            run[f"backward_ms{'_xgrad' if grad else ''}"] = round(1e3 * bw, 1)
        run["peak_rss_mb"] = round(rss(), 0)
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
        del layer
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
