"""Columns users compute per structure on the workers: ``add_columns=`` / ``--add-columns``.

The function gets the structure as read and its Featurized; its values become typed columns whose
names and kinds come from the first structure that featurizes, whatever the workers.  Values are
checked against gemmi's reading of the same CIF (cell volume) and against the row's own features.
"""

from __future__ import annotations

import csv
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
gemmi = pytest.importorskip("gemmi")

import basisdb  # noqa: E402
from basisdb.cli import cli  # noqa: E402

CARBON = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "carbon_24" / "carbon_24.csv"
BROKEN = "data_x\n_cell_length_a 3\n"


def _cifs(n: int) -> list[str]:
    if not CARBON.is_file():
        pytest.skip(f"{CARBON} not present")
    csv.field_size_limit(sys.maxsize)
    with open(CARBON, newline="") as fh:
        return [r["cif"] for _, r in zip(range(n), csv.DictReader(fh))]


def _csv(path: Path, cifs: list[str]) -> Path:
    """A CSV of the CIFs in the CDVAE layout's two first columns (material_id m0, m1, ...)."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["material_id", "cif"])
        w.writeheader()
        w.writerows({"material_id": f"m{i}", "cif": c} for i, c in enumerate(cifs))
    return path


def columns(cell, result):
    """Every kind: a number, a bool, a string, an array, an int, a None."""
    lattice, _, numbers = cell
    return {
        "volume": abs(float(np.linalg.det(lattice))),
        "is_p1": bool(result.number == 1),
        "symbol": result.international,
        "input_lattice": lattice,
        "n_input": len(numbers),
        "feature_sum": None if result.features is None else float(result.features.sum()),
    }


def test_kinds_values_and_the_result_given():
    cifs = _cifs(8)
    res = basisdb.featurize_many(cifs, kmax=2, add_columns=columns, partition_size=3, progress=False)
    t = res.features
    types = {f.name: str(f.type) for f in t.schema}
    assert [types[k] for k in ("volume", "is_p1", "symbol", "input_lattice", "n_input", "feature_sum")] == [
        "double", "bool", "string", "list<item: double>", "double", "double",
    ]  # fmt: skip
    for i, cif in enumerate(cifs):  # the cell as read, against gemmi's reading of the same CIF
        st = gemmi.make_small_structure_from_block(gemmi.cif.read_string(cif).sole_block())
        assert t.column("volume")[i].as_py() == pytest.approx(st.cell.volume, rel=1e-9)
        assert len(t.column("input_lattice")[i].as_py()) == 9
    # the Featurized given carries the row's own features (float64 there; stored as float32) and group
    rec = res.records
    for i, r in enumerate(rec):
        assert t.column("feature_sum")[i].as_py() == pytest.approx(
            float(np.asarray(r.features, dtype=np.float64).sum()), rel=1e-6
        )
        assert t.column("symbol")[i].as_py() == t.column("international")[i].as_py()
        assert t.column("n_input")[i].as_py() == r.n_atoms


def test_schema_from_the_first_structure_that_featurizes_and_mismatches_fail_alone():
    cifs = [BROKEN, *_cifs(6)]

    def odd(cell, result):
        n = len(cell[2])
        if n == 12:
            return {"n": "twelve"}  # another kind
        if n == 6:
            raise RuntimeError("no six")
        return {"n": n}

    res = basisdb.featurize_many(cifs, kmax=2, add_columns=odd, progress=False)
    assert str(res.features.schema.field("n").type) == "double"
    fails = {f["index"]: f for f in res.failures.to_pylist()}
    assert fails[0]["error_type"] == "CIFError"
    kinds = {f["error_type"] for i, f in fails.items() if i}
    assert kinds <= {"TypeError", "RuntimeError"} and kinds
    for i, f in fails.items():
        if i:
            assert f["error"].startswith("add_columns:"), f
    assert res.summary["rows"] + res.summary["failures"] == len(cifs)
    assert all(v == v for v in res.features.column("n").to_pylist())  # every kept value is a number


def test_reserved_and_bad_values_are_refused():
    cifs = _cifs(2)
    with pytest.raises(ValueError, match="already used"):
        basisdb.featurize_many(cifs, kmax=2, add_columns=lambda c, r: {"features": 1.0}, progress=False)
    with pytest.raises(TypeError, match="a value must be"):
        basisdb.featurize_many(cifs, kmax=2, add_columns=lambda c, r: {"x": object()}, progress=False)
    with pytest.raises(TypeError, match="must return a mapping"):
        basisdb.featurize_many(cifs, kmax=2, add_columns=lambda c, r: 1.0, progress=False)
    with pytest.raises(TypeError, match="must be a function"):
        basisdb.featurize_many(cifs, kmax=2, add_columns="volume", progress=False)


def test_same_rows_on_dask_workers_and_in_the_watchdog_child():
    pytest.importorskip("distributed")
    cifs = _cifs(10)
    kw = dict(kmax=2, partition_size=3, progress=False)
    ref = basisdb.featurize_many(cifs, add_columns=columns, **kw)
    guarded = basisdb.featurize_many(cifs, add_columns=columns, detector_timeout=30, **kw)
    assert guarded.features.equals(ref.features)
    on_dask = basisdb.featurize_many(cifs, add_columns=columns, scheduler=None, workers=2, **kw)
    assert on_dask.features.drop(["source"]).equals(ref.features.drop(["source"]))


def test_restart_keeps_and_checks_the_columns(tmp_path):
    cifs = _cifs(4)
    out = tmp_path / "out"
    kw = dict(kmax=2, partition_size=2, progress=False)
    basisdb.featurize_many(cifs, out, add_columns=columns, **kw)
    again = basisdb.featurize_many(cifs, out, add_columns=columns, **kw)
    assert again.summary["partitions_skipped"] == 2
    assert "volume" in basisdb.read_features(out).column_names
    with pytest.raises(FileExistsError, match="add_columns"):
        basisdb.featurize_many(cifs, out, add_columns=lambda c, r: {"other": 1.0}, **kw)


def test_cli_module_function(tmp_path, monkeypatch):
    src = _csv(tmp_path / "in.csv", _cifs(3))
    (tmp_path / "mycols.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def volume(cell, result):
                return {"volume": abs(float(np.linalg.det(cell[0])))}
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["featurize", str(src), "-o", str(tmp_path / "o"), "--kmax", "2", "--scheduler", "sync", "-q"]
    r = CliRunner().invoke(cli, [*args, "--add-columns", "mycols:volume"])
    assert r.exit_code == 0, r.output
    assert basisdb.read_features(tmp_path / "o").column("volume").null_count == 0
    for bad, msg in (
        ("mycols", "MODULE:FUNCTION"),
        ("nomodule:f", "cannot import"),
        ("mycols:nope", "has no"),
    ):
        r = CliRunner().invoke(cli, [*args[:3], str(tmp_path / "p"), *args[4:], "--add-columns", bad])
        assert r.exit_code != 0 and msg in r.output, (bad, r.output)


# ------------------------------------------------------------------ from the review of the first version
def _volume(cif: str) -> float:
    return gemmi.make_small_structure_from_block(gemmi.cif.read_string(cif).sole_block()).cell.volume


def _is_first(cell, v0: float) -> bool:
    return abs(abs(float(np.linalg.det(cell[0]))) - v0) < 1e-6


def test_a_none_first_takes_the_kind_of_the_next_value():
    cifs = _cifs(6)
    v0 = _volume(cifs[0])

    def maybe(cell, result):
        return {"tag": None if _is_first(cell, v0) else f"n{len(cell[2])}"}

    res = basisdb.featurize_many(cifs, kmax=2, add_columns=maybe, progress=False)
    assert str(res.features.schema.field("tag").type) == "string"
    assert res.summary["failures"] == 0 and res.features.column("tag").null_count == 1


def test_the_function_raising_on_the_first_structure_fails_that_structure_only():
    cifs = _cifs(5)
    v0 = _volume(cifs[0])

    def flaky(cell, result):
        if _is_first(cell, v0):
            raise RuntimeError("not this one")
        return {"v": 1.0}

    res = basisdb.featurize_many(cifs, kmax=2, add_columns=flaky, progress=False)
    fails = res.failures.to_pylist()
    assert [f["index"] for f in fails] == [0] and fails[0]["error"] == "add_columns: not this one"
    assert res.summary["rows"] == 4 and "v" in res.features.column_names
    with pytest.raises(ValueError, match="raised on every structure"):
        basisdb.featurize_many(cifs, kmax=2, add_columns=lambda c, r: 1 / 0, progress=False)


def test_an_empty_mapping_first_is_a_schema_not_a_silent_drop():
    cifs = _cifs(4)
    v0 = _volume(cifs[0])

    def late(cell, result):
        return {} if _is_first(cell, v0) else {"v": 1.0}

    res = basisdb.featurize_many(cifs, kmax=2, add_columns=late, progress=False)
    fails = res.failures.to_pylist()
    assert res.summary["rows"] == 1 and len(fails) == 3
    assert all("expected [] (the first structure's)" in f["error"] for f in fails)


def test_a_hang_in_the_schema_search_is_stopped_too():
    """The first structure is featurized in the calling process for the columns' types: under the
    watchdog too (moyopy never returns on this one)."""
    pytest.importorskip("moyopy")
    csv.field_size_limit(sys.maxsize)
    with open(CARBON, newline="") as fh:
        hang = next(r["cif"] for r in csv.DictReader(fh) if r["material_id"] == "C-170350-1491-29")
    res = basisdb.featurize_many(
        [hang, *_cifs(3)], kmax=2, detector="moyopy", detector_timeout=2, add_columns=columns, progress=False
    )
    assert res.failures.column("error_type").to_pylist() == ["TimeoutError"]
    assert res.summary["rows"] == 3 and "volume" in res.features.column_names


def test_cli_module_that_fails_to_import(tmp_path, monkeypatch):
    src = _csv(tmp_path / "in.csv", _cifs(1))
    (tmp_path / "broken_cols.py").write_text("def f(:\n")
    (tmp_path / "raising_cols.py").write_text("raise RuntimeError('at import')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("broken_cols:f", "raising_cols:f"):
        r = CliRunner().invoke(
            cli, ["featurize", str(src), "-o", str(tmp_path / spec[:3]), "--add-columns", spec]
        )
        assert r.exit_code != 0 and "importing module" in r.output and "Traceback" not in r.output, r.output


def test_feature_dataset_reads_the_columns_asked_for(tmp_path):
    cifs = _cifs(3)
    out = tmp_path / "out"
    basisdb.featurize_many(cifs, out, kmax=2, add_columns=columns, progress=False)
    plain = basisdb.dataset.FeatureDataset(out)
    assert "volume" not in plain[0].extra
    asked = basisdb.dataset.FeatureDataset(out, columns=["volume", "symbol"])
    assert asked[0].extra["volume"] == pytest.approx(_volume(cifs[0]), rel=1e-9)
    assert asked[1].extra["symbol"] == basisdb.read_features(out).column("international")[1].as_py()
