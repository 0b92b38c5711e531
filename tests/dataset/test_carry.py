"""Carried columns (``--carry`` / ``featurize_dataset(carry=...)``): one schema for the whole dataset,
fixed before anything is written.

Each carried value is compared with the input as Python's csv module (or pyarrow's Parquet reader, or
ASE) reads it, not with what basisdb wrote elsewhere.  Small inputs: a few carbon_24 rows.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow")
pytest.importorskip("gemmi")

import basisdb  # noqa: E402
from basisdb import _dataset_io, dataset  # noqa: E402
from basisdb.cli import cli  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CARBON = REPO.parent / "shared" / "datasets" / "carbon_24" / "carbon_24.csv"
pytestmark = pytest.mark.skipif(not CARBON.is_file(), reason="../shared/datasets not present")
csv.field_size_limit(sys.maxsize)


def _rows(n):
    with open(CARBON, newline="") as fh:
        return [r for _, r in zip(range(n), csv.DictReader(fh))]


def _write_csv(path: Path, rows, fields):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _run(inputs, out=None, **kw):
    kw = {"kmax": 1, "features": False, "scheduler": "sync", "progress": False, **kw}
    return basisdb.featurize_dataset(inputs, out, **kw)


@pytest.fixture(scope="module")
def rows():
    return _rows(12)


@pytest.fixture(scope="module")
def one_cif(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("cif") / "one.cif"
    path.write_text(rows[0]["cif"])
    return path


def test_cif_files_and_tables_mixed_share_one_schema(tmp_path, rows, one_cif):
    """A CIF file first (no columns), then a table, in partitions that start with either: every partition
    has the carried column (nulls for the CIF file's row) and the dataset reads back as one table."""
    table = _write_csv(tmp_path / "t.csv", rows, ["material_id", "cif", "energy_per_atom"])
    for inputs, size in (([one_cif, table], 4), ([table, one_cif], 6), ([table, one_cif], 4)):
        out = tmp_path / f"o{size}{inputs[0].suffix}"
        _run(inputs, out, carry=["energy_per_atom"], partition_size=size)
        t = basisdb.read_features(out)
        assert t.schema.field("energy_per_atom").type == pa.float64()
        got = dict(zip(t.column("id").to_pylist(), t.column("energy_per_atom").to_pylist()))
        for r in rows:
            assert got[r["material_id"]] == float(r["energy_per_atom"])
        assert got["one"] is None
        ds = basisdb.dataset.FeatureDataset(out, targets=["energy_per_atom"])
        assert len(ds) == len(rows) + 1


def test_carry_refused_before_anything_is_written(tmp_path, rows, one_cif):
    table = _write_csv(
        tmp_path / "n.csv", [dict(r, number="12") for r in rows[:2]], ["cif", "number", "energy_per_atom"]
    )
    out = tmp_path / "never"
    for carry, match in (
        (["number"], "already has a column 'number'"),
        (["id"], "already has a column 'id'"),
        (["energy_per_atom", "energy_per_atom"], "more than once"),
        (["nope"], "no column 'nope' to carry"),
    ):
        with pytest.raises(ValueError, match=match):
            _run(table, out, carry=carry)
        assert not out.exists()
    with pytest.raises(ValueError, match="none of the inputs is one"):
        _run(one_cif, out, carry=["energy_per_atom"])
    with pytest.raises(ValueError, match="no column 'structure'"):
        _run(table, out, cif_column="structure")
    assert not out.exists()
    # the corrected command then runs in the same folder (nothing was written by the failed ones)
    _run(table, out, carry=["energy_per_atom"])
    assert basisdb.read_features(out).num_rows == 2


def test_cli_carry_errors_are_one_line(tmp_path, rows, one_cif):
    table = _write_csv(tmp_path / "n.csv", [dict(r, number="12") for r in rows[:2]], ["cif", "number"])
    for args in (
        [str(table), "--carry", "number"],
        [str(one_cif), "--carry", "energy"],
        [str(table), "--cif-column", "structure"],
    ):
        res = CliRunner().invoke(cli, ["featurize", *args, "-o", str(tmp_path / "x"), "-q"])
        assert res.exit_code != 0 and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
        assert not (tmp_path / "x").exists()


def test_column_types_come_from_every_row_and_every_input(tmp_path, rows):
    """A CSV column empty or whole numbers in its first rows and fractional later, another CSV with ints
    only, a Parquet file with int64: all carried as float64; text anywhere makes a CSV column a string;
    true/false a bool; a kind that differs between inputs is refused naming both."""
    r = rows[:6]
    a = _write_csv(
        tmp_path / "a.csv",
        [dict(x, y=v, flag=f, label=lab) for x, v, f, lab in zip(r[:3], ["", "2", "0.25"], ["true", "False", ""], ["1", "x", "2"])],
        ["material_id", "cif", "y", "flag", "label"],
    )  # fmt: skip
    b = _write_csv(
        tmp_path / "b.csv",
        [dict(x, y=v, flag="true", label="3") for x, v in zip(r[3:5], ["7", "8"])],
        ["material_id", "cif", "y", "flag", "label"],
    )
    import pyarrow.parquet as pq

    c = tmp_path / "c.parquet"
    pq.write_table(
        pa.table(
            {"material_id": [r[5]["material_id"]], "cif": [r[5]["cif"]], "y": pa.array([9], pa.int64())}
        ),
        c,
    )
    schema = _dataset_io.carry_schema(_dataset_io.expand_inputs([a, b]), ["y", "flag", "label"], "cif", None)
    assert [str(f.type) for f in schema] == ["double", "bool", "string"]
    t = _run([a, b], carry=["y", "flag", "label"], partition_size=2).features
    assert t.column("y").to_pylist() == [None, 2.0, 0.25, 7.0, 8.0]
    assert t.column("flag").to_pylist() == [True, False, None, True, True]
    assert t.column("label").to_pylist() == ["1", "x", "2", "3", "3"]  # b.csv's "3" is text here too
    t = _run([b, c], carry=["y"]).features
    assert t.column("y").to_pylist() == [7.0, 8.0, 9.0]
    s = tmp_path / "s.parquet"
    pq.write_table(pa.table({"cif": [r[5]["cif"]], "y": ["nine"]}), s)
    with pytest.raises(ValueError, match=r"'y' holds string in .*s\.parquet but int64 in the CSV input"):
        _run([s, b], carry=["y"])


def test_a_column_typed_only_after_the_first_block(tmp_path, monkeypatch):
    """The type is taken from all of a CSV file: a column whose first block (pyarrow reads 4 MiB at a
    time; here 64 bytes) is empty or integer and later fractional is float64 (it stopped the run before)."""
    path = tmp_path / "big.csv"
    lines = ["cif,y"] + ['"x",' for _ in range(30)] + ['"x",3'] * 30 + ['"x",0.5']
    path.write_text("\n".join(lines) + "\n")
    import pyarrow.csv as pcsv  # the readers fix the block size: patch pyarrow's ReadOptions

    plain = pcsv.ReadOptions

    def small_blocks(*args, **kw):
        kw["block_size"] = 64
        return plain(*args, **kw)

    monkeypatch.setattr(pcsv, "ReadOptions", small_blocks)
    schema = _dataset_io.carry_schema(_dataset_io.expand_inputs([path]), ["y"], "cif", None)
    assert str(schema.field("y").type) == "double"
    items = list(_dataset_io.iter_file_items(_dataset_io.expand_inputs([path]), carry_schema=schema))
    values = [row.column("y")[0].as_py() for _, row in items]
    assert values == [None] * 30 + [3.0] * 30 + [0.5]


def test_an_ase_frame_whose_value_has_another_type_fails_alone(tmp_path, rows):
    ase_io = pytest.importorskip("ase.io")
    from basisdb.structures import as_cell

    frames = []
    for i, r in enumerate(rows[:3]):
        from ase import Atoms

        lat, pos, z = as_cell(r["cif"])
        at = Atoms(numbers=z, scaled_positions=pos, cell=lat, pbc=True)
        at.info["target"] = "high" if i == 1 else 0.5 * i
        at.info["id"] = r["material_id"]
        frames.append(at)
    path = tmp_path / "f.extxyz"
    ase_io.write(path, frames)
    res = _run(path, carry=["target"])
    assert res.features.column("id").to_pylist() == [rows[0]["material_id"], rows[2]["material_id"]]
    assert res.features.column("target").to_pylist() == [0.0, 1.0]
    fails = res.failures.to_pylist()
    assert [f["id"] for f in fails] == [rows[1]["material_id"]]
    assert "--carry 'target' is 'high'" in fails[0]["error"] and fails[0]["error_type"] == "ValueError"
    assert res.summary["structures"] == 3


def test_reading_back_targets_and_columns(tmp_path, rows):
    """A missing target is NaN in the batch (not a crash mid-training); a text target, a target or column
    that is not there, and features asked of a dataset written without them are refused at once."""
    torch = pytest.importorskip("torch")
    table = _write_csv(
        tmp_path / "t.csv",
        [dict(r, y=v, name=f"n{i}") for i, (r, v) in enumerate(zip(rows[:3], ["1.5", "", "2"]))],
        ["material_id", "cif", "y", "name"],
    )
    out = tmp_path / "o"
    _run(table, out, carry=["y", "name"])
    ds = dataset.FeatureDataset(out, targets=["y"])
    batch = ds.collate([ds[i] for i in range(len(ds))])
    got = batch["targets"][:, 0]
    assert got[0] == 1.5 and torch.isnan(got[1]) and got[2] == 2.0
    with pytest.raises(ValueError, match="target 'name' holds string"):
        dataset.FeatureDataset(out, targets=["name"])
    with pytest.raises(ValueError, match="no column 'nope'"):
        dataset.FeatureDataset(out, targets=["nope"])
    with pytest.raises(ValueError, match="no column 'nope'"):
        basisdb.read_features(out, columns=["id", "nope"])
    with pytest.raises(ValueError, match="has no features"):
        dataset.FeatureDataset(out, with_features=True)


def test_featurize_many_ids_must_match(rows):
    cifs = [r["cif"] for r in rows[:3]]
    with pytest.raises(ValueError, match="ids has 2 entries but there are 3 structures"):
        basisdb.featurize_many(cifs, ids=["a", "b"], kmax=1, features=False)
    with pytest.raises(ValueError, match="ids ran out at structure 2"):
        basisdb.featurize_many(iter(cifs), ids=iter(["a", "b"]), kmax=1, features=False)
    res = basisdb.featurize_many(cifs, ids=["a", "b", "c"], kmax=1, features=False)
    assert res.features.column("id").to_pylist() == ["a", "b", "c"]


def test_ase_database_key_value_pairs_are_carried(tmp_path, rows):
    """An ASE database keeps targets and ids as key-value pairs: they are carried and named (ids from its
    'material_id' key), as ase.db itself reports them."""
    pytest.importorskip("ase")
    from ase import Atoms
    from ase.db import connect

    from basisdb.structures import as_cell

    db = connect(str(tmp_path / "c.db"))
    for r in rows[:3]:
        lat, pos, z = as_cell(r["cif"])
        db.write(
            Atoms(numbers=z, scaled_positions=pos, cell=lat, pbc=True),
            epa=float(r["energy_per_atom"]),
            material_id=r["material_id"],
        )
    res = _run(tmp_path / "c.db", carry=["epa"])
    want = {row.material_id: row.epa for row in connect(str(tmp_path / "c.db")).select()}
    got = dict(zip(res.features.column("id").to_pylist(), res.features.column("epa").to_pylist()))
    assert got == want and len(got) == 3


def test_compressed_csv_and_binary_cif_column(tmp_path, rows):
    """A .csv.gz table is read as CSV (pyarrow decompresses it); a Parquet CIF column stored as binary is
    read as UTF-8 text: the same rows as the plain inputs."""
    import gzip

    import pyarrow.parquet as pq

    plain = _write_csv(tmp_path / "t.csv", rows[:3], ["material_id", "cif", "energy_per_atom"])
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    binary = tmp_path / "b.parquet"
    pq.write_table(
        pa.table(
            {
                "material_id": [r["material_id"] for r in rows[:3]],
                "cif": pa.array([r["cif"].encode() for r in rows[:3]], pa.binary()),
            }
        ),
        binary,
    )
    want = _run(plain).features
    for path in (gz, binary):
        got = _run(path).features
        assert got.column("id").to_pylist() == want.column("id").to_pylist()
        assert got.column("positions").to_pylist() == want.column("positions").to_pylist()


def test_csv_text_is_kept_and_numbers_are_trimmed(tmp_path, rows):
    """CSV ids and text cells stay as written ('NA', 'null' are ids and labels, not missing values); in a
    numeric column blanks around a number are ignored and the null spellings are missing; integers stay
    int64."""
    r = rows[:4]
    path = _write_csv(
        tmp_path / "t.csv",
        [dict(x, material_id=i, n=v, label=lab) for x, i, v, lab in zip(r, ["NA", "null", "nan", "x4"], [" 3 ", "NA", "7", "8"], ["NA", "null", "b", ""])],
        ["material_id", "cif", "n", "label"],
    )  # fmt: skip
    t = _run(path, carry=["n", "label"]).features
    assert t.column("id").to_pylist() == ["NA", "null", "nan", "x4"]
    assert t.schema.field("n").type == pa.int64() and t.column("n").to_pylist() == [3, None, 7, 8]
    assert t.column("label").to_pylist() == ["NA", "null", "b", None]


def test_parquet_types_are_carried(tmp_path, rows):
    """Parquet columns keep what they hold: big integers exactly (int64), categoricals as text,
    timestamps and nested lists as they are; integers and floats of two inputs become float64."""
    import datetime

    import pyarrow.parquet as pq

    r = rows[:2]
    big = [2**60, 2**60 + 1]
    table = pa.table(
        {
            "cif": [x["cif"] for x in r],
            "big": pa.array(big, pa.int64()),
            "cat": pa.array(["a", "b"]).dictionary_encode(),
            "when": pa.array(
                [datetime.datetime(2020, 1, 1), datetime.datetime(2020, 1, 2)], pa.timestamp("us")
            ),
            "stress": pa.array([[[1.0, 2.0], [3.0, 4.0]]] * 2, pa.list_(pa.list_(pa.float64()))),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    t = _run(path, carry=["big", "cat", "when", "stress"]).features
    assert t.column("big").to_pylist() == big
    assert t.schema.field("cat").type == pa.string() and t.column("cat").to_pylist() == ["a", "b"]
    assert t.column("when").to_pylist() == table.column("when").to_pylist()
    assert t.column("stress").to_pylist() == table.column("stress").to_pylist()
    floats = tmp_path / "f.parquet"
    pq.write_table(pa.table({"cif": [r[0]["cif"]], "big": [0.5]}), floats)
    t = _run([path, floats], carry=["big"]).features
    assert t.schema.field("big").type == pa.float64() and t.column("big").to_pylist() == [
        float(2**60),
        float(2**60),
        0.5,
    ]
