"""featurize's own per-structure work against spglib's detection (issue 11), stage by stage.

    python bench/bench_featurize_stages.py [--root TREE] [--n 600] [--repeats 2]

On the first N carbon_24 structures (../shared/datasets), K = 4, symprec 0.1, angle 5 degrees, prints one
JSON line of per-structure CPU milliseconds (time.process_time: less sensitive than wall time to other
jobs on a shared machine), the median over the repeats:
  spglib        spglib.get_symmetry_dataset alone on the arrays
  feat_arrays   featurize(arrays) (detection included); feat_cif: featurize(CIF text)
  validate      structures._validate; canonicalize: structures._canonicalize (given spglib's dataset)
  declared      structures._declared_fields of the CIFs; load_cif: _cif.load_cif of the CIF texts
--root runs another checkout of the package (for paired before/after runs: alternate the two trees).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(REPO))
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    sys.path.insert(0, args.root)
    import spglib

    import basisdb
    from basisdb import structures as S
    from basisdb._cif import load_cif

    csv.field_size_limit(sys.maxsize)
    warnings.simplefilter("ignore")
    db = basisdb.open()
    with open(REPO.parent / "shared" / "datasets" / "carbon_24" / "carbon_24.csv", newline="") as fh:
        cifs = [r["cif"] for _, r in zip(range(args.n), csv.DictReader(fh))]
    cells = [S.as_cell(c) for c in cifs]
    crystals = [load_cif(c) for c in cifs]
    n = len(cells)
    for c in cifs:  # warm: database, per-setting tables, normaliser cosets
        S.featurize(c, kmax=4, symprec=0.1, db=db)
    dss = [spglib.get_symmetry_dataset(c, symprec=0.1, angle_tolerance=5.0) for c in cells]
    bases = [db.get(hall=int(d.hall_number), kmax=4) for d in dss]

    def t(fn):
        t0 = time.process_time()
        fn()
        return 1e3 * (time.process_time() - t0) / n

    stages = {
        "spglib": lambda: [spglib.get_symmetry_dataset(c, symprec=0.1, angle_tolerance=5.0) for c in cells],
        "feat_arrays": lambda: [S.featurize(c, kmax=4, symprec=0.1, db=db) for c in cells],
        "feat_cif": lambda: [S.featurize(c, kmax=4, symprec=0.1, db=db) for c in cifs],
        "validate": lambda: [S._validate(c[0], c[1], c[2], 0.1) for c in cells],
        "canonicalize": lambda: [
            S._canonicalize(b, d, c[0], c[1], c[2], 0.1) for b, d, c in zip(bases, dss, cells)
        ],
        "declared": lambda: [S._declared_fields(c.declared, c.merged) for c in crystals],
        "load_cif": lambda: [load_cif(c) for c in cifs],
    }
    out = {k: [] for k in stages}
    for _ in range(args.repeats):
        for k, fn in stages.items():
            out[k].append(t(fn))
    print(json.dumps({k: round(statistics.median(v), 4) for k, v in out.items()}))


if __name__ == "__main__":
    main()
