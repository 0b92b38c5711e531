"""The moyopy detector backend (featurize(..., detector="moyopy")) against spglib.

Both backends must give identical features (to 1e-10) wherever they detect the same group
(same Hall number and same primitive cell, i.e. the same translation lattice), but for at
most 1% of cases (1 of 193 on carbon_24, see below); where they disagree is counted and printed (docs/STRUCTURES.md "Detector backends" has the figures).
moyopy is run in a child process with a time limit: moyopy 0.21 can loop forever on a
structure (carbon_24 C-170350-1491-29 at symprec 0.1), which counts as a disagreement.
"""

from __future__ import annotations

import csv
import itertools
import multiprocessing as mp
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import basisdb
from basisdb import SymmetryNotFoundError

pytest.importorskip("spglib")
moyopy = pytest.importorskip("moyopy")

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets"
N = 200


def _compare(cif: str):
    warnings.simplefilter("ignore")
    from basisdb.structures import _read_structure

    c = _read_structure(cif)
    cell = (c.lattice, c.positions, c.numbers)
    a = basisdb.featurize(cell, kmax=4)
    b = basisdb.featurize(cell, kmax=4, detector="moyopy")
    if a.hall_number != b.hall_number:
        return ("group", a.number, b.number)
    from basisdb.structures import _detect

    sites = [
        len(np.unique(_detect(*cell, 0.1, 5.0, detector=d).mapping_to_primitive))
        for d in ("spglib", "moyopy")
    ]
    if sites[0] != sites[1]:  # same type, different translation lattice (primitive cell)
        return ("lattice", a.number, b.number)
    return ("same", float(np.abs(a.features - b.features).max()), bool(np.array_equal(a.orbit, b.orbit)))


def _rows(name):
    path = DATA / name / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as f:
        return list(itertools.islice(csv.DictReader(f), N))


@pytest.mark.parametrize("name", ["carbon_24", "perov_5"])
def test_same_group_same_features(name):
    rows = _rows(name)
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    pool = ctx.Pool(1)
    results = {}
    try:
        for r in rows:
            try:
                results[r["material_id"]] = pool.apply_async(_compare, (r["cif"],)).get(timeout=20)
            except mp.TimeoutError:
                results[r["material_id"]] = ("hang",)
                pool.terminate()
                pool = ctx.Pool(1)
    finally:
        pool.terminate()
    same = {k: v for k, v in results.items() if v[0] == "same"}
    bad = {k: v for k, v in same.items() if v[1] > 1e-10 or not v[2]}
    counts = {
        kind: sum(v[0] == kind for v in results.values()) for kind in ("same", "group", "lattice", "hang")
    }
    print(
        f"\n{name}: {len(rows)} structures, {counts}; disagreements: "
        + ", ".join(f"{k} {v}" for k, v in results.items() if v[0] != "same")
    )
    # Known: carbon_24 C-176652-1615-30 (C2/c, same primitive cell) differs by ~1e-2: moyopy's
    # iterative search settled at symprec 0.05 and chose another standard cell than spglib, and
    # the canonical presentation of the two differs.  Allow at most 1% such cases, and report them.
    if bad:
        print(f"{name}: same group, different features: {bad}")
    assert len(bad) <= 0.01 * len(rows), bad
    assert counts["same"] >= 0.9 * len(rows), counts


def test_fields_and_errors():
    # rock salt: Fm-3m, both backends, presentation-independent
    lat = np.eye(3) * 5.64
    pos = np.array(
        [
            [0, 0, 0],
            [0, 0.5, 0.5],
            [0.5, 0, 0.5],
            [0.5, 0.5, 0],
            [0.5, 0.5, 0.5],
            [0.5, 0, 0],
            [0, 0.5, 0],
            [0, 0, 0.5],
        ]
    )
    num = np.array([11] * 4 + [17] * 4)
    a = basisdb.featurize((lat, pos, num), kmax=4)
    b = basisdb.featurize((lat, pos, num), kmax=4, detector="moyopy")
    assert a.hall_number == b.hall_number == 523
    np.testing.assert_allclose(a.features, b.features, atol=1e-10)
    # shifted, permuted presentation with moyopy = spglib on the original
    perm = np.random.default_rng(0).permutation(len(num))
    c = basisdb.featurize((lat, (pos[perm] + 0.13) % 1, num[perm]), kmax=4, detector="moyopy")
    np.testing.assert_allclose(np.sort(c.features, axis=0), np.sort(a.features, axis=0), atol=1e-10)
    with pytest.raises(ValueError, match="detector must be"):
        basisdb.featurize((lat, pos, num), detector="nope")
    assert issubclass(SymmetryNotFoundError, ValueError) and "SymmetryNotFoundError" in basisdb.__all__


def test_symmetry_not_found_error():
    from basisdb.structures import _detect

    # a degenerate (singular) lattice: no detector finds a symmetry
    lat = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 0]])
    for det in ("spglib", "moyopy"):
        with pytest.raises(SymmetryNotFoundError, match="could not determine the symmetry"):
            _detect(lat, np.zeros((1, 3)), np.ones(1, dtype=np.int64), 0.1, 5.0, detector=det)


def test_dataset_detector_option(tmp_path):
    pytest.importorskip("pyarrow")
    from click.testing import CliRunner

    from basisdb.cli import cli

    rows = _rows("perov_5")[:4]
    a = basisdb.featurize_many([r["cif"] for r in rows], kmax=2)
    b = basisdb.featurize_many([r["cif"] for r in rows], kmax=2, detector="moyopy")
    assert [r.hall_number for r in a.records] == [r.hall_number for r in b.records]
    for x, y in zip(a.records, b.records):
        np.testing.assert_allclose(x.features, y.features, atol=1e-6)  # stored as float32
    with pytest.raises(ValueError, match="detector must be"):
        basisdb.featurize_many([rows[0]["cif"]], detector="nope")
    csv_path = tmp_path / "in.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["material_id", "cif"])
        w.writeheader()
        w.writerows({"material_id": r["material_id"], "cif": r["cif"]} for r in rows)
    res = CliRunner().invoke(
        cli,
        [
            "featurize",
            str(csv_path),
            "-o",
            str(tmp_path / "out"),
            "-k",
            "2",
            "--scheduler",
            "sync",
            "--detector",
            "moyopy",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    from basisdb.dataset import read_summary

    summary = read_summary(tmp_path / "out")
    assert summary["structures"] == 4 and summary["rows"] == 4, summary
