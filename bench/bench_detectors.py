"""spglib against moyopy (featurize's ``detector=``), issue 11: detection alone and featurize per backend.

    python bench/bench_detectors.py [--n 200] [--repeats 3] [--kmax 4] [--symprec 0.1,1e-5] [--json PATH]

On the first N structures of carbon_24 and perov_5 (../shared/datasets), K = --kmax, angle tolerance
5 degrees, at each --symprec (Angstrom), measures per-structure CPU milliseconds (time.process_time),
the median over the repeats:
  spglib, moyopy            detection alone on the arrays (spglib.get_symmetry_dataset, moyopy.MoyoDataset
                            with Setting.spglib())
  feat_spglib, feat_moyopy  featurize(arrays, detector=...) (detection included)
  own_spglib, own_moyopy    featurize minus its backend's detection: our own work per structure (validation,
                            canonical presentation, evaluation, packing), the issue's "at most spglib's"
Prints one line per set and tolerance; --json writes the list of figures.  Without moyopy installed,
the moyopy columns are left out with a note.  Structures on which moyopy 0.21 does not return (HANGS)
are left out of every figure.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "datasets"
HANGS = {"C-170350-1491-29"}  # moyopy 0.21 loops forever at symprec 0.1 (tests/structures/test_detectors.py)
ANGLE_DEG = 5.0


def measure(cells, fns: dict, repeats: int) -> dict:
    """Median over ``repeats`` of CPU milliseconds per structure of each fn(cell) over ``cells``."""
    out = {}
    for key, fn in fns.items():
        runs = []
        for _ in range(repeats):
            t0 = time.process_time()
            for c in cells:
                fn(c)
            runs.append((time.process_time() - t0) / len(cells) * 1e3)
        out[key] = round(statistics.median(runs), 4)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kmax", type=int, default=4)
    ap.add_argument("--symprec", default="0.1,1e-5", help="comma-separated tolerances (Angstrom)")
    ap.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if not (DATA / "carbon_24").is_dir():
        print(f"detectors: skipped ({DATA} not found)")
        return
    warnings.simplefilter("ignore")
    import spglib

    import basisdb
    from basisdb.structures import _read_structure

    try:
        from basisdb._detectors import require_moyopy

        moyopy = require_moyopy()
    except ImportError:
        moyopy = None
        print("detectors: moyopy not installed (pip install 'basisdb[moyopy]'): spglib figures only")
    db = basisdb.open()
    csv.field_size_limit(sys.maxsize)
    angle_rad = float(np.deg2rad(ANGLE_DEG))
    results = []
    for name in ("carbon_24", "perov_5"):
        with open(DATA / name / f"{name}.csv", newline="") as f:
            rows = [r for r in itertools.islice(csv.DictReader(f), args.n) if r["material_id"] not in HANGS]
        cells = []
        for r in rows:
            c = _read_structure(r["cif"])
            cells.append((c.lattice, c.positions, c.numbers))
        for symprec in [float(s) for s in args.symprec.split(",") if s.strip()]:
            fns = {
                "spglib": lambda c, s=symprec: spglib.get_symmetry_dataset(
                    c, symprec=s, angle_tolerance=ANGLE_DEG
                ),
                "feat_spglib": lambda c, s=symprec: basisdb.featurize(
                    c, kmax=args.kmax, symprec=s, angle_tolerance=ANGLE_DEG, db=db
                ),
            }
            if moyopy is not None:
                fns["moyopy"] = lambda c, s=symprec: moyopy.MoyoDataset(
                    moyopy.Cell(c[0].tolist(), c[1].tolist(), c[2].tolist()),
                    symprec=s,
                    angle_tolerance=angle_rad,
                    setting=moyopy.Setting.spglib(),
                )
                fns["feat_moyopy"] = lambda c, s=symprec: basisdb.featurize(
                    c, kmax=args.kmax, symprec=s, angle_tolerance=ANGLE_DEG, db=db, detector="moyopy"
                )
            for fn in fns.values():  # warm: bases, per-setting tables, imports
                for c in cells[:20]:
                    fn(c)
            r = dict(set=name, n=len(cells), left_out=args.n - len(cells), symprec=symprec, kmax=args.kmax)
            r.update(measure(cells, fns, args.repeats))
            r["own_spglib"] = round(r["feat_spglib"] - r["spglib"], 4)
            line = (
                f"  {name:<9} n={len(cells):<4} symprec {symprec:<6g} spglib {r['spglib']:.3f} ms, "
                f"featurize {r['feat_spglib']:.3f} ms (own work {r['own_spglib']:.3f} ms = "
                f"{r['own_spglib'] / r['spglib']:.2f}x spglib)"
            )
            if moyopy is not None:
                r["own_moyopy"] = round(r["feat_moyopy"] - r["moyopy"], 4)
                line += (
                    f" | moyopy {r['moyopy']:.3f} ms ({r['spglib'] / r['moyopy']:.1f}x faster), "
                    f"featurize {r['feat_moyopy']:.3f} ms (own work {r['own_moyopy']:.3f} ms)"
                )
            print(line, flush=True)
            results.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
