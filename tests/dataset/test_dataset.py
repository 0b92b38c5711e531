"""Dataset featurization (basisdb.dataset, `basisdb featurize`): Parquet output, failures, restart after
kill -9, determinism across worker counts and partition sizes, a killed Dask worker, reading back, and a
torch DataLoader over the output feeding the encoder layer.  Small inputs: a few dozen carbon_24 rows.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pytest.importorskip("gemmi")

import basisdb  # noqa: E402
from basisdb import _dataset_io, dataset  # noqa: E402
from basisdb._stderr_capture import capture_stderr  # noqa: E402
from basisdb.cli import cli  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CARBON = REPO.parent / "shared" / "datasets" / "carbon_24" / "carbon_24.csv"
pytestmark = pytest.mark.skipif(not CARBON.is_file(), reason="../shared/datasets not present")
csv.field_size_limit(sys.maxsize)
N = 24
BROKEN = 7  # row index of the broken CIF in the small table
KMAX = 2


def _carbon_rows(n):
    with open(CARBON, newline="") as fh:
        out = []
        for row in csv.DictReader(fh):
            out.append(row)
            if len(out) >= n:
                return out
    return out


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory) -> Path:
    """N carbon_24 rows in the CDVAE layout (unnamed index column first), one broken CIF inserted."""
    rows = _carbon_rows(N - 1)
    rows.insert(
        BROKEN,
        {"": "0", "material_id": "broken-1", "cif": "data_x\n_cell_length_a 3\n", "energy_per_atom": "0.0"},
    )
    path = tmp_path_factory.mktemp("data") / "small.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["", "material_id", "cif", "energy_per_atom"])
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def reference(small_csv):
    """An uninterrupted in-process run: the rows every other run must reproduce."""
    return basisdb.featurize_dataset(
        small_csv,
        None,
        kmax=KMAX,
        scheduler="sync",
        partition_size=5,
        carry=["energy_per_atom"],
        progress=False,
    )


def _same_rows(a, b):
    a, b = a.drop(["source"]), b.drop(["source"])
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    differ = [c for c in a.column_names if not a.column(c).equals(b.column(c))]
    assert not differ, (
        differ,
        [(a.column(c).to_pylist()[:3], b.column(c).to_pylist()[:3]) for c in differ[:1]],
    )


# ------------------------------------------------------------------ content
def test_rows_match_featurize(reference, small_csv):
    feats, fails = reference.features, reference.failures
    assert feats.num_rows == N - 1 and fails.num_rows == 1
    assert reference.summary["failures_by_kind"] == {"CIFError": 1}
    assert fails.column("index").to_pylist() == [BROKEN] and fails.column("id").to_pylist() == ["broken-1"]
    idx = feats.column("index").to_pylist()
    assert idx == sorted(idx) and len(set(idx)) == len(idx) and BROKEN not in idx
    rows = _carbon_rows(3)
    for rec, row in zip(reference.records[:3], rows):
        r = basisdb.featurize(row["cif"], kmax=KMAX)
        assert rec.id == row["material_id"] and rec.hall_number == r.hall_number
        np.testing.assert_array_equal(rec.positions, r.positions)
        np.testing.assert_array_equal(rec.numbers, r.numbers)
        np.testing.assert_array_equal(rec.orbit, r.orbit)
        np.testing.assert_allclose(rec.lattice, r.lattice)
        np.testing.assert_array_equal(rec.features, r.features.astype(np.float32))
        assert rec.extra["energy_per_atom"] == pytest.approx(float(row["energy_per_atom"]))
        assert rec.extra["declared_number"] == 1  # the CIFs declare P 1


def test_no_features_and_encoding(small_csv, reference):
    light = basisdb.featurize_dataset(
        small_csv, None, kmax=KMAX, scheduler="sync", features=False, progress=False
    )
    t = light.features
    assert t.column("features").null_count == t.num_rows and t.column("kmax").null_count == t.num_rows
    for name in ("positions", "hall_number", "lattice", "orbit"):
        assert t.column(name).equals(reference.features.column(name))
    enc = basisdb.featurize_many(
        [_carbon_rows(1)[0]["cif"]], kmax=KMAX, features=False, encoding=True
    ).records[0]
    r = basisdb.featurize(_carbon_rows(1)[0]["cif"], kmax=KMAX)
    np.testing.assert_allclose(enc.encoding, basisdb.shared_encoding(r.basis, r.positions), atol=1e-6)
    assert enc.encoding.shape == (r.n_atoms, (2 * KMAX + 1) ** 3)


def test_featurize_many_mixed_inputs_and_list_error():
    ase = pytest.importorskip("ase.io")
    import io

    cifs = [r["cif"] for r in _carbon_rows(3)]
    atoms = ase.read(io.StringIO(cifs[1]), format="cif")
    triple = basisdb.structures.as_cell(cifs[2])
    res = basisdb.featurize_many(
        [cifs[0], atoms, triple, (np.eye(3), np.zeros((2, 3)), [6, 6])], ids="abcd", kmax=KMAX
    )
    assert [r.id for r in res.records] == ["a", "b", "c"]
    assert (
        res.failures.column("id").to_pylist() == ["d"]
        and "overlapping" in res.failures.column("error")[0].as_py()
    )
    for rec, cif in zip(res.records, cifs):  # the ASE and array routes agree with the CIF to round-off
        np.testing.assert_allclose(rec.positions, basisdb.featurize(cif, kmax=KMAX).positions, atol=1e-9)
    with pytest.raises(TypeError, match="featurize_many"):
        basisdb.featurize(cifs[:2])
    with pytest.raises(TypeError, match="featurize_many"):
        basisdb.featurize([triple, triple])


def test_extxyz_and_parquet_inputs(tmp_path, reference):
    ase_io = pytest.importorskip("ase.io")
    import io

    import pyarrow.parquet as pq

    rows = [r for r in _carbon_rows(6)]
    frames = [ase_io.read(io.StringIO(r["cif"]), format="cif") for r in rows]
    xyz = tmp_path / "c.extxyz"
    ase_io.write(xyz, frames, format="extxyz")
    res = basisdb.featurize_dataset(xyz, None, kmax=KMAX, scheduler="sync", progress=False)
    assert res.features.column("id").to_pylist() == [f"c:{i}" for i in range(6)]
    for rec, row in zip(res.records, rows):
        np.testing.assert_allclose(
            rec.positions, basisdb.featurize(row["cif"], kmax=KMAX).positions, atol=1e-9
        )
    table = pa.table({"name": [r["material_id"] for r in rows], "structure": [r["cif"] for r in rows]})
    pq.write_table(table, tmp_path / "t.parquet")
    res = basisdb.featurize_dataset(
        tmp_path / "t.parquet",
        None,
        kmax=KMAX,
        cif_column="structure",
        id_column="name",
        scheduler="sync",
        progress=False,
    )
    assert res.features.column("id").to_pylist() == [r["material_id"] for r in rows]
    with pytest.raises(ValueError, match="no column 'cif'"):
        basisdb.featurize_dataset(tmp_path / "t.parquet", None, scheduler="sync", progress=False)


def test_cif_folder_and_glob(tmp_path):
    rows = _carbon_rows(4)
    for i, r in enumerate(rows):
        (tmp_path / "cifs" / f"sub{i % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "cifs" / f"sub{i % 2}" / f"{r['material_id']}.cif").write_text(r["cif"])
    a = basisdb.featurize_dataset(
        tmp_path / "cifs", None, kmax=KMAX, scheduler="sync", progress=False
    ).features
    b = basisdb.featurize_dataset(
        str(tmp_path / "cifs" / "**" / "*.cif"), None, kmax=KMAX, scheduler="sync", progress=False
    ).features
    assert a.num_rows == 4 and a.drop(["source"]).equals(b.drop(["source"]))
    assert sorted(a.column("id").to_pylist()) == sorted(r["material_id"] for r in rows)


def test_relative_paths_reach_workers_absolute(tmp_path, monkeypatch):
    """Relative output and CIF paths are made absolute before a task leaves the client (a worker of an
    existing cluster may run in another directory); the source column keeps the path as given."""
    rows = _carbon_rows(3)
    (tmp_path / "cifs").mkdir()
    for r in rows:
        (tmp_path / "cifs" / f"{r['material_id']}.cif").write_text(r["cif"])
    monkeypatch.chdir(tmp_path)
    seen = []
    run_partition = basisdb.dataset._run_partition

    def spy(task):
        seen.append(task)
        return run_partition(task)

    monkeypatch.setattr(basisdb.dataset, "_run_partition", spy)
    basisdb.featurize_dataset("cifs", "out", kmax=KMAX, scheduler="sync", progress=False)
    assert seen and all(Path(t["out"]).is_absolute() for t in seen)
    assert Path(seen[0]["out"]) == tmp_path / "out"
    opened = [it.structure for t in seen for it in t["items"]]
    assert len(opened) == 3 and all(Path(p).is_absolute() and Path(p).is_file() for p in opened)
    sources = basisdb.read_features("out", columns=["source"]).column("source").to_pylist()
    assert all(not Path(p).is_absolute() for p in sources)


def test_mcif_files_are_cifs_and_unknown_files_one_line(tmp_path):
    """A .mcif file (magnetic CIF) is read as a CIF, alone or in a folder, not handed to ASE;
    a file no reader knows is a ValueError naming it (one line from the CLI), not ASE's traceback."""
    rows = _carbon_rows(2)
    (tmp_path / "cifs").mkdir()
    (tmp_path / "cifs" / "a.cif").write_text(rows[0]["cif"])
    (tmp_path / "cifs" / "b.mcif").write_text(rows[1]["cif"])
    assert [k for k, _ in _dataset_io.expand_inputs(tmp_path / "cifs")] == ["cif", "cif"]
    res = basisdb.featurize_dataset(tmp_path / "cifs", None, kmax=KMAX, scheduler="sync", progress=False)
    assert res.features.column("id").to_pylist() == ["a", "b"]
    assert _dataset_io.expand_inputs(tmp_path / "cifs" / "b.mcif") == [("cif", tmp_path / "cifs" / "b.mcif")]
    pytest.importorskip("ase.io")
    odd = tmp_path / "x.unknownsuffix"
    odd.write_text("hello\n")
    with pytest.raises(ValueError, match=r"x\.unknownsuffix: not a file type basisdb or ASE reads"):
        basisdb.featurize_dataset(odd, None, scheduler="sync", progress=False)
    res = CliRunner().invoke(
        cli, ["featurize", str(odd), "-o", str(tmp_path / "out"), "--scheduler", "sync", "-q"]
    )
    assert res.exit_code != 0 and "not a file type basisdb or ASE reads" in res.output


# ------------------------------------------------------------------ CLI, restart, determinism
def test_cli_writes_and_refuses_other_options(tmp_path, small_csv, reference):
    out = tmp_path / "out"
    runner = CliRunner()
    args = [
        "featurize",
        str(small_csv),
        "-o",
        str(out),
        "--kmax",
        str(KMAX),
        "--partition-size",
        "5",
        "--scheduler",
        "sync",
        "--carry",
        "energy_per_atom",
        "-q",
    ]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "24 structures" in res.output and "1 failures (CIFError: 1)" in res.output
    assert len(list((out / "features").glob("part-*.parquet"))) == 5
    _same_rows(basisdb.read_features(out), reference.features)
    assert basisdb.read_failures(out).column("index").to_pylist() == [BROKEN]
    df = basisdb.read_features(out, columns=["id", "hall_number"], as_pandas=True)
    assert list(df.columns) == ["id", "hall_number"] and len(df) == N - 1
    # a rerun of the same command does nothing and says so
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and "5 of 5 partitions were already done" in res.output
    _same_rows(basisdb.read_features(out), reference.features)
    # other options into the same folder: one line, non-zero
    res = runner.invoke(cli, args[:-1] + ["--symprec", "0.01"])
    assert res.exit_code != 0 and "other inputs or options" in res.output and "symprec" in res.output
    assert res.output.count("\n") == 1


_KILL_SCRIPT = textwrap.dedent(
    f"""
    import sys, time
    import basisdb
    from basisdb import _dataset_io
    orig = _dataset_io.iter_file_items
    def slow(*a, **k):
        for x in orig(*a, **k):
            time.sleep(float(sys.argv[3]))
            yield x
    _dataset_io.iter_file_items = slow
    basisdb.featurize_dataset(sys.argv[1], sys.argv[2], kmax={KMAX}, partition_size=3, scheduler="sync",
                              carry=["energy_per_atom"], progress=False)
"""
)


def test_restart_after_kill_9(tmp_path, small_csv, reference):
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(small_csv), str(out), "0.15"], cwd=tmp_path)
    deadline = time.time() + 60
    try:
        while time.time() < deadline and len(_dataset_io.done_parts(out)) < 2:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = len(_dataset_io.done_parts(out))
    assert 2 <= done_before < 8
    # a temporary file of a write in progress is what a kill can leave: the rerun removes it
    (out / "features" / ".part-000007.parquet.dead.tmp").write_bytes(b"partial")
    partial = basisdb.read_features(out)  # only complete partitions are read
    assert partial.num_rows == sum(1 for i in partial.column("index").to_pylist())
    subprocess.run([sys.executable, str(script), str(small_csv), str(out), "0"], cwd=tmp_path, check=True)
    again = basisdb.read_features(out)
    idx = again.column("index").to_pylist()
    assert len(idx) == len(set(idx)) == N - 1
    _same_rows(again, reference.features)
    assert basisdb.read_failures(out).column("index").to_pylist() == [BROKEN]
    assert not list(out.rglob("*.tmp"))
    summary = dataset.read_summary(out)
    assert summary["structures"] == N and summary["failures"] == 1


def test_deterministic_across_workers_and_threads(small_csv, reference):
    pytest.importorskip("distributed")
    res = basisdb.featurize_dataset(
        small_csv,
        None,
        kmax=KMAX,
        partition_size=5,
        workers=2,
        processes=False,
        carry=["energy_per_atom"],
        progress=False,
    )
    _same_rows(res.features, reference.features)
    assert res.failures.equals(reference.failures)
    assert res.summary["workers"] == 2


def test_dask_worker_killed_mid_run(tmp_path, small_csv, reference, monkeypatch):
    """A LocalCluster of 2 worker processes; one is killed with SIGKILL after the first partition is
    written.  The nanny restarts it, Dask reruns its tasks, and the output has every row once."""
    distributed = pytest.importorskip("distributed")
    orig = _dataset_io.iter_file_items

    def slow(*a, **k):
        for x in orig(*a, **k):
            time.sleep(0.08)
            yield x

    monkeypatch.setattr(_dataset_io, "iter_file_items", slow)
    out = tmp_path / "out"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = list(client.run(os.getpid).values())
        killed = []

        def killer():
            deadline = time.time() + 60
            while time.time() < deadline and not _dataset_io.done_parts(out):
                time.sleep(0.02)
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

        th = threading.Thread(target=killer)
        th.start()
        res = basisdb.featurize_dataset(
            small_csv,
            out,
            kmax=KMAX,
            partition_size=3,
            scheduler=client,
            carry=["energy_per_atom"],
            progress=False,
        )
        th.join()
    assert killed
    assert res.summary["structures"] == N
    again = basisdb.read_features(out)
    idx = again.column("index").to_pylist()
    assert len(idx) == len(set(idx)) == N - 1
    _same_rows(again, reference.features)


# ------------------------------------------------------------------ reading back into torch
def test_dataloader_over_parquet_feeds_encoder(tmp_path, small_csv, reference):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from basisdb.torch import InvariantEncoder

    out = tmp_path / "out"
    basisdb.featurize_dataset(
        small_csv,
        out,
        kmax=KMAX,
        scheduler="sync",
        features=False,
        partition_size=8,
        carry=["energy_per_atom"],
        progress=False,
    )
    ds = dataset.FeatureDataset(out, targets=["energy_per_atom"], dtype=torch.float64)
    assert len(ds) == N - 1
    halls = sorted({ds[i].hall_number for i in range(len(ds))})
    layer = InvariantEncoder(4, kmax=KMAX, hall_numbers=halls, dtype=torch.float64)
    loader = DataLoader(ds, batch_size=5, collate_fn=ds.collate, shuffle=False)
    seen = 0
    for batch in loader:
        assert set(batch) >= {
            "positions",
            "hall",
            "numbers",
            "crystal",
            "orbit",
            "lattice",
            "index",
            "targets",
        }
        h = layer(batch["positions"], batch["hall"])
        assert h.shape == (batch["positions"].shape[0], 4)
        assert batch["targets"].shape == (batch["lattice"].shape[0], 1)
        seen += batch["lattice"].shape[0]
    assert seen == N - 1
    # the same batch from Featurized results directly
    recs = [ds[i] for i in range(3)]
    direct = basisdb.torch.collate(
        [basisdb.featurize(r["cif"], kmax=KMAX) for r in _carbon_rows(3)], dtype=torch.float64
    )
    mine = ds.collate(recs)
    for key in ("positions", "hall", "numbers", "crystal", "orbit"):
        assert torch.equal(mine[key], direct[key]), key
    with_features = dataset.FeatureDataset(reference.features, with_features=True)
    b = with_features.collate([with_features[0], with_features[1]])
    assert b["features"].shape[0] == b["positions"].shape[0]


# ------------------------------------------------------------------ pieces
def test_capture_stderr_counts_c_level_lines():
    with capture_stderr() as cap:
        os.write(2, b"spglib: one\nspglib: two\n")
    assert cap.lines == ["spglib: one", "spglib: two"]
    with capture_stderr(enabled=False) as cap:
        pass
    assert cap.lines == []


def test_import_basisdb_stays_light():
    code = "import sys, basisdb; print(sorted(m for m in ('pyarrow', 'dask', 'distributed', 'tqdm') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_bad_options():
    with pytest.raises(ValueError, match="partition_size"):
        basisdb.featurize_many([], partition_size=0)
    with pytest.raises(TypeError, match="iterable of structures"):
        basisdb.featurize_many("x.cif")
    with pytest.raises(FileNotFoundError, match="no such file"):
        basisdb.featurize_dataset("/nonexistent/x.cif", None, scheduler="sync")
    res = basisdb.featurize_many([], kmax=KMAX)
    assert res.features.num_rows == 0 and res.summary["structures"] == 0


def test_finished_output_starts_no_engine(tmp_path, small_csv, reference, monkeypatch):
    """Rerunning a finished dataset skips every partition without starting a Dask cluster."""
    out = tmp_path / "done"
    kw = dict(kmax=KMAX, scheduler="sync", partition_size=5, carry=["energy_per_atom"], progress=False)
    basisdb.featurize_dataset(small_csv, out, **kw)

    def no_engine(*a, **k):
        raise AssertionError("the engine was started for a finished output")

    monkeypatch.setattr(basisdb.dataset, "_open_client", no_engine)
    res = basisdb.featurize_dataset(small_csv, out, **{**kw, "scheduler": None, "workers": 2})
    assert res.summary["partitions_skipped"] == -(-N // 5)
    _same_rows(basisdb.read_features(out), reference.features)


def test_carried_rows_ship_only_their_partition():
    """A partition's carried columns pickle to the size of its own rows, not of the batch they came from."""
    import pickle

    import pyarrow as pa

    big = pa.table({"target": np.arange(100_000, dtype=np.float64)})
    rows = [big.slice(j, 1) for j in range(10)]
    assert len(pickle.dumps(rows[0])) > 100_000 * 8  # what a 1-row slice costs on its own
    compact = basisdb.dataset._compact_rows(rows, big.schema)
    assert compact.column("target").to_pylist() == list(range(10))
    assert len(pickle.dumps(compact)) < 10_000
    mixed = basisdb.dataset._compact_rows([None, rows[3]], big.schema)
    assert mixed.column("target").to_pylist() == [None, 3.0]


def test_two_cluster_runs_in_one_fresh_process(tmp_path):
    """Two LocalCluster runs in one interpreter that had not imported distributed before the first
    (a notebook, a training script that featurizes two datasets): the second must work too."""
    script = tmp_path / "twice.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import csv, sys, warnings
            warnings.simplefilter("ignore")
            import basisdb
            assert "distributed" not in sys.modules
            csv.field_size_limit(sys.maxsize)
            with open({str(CARBON)!r}, newline="") as fh:
                rows = [r["cif"] for _, r in zip(range(4), csv.DictReader(fh))]
            if __name__ == "__main__":
                for _ in range(2):
                    res = basisdb.featurize_many(rows, kmax=2, scheduler=None, workers=1, progress=False)
                    print(len(res.records))
            """
        )
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["4", "4"]


def test_cif_column_cells_are_text_never_paths(tmp_path):
    """A cell of the CIF column is CIF text however short: a one-line or empty cell is a CIF failure,
    and a cell that happens to name a file is not opened."""
    nacl = REPO / "examples" / "NaCl.cif"
    table = tmp_path / "bad.csv"
    with open(table, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif"])
        w.writerows([["a", "garbage not a cif"], ["b", ""], ["c", str(nacl)]])
    res = basisdb.featurize_dataset(table, None, kmax=KMAX, scheduler="sync", progress=False)
    assert res.features.num_rows == 0
    fails = res.failures.to_pydict()
    assert fails["error_type"] == ["CIFError"] * 3
    assert all(e.startswith("<CIF text>") for e in fails["error"])


def test_kmax_above_the_artifact_refused_before_any_work(tmp_path, small_csv):
    """A K the artifact cannot serve is refused up front (it would fail every structure), and nothing
    is written; above the format's limit the message says so instead of suggesting a build."""
    from click.testing import CliRunner

    from basisdb._constants import MAX_KMAX
    from basisdb.cli import cli

    kmax = basisdb.open().kmax
    with pytest.raises(ValueError, match=f"exceeds this artifact's kmax={kmax}"):
        basisdb.featurize_dataset(small_csv, tmp_path / "a", kmax=kmax + 1, scheduler="sync", progress=False)
    with pytest.raises(ValueError, match=f"the format allows kmax <= {MAX_KMAX}"):
        basisdb.featurize_many(["x"], kmax=MAX_KMAX + 1, progress=False)
    assert not (tmp_path / "a").exists()
    out = CliRunner().invoke(
        cli, ["featurize", str(small_csv), "-o", str(tmp_path / "b"), "--kmax", str(kmax + 1)]
    )
    assert out.exit_code != 0 and len(out.output.strip().splitlines()) == 1
    assert "exceeds this artifact's kmax" in out.output and not (tmp_path / "b").exists()


def test_summary_counts_only_this_runs_work(tmp_path, small_csv):
    """A resumed run's rate counts only what it computed; a finished output says there was nothing to do."""
    kw = dict(kmax=KMAX, scheduler="sync", partition_size=5, progress=False)
    first = basisdb.featurize_dataset(small_csv, tmp_path / "o", **kw).summary
    assert first["structures_computed"] == first["structures"] == N
    assert "in this process" in basisdb.dataset.format_summary(first)
    again = basisdb.featurize_dataset(small_csv, tmp_path / "o", **{**kw, "scheduler": None}).summary
    assert again["structures_computed"] == 0 and again["structures"] == N and again["workers"] == 0
    assert basisdb.dataset.format_summary(again).startswith("nothing left to do")


def test_scheduler_typo_refused_before_anything_is_written(tmp_path, small_csv):
    with pytest.raises(ValueError, match="neither 'sync', 'local' nor a Dask scheduler address"):
        basisdb.featurize_dataset(small_csv, tmp_path / "o", kmax=KMAX, scheduler="syn", progress=False)
    assert not (tmp_path / "o").exists()


def test_carry_from_extxyz_info_and_calculator(tmp_path):
    """--carry on an extxyz file: info keys and calculator results (energy, stress) travel with the rows,
    typed as the docs say; a key the first structure lacks is refused in one line."""
    ase_io = pytest.importorskip("ase.io")
    import io

    from ase.calculators.singlepoint import SinglePointCalculator

    rows = _carbon_rows(3)
    frames = []
    for i, r in enumerate(rows):
        atoms = ase_io.read(io.StringIO(r["cif"]), format="cif")
        atoms.info["label"] = f"s{i}"
        atoms.info["n_hops"] = i  # an int: stored as float64
        atoms.calc = SinglePointCalculator(atoms, energy=-1.5 * i, stress=np.arange(6.0) + i)
        frames.append(atoms)
    xyz = tmp_path / "c.extxyz"
    ase_io.write(xyz, frames, format="extxyz")
    res = basisdb.featurize_dataset(
        xyz, None, kmax=KMAX, scheduler="sync", progress=False, carry=["energy", "label", "n_hops", "stress"]
    )
    t = res.features
    assert t.column("energy").to_pylist() == [0.0, -1.5, -3.0]
    assert t.column("label").to_pylist() == ["s0", "s1", "s2"]
    assert t.column("n_hops").to_pylist() == [0.0, 1.0, 2.0]
    assert t.column("stress").to_pylist()[2] == list(np.arange(6.0) + 2)
    with pytest.raises(ValueError, match=r"'forces_max' is neither in atoms\.info nor in the calculator"):
        basisdb.featurize_dataset(
            xyz, None, kmax=KMAX, scheduler="sync", progress=False, carry=["forces_max"]
        )


def test_worker_slots_follow_the_cluster():
    """The partitions in flight are sized by the worker threads the cluster has now (joining workers
    of an adaptive cluster get work too); a client that cannot say gives 0 (the size is kept)."""

    class Stub:
        def __init__(self, nthreads):
            self._n = nthreads

        def nthreads(self):
            if self._n is None:
                raise OSError("scheduler gone")
            return self._n

    assert dataset._worker_slots(Stub({"tcp://a": 1, "tcp://b": 4})) == 5
    assert dataset._worker_slots(Stub({})) == 0
    assert dataset._worker_slots(Stub(None)) == 0
