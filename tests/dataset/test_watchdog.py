"""A structure that never returns, or crashes its process, fails alone (basisdb/_watchdog.py).

moyopy 0.21 loops forever, holding the GIL, on carbon_24 C-170350-1491-29 with any angle tolerance: a
dataset run with ``detector="moyopy"`` used to hang there for good.  Each partition now runs in a forked
child with a time limit per structure; the structure that hangs (or kills its process) becomes a failure
row and every other row is exactly that of an unguarded run.
"""

from __future__ import annotations

import csv
import os
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pytest.importorskip("spglib")

import basisdb  # noqa: E402
from basisdb import _watchdog, dataset  # noqa: E402
from basisdb.cli import cli  # noqa: E402

pytestmark = pytest.mark.skipif(not _watchdog.can_fork(), reason="the watchdog forks (Linux)")

CARBON = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "carbon_24" / "carbon_24.csv"
HANGS = "C-170350-1491-29"  # moyopy 0.21 does not return on it (docs/STRUCTURES.md, "Detector backends")


def _rows(n: int, with_hang: bool = False):
    if not CARBON.is_file():
        pytest.skip(f"{CARBON} not present")
    csv.field_size_limit(sys.maxsize)
    out, hang = [], None
    with open(CARBON, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["material_id"] == HANGS:
                hang = row
            elif len(out) < n:
                out.append(row)
            if len(out) >= n and (hang is not None or not with_hang):
                break
    if with_hang:
        out.insert(2, hang)
    return out


def _cifs_plain(n: int) -> list[str]:
    return [r["cif"] for r in _rows(n)]


def _same_features(a, b):
    assert a.num_rows == b.num_rows
    for name in ("id", "hall_number", "positions", "lattice", "features", "orbit"):
        assert a.column(name).equals(b.column(name)), name


def test_moyopy_hang_becomes_a_failure_row():
    pytest.importorskip("moyopy")
    rows = _rows(5, with_hang=True)
    cifs, ids = [r["cif"] for r in rows], [r["material_id"] for r in rows]
    t0 = time.monotonic()
    res = basisdb.featurize_many(
        cifs, ids=ids, kmax=2, detector="moyopy", detector_timeout=2, partition_size=4, progress=False
    )
    assert time.monotonic() - t0 < 60
    fails = res.failures.to_pylist()
    assert [(f["id"], f["error_type"]) for f in fails] == [(HANGS, "TimeoutError")]
    assert "no answer within 2 s" in fails[0]["error"] and fails[0]["index"] == 2
    assert res.summary["failures_by_kind"] == {"TimeoutError": 1} and res.summary["structures"] == 6
    # every other row as an unguarded run gives it
    others = [i for i in range(6) if i != 2]
    ref = basisdb.featurize_many(
        [cifs[i] for i in others], ids=[ids[i] for i in others], kmax=2, detector="moyopy",
        detector_timeout=0, partition_size=4, progress=False,
    )  # fmt: skip
    _same_features(res.features, ref.features)
    assert res.features.column("index").to_pylist() == others


@pytest.fixture(autouse=True)
def fresh_child():
    """Each test forks its own child (a child forked earlier would not see a test's monkeypatches)."""
    _watchdog._close_server()
    yield
    _watchdog._close_server()


def _misbehaving(monkeypatch, hang_id: str, crash_id: str):
    """_featurize_item hangs on one id and kills its own process on another (inherited by the fork)."""
    plain = dataset._featurize_item

    def item(it, opts, db, pending=None):
        if it.id == hang_id:
            time.sleep(3600)
        if it.id == crash_id:
            os.kill(os.getpid(), signal.SIGKILL)  # as a crash in C or Rust code would end it
        return plain(it, opts, db, pending)

    monkeypatch.setattr(dataset, "_featurize_item", item)


def _csv(tmp_path, rows) -> Path:
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["material_id", "cif", "energy_per_atom"])
        w.writeheader()
        w.writerows({k: r[k] for k in ("material_id", "cif", "energy_per_atom")} for r in rows)
    return src


def test_any_detector_hang_or_crash_fails_alone(monkeypatch, tmp_path):
    rows = _rows(7)
    ids = [r["material_id"] for r in rows]
    src = _csv(tmp_path, rows)
    kw = dict(kmax=2, scheduler="sync", partition_size=3, carry=["energy_per_atom"], progress=False)
    ref = basisdb.featurize_dataset(src, None, **kw)
    _misbehaving(monkeypatch, ids[1], ids[4])
    out = tmp_path / "out"
    res = basisdb.featurize_dataset(src, out, **kw, detector_timeout=1)
    feats, fails = basisdb.read_features(out), basisdb.read_failures(out).to_pylist()
    assert [(f["id"], f["error_type"]) for f in fails] == [
        (ids[1], "TimeoutError"),
        (ids[4], "ChildProcessError"),
    ]
    assert "SIGKILL" in fails[1]["error"]
    keep = pa.array([i for i in range(7) if i not in (1, 4)])
    _same_features(feats, ref.features.take(keep))
    # the carried column stays with its row
    assert feats.column("energy_per_atom").equals(ref.features.column("energy_per_atom").take(keep))
    assert res.summary["failures"] == 2 and res.summary["rows"] == 5 and res.summary["structures"] == 7


def test_the_child_is_kept_and_carried_columns_stay_aligned(tmp_path):
    """One child serves every partition (its caches stay warm), with the rows of an unguarded run."""
    src = _csv(tmp_path, _rows(6))
    kw = dict(kmax=2, scheduler="sync", partition_size=2, carry=["energy_per_atom"], progress=False)
    ref = basisdb.featurize_dataset(src, None, **kw, detector_timeout=0)
    res = basisdb.featurize_dataset(src, None, **kw, detector_timeout=30)
    _same_features(res.features, ref.features)
    assert res.features.column("energy_per_atom").equals(ref.features.column("energy_per_atom"))
    pid = _watchdog._LOCAL.server.pid
    basisdb.featurize_dataset(src, None, **kw, detector_timeout=30)
    assert _watchdog._LOCAL.server.pid == pid  # the same child again


def test_no_limit_runs_in_process(monkeypatch):
    """With spglib and no detector_timeout there is no child (the watchdog costs a fork per partition)."""
    rows = _rows(3)
    called = []
    monkeypatch.setattr(dataset, "_compute_guarded", lambda task, limit: called.append(limit))
    basisdb.featurize_many([r["cif"] for r in rows], kmax=2, progress=False)
    assert called == []
    assert dataset._detector_timeout({"detector": "moyopy"}) == (dataset.MOYOPY_TIMEOUT, None)
    assert dataset._detector_timeout({"detector": "moyopy", "detector_timeout": 0.0}) == (
        None,
        "detector_timeout=0",
    )
    assert dataset._detector_timeout({"detector_timeout": 5.0}) == (5.0, None)
    assert dataset._detector_timeout({}) == (None, None)


@pytest.mark.parametrize("bad", [-1, float("nan"), "10", True])
def test_bad_timeout_is_refused(bad):
    with pytest.raises(ValueError, match="detector_timeout must be"):
        basisdb.featurize_many([], detector_timeout=bad, progress=False)


def test_timeout_is_not_part_of_the_identity(tmp_path):
    """A restart may change the limit (how a run is carried out, not what it computes)."""
    rows = _rows(4)
    cifs = [r["cif"] for r in rows]
    out = tmp_path / "out"
    basisdb.featurize_many(cifs, out, kmax=2, partition_size=2, progress=False, detector_timeout=0)
    again = basisdb.featurize_many(cifs, out, kmax=2, partition_size=2, progress=False, detector_timeout=5)
    assert again.summary["partitions_skipped"] == 2


def test_cli_option(tmp_path):
    rows = _rows(3)
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["material_id", "cif"])
        w.writeheader()
        w.writerows({"material_id": r["material_id"], "cif": r["cif"]} for r in rows)
    r = CliRunner().invoke(
        cli, ["featurize", str(src), "-o", str(tmp_path / "o"), "--kmax", "2", "--scheduler", "sync", "-q",
              "--detector-timeout", "20"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        cli, ["featurize", str(src), "-o", str(tmp_path / "p"), "--detector-timeout", "-1"]
    )
    assert r.exit_code != 0 and "-1" in r.output


def test_rows_carry_no_spglib_deprecation_notice():
    """spglib >= 2.5 warns (DeprecationWarning) about its error handling on calls basisdb makes; that
    notice is not about the structure and stays out of the rows' warnings."""
    rows = _rows(6)
    for detector in ("spglib", "moyopy"):
        if detector == "moyopy":
            pytest.importorskip("moyopy")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = basisdb.featurize_many(
                [r["cif"] for r in rows], kmax=2, symprec=1e-5, detector=detector, detector_timeout=0,
                progress=False,
            )  # fmt: skip
        assert "DeprecationWarning" not in res.summary["warnings_by_kind"], detector
        assert np.all(res.features.column("n_atoms").to_numpy() > 0)


# ------------------------------------------------------------------ from the review of the first version
def test_the_partitions_finish_is_not_a_structures_time(monkeypatch):
    """Evaluating the features per basis, the user's columns and the tables come after the last
    structure: however long they take, no structure is blamed for them."""
    cifs = _cifs_plain(6)
    plain = dataset._evaluate_pending

    def slow(pending):
        time.sleep(1.5)
        return plain(pending)

    monkeypatch.setattr(dataset, "_evaluate_pending", slow)
    res = basisdb.featurize_many(
        cifs, kmax=2, partition_size=3, progress=False, detector_timeout=0.5,
        add_columns=lambda c, r: (time.sleep(0.3), {"n": len(c[2])})[1],
    )  # fmt: skip
    assert res.summary["failures"] == 0 and res.summary["rows"] == 6


def test_a_thread_that_ends_does_not_take_another_threads_child():
    import threading

    cifs = _cifs_plain(40)
    first_done, out = threading.Event(), {}

    def a():
        basisdb.featurize_many(cifs[:2], kmax=2, detector_timeout=30, progress=False)
        first_done.set()  # and this thread ends while b runs

    def b():
        first_done.wait()
        out["r"] = basisdb.featurize_many(
            cifs, kmax=2, detector_timeout=30, partition_size=40, progress=False
        )

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start()
    tb.start()
    ta.join()
    tb.join()
    assert out["r"].summary["failures"] == 0 and out["r"].summary["rows"] == 40


def test_a_child_that_dies_while_finishing_fails_its_partition_only(monkeypatch):
    cifs = _cifs_plain(6)
    plain = dataset._evaluate_pending

    def die_on_second(pending):
        rows = [row for _, rs in pending.values() for row in rs]
        if any(row["index"] >= 3 for row in rows):
            os.kill(os.getpid(), signal.SIGKILL)
        return plain(pending)

    monkeypatch.setattr(dataset, "_evaluate_pending", die_on_second)
    res = basisdb.featurize_many(cifs, kmax=2, partition_size=3, progress=False, detector_timeout=5)
    assert res.features.column("index").to_pylist() == [0, 1, 2]
    fails = res.failures.to_pylist()
    assert [f["index"] for f in fails] == [3, 4, 5]
    assert {f["error_type"] for f in fails} == {"ChildProcessError"} and "while finishing" in fails[0][
        "error"
    ]


def test_threaded_workers_run_moyopy_unguarded_and_say_so():
    pytest.importorskip("moyopy")
    pytest.importorskip("distributed")
    cifs = _cifs_plain(6)
    res = basisdb.featurize_many(
        cifs, kmax=2, detector="moyopy", scheduler=None, workers=2, processes=False, progress=False
    )
    assert res.summary["watchdog_off"] and "threads" in res.summary["watchdog_off"][0]
    assert "moyopy ran without the watchdog" in dataset.format_summary(res.summary)
