"""spglib against moyopy (featurize's ``detector=``), issue 11: detection alone and featurize per backend.

    python bench/bench_detectors.py [--n 200] [--repeats 3]

On the first N structures of carbon_24 and perov_5 (../shared/datasets), K = 4, symprec 0.1, angle 5
degrees, prints one JSON line per set of per-structure CPU milliseconds (time.process_time), the median
over the repeats:
  spglib, moyopy            detection alone on the arrays (spglib.get_symmetry_dataset, moyopy.MoyoDataset)
  feat_spglib, feat_moyopy  featurize(arrays, detector=...) (detection included)
Structures on which moyopy 0.21 does not return (HANGS) are left out of every figure.
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    import moyopy
    import spglib

    import basisdb
    from basisdb._detectors import require_moyopy
    from basisdb.structures import _read_structure

    require_moyopy()
    db = basisdb.open()
    csv.field_size_limit(sys.maxsize)
    for name in ("carbon_24", "perov_5"):
        with open(DATA / name / f"{name}.csv", newline="") as f:
            rows = [r for r in itertools.islice(csv.DictReader(f), args.n) if r["material_id"] not in HANGS]
        cells = []
        for r in rows:
            c = _read_structure(r["cif"])
            cells.append((c.lattice, c.positions, c.numbers))
        angle = float(np.deg2rad(5.0))

        def t(fn):
            runs = []
            for _ in range(args.repeats):
                t0 = time.process_time()
                for c in cells:
                    fn(c)
                runs.append((time.process_time() - t0) / len(cells) * 1e3)
            return round(statistics.median(runs), 4)

        out = dict(
            set=name,
            n=len(cells),
            left_out=args.n - len(cells),
            spglib=t(lambda c: spglib.get_symmetry_dataset(c, symprec=0.1, angle_tolerance=5.0)),
            moyopy=t(
                lambda c: moyopy.MoyoDataset(
                    moyopy.Cell(c[0].tolist(), c[1].tolist(), c[2].tolist()),
                    symprec=0.1,
                    angle_tolerance=angle,
                    setting=moyopy.Setting.spglib(),
                )
            ),
            feat_spglib=t(lambda c: basisdb.featurize(c, kmax=4, db=db)),
            feat_moyopy=t(lambda c: basisdb.featurize(c, kmax=4, db=db, detector="moyopy")),
        )
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
