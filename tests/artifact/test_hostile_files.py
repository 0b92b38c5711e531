"""No unsafe loading: hostile artifacts crafted with h5py give ArtifactError, never a crash,
a huge allocation or silently wrong numbers.

The payload tests recompute the per-setting SHA-256 (``basisdb._format.payload_sha256``)
and, where needed, the index row, so that the checksum matches the hostile content: what
refuses these files is the reader's structural validation, not the hash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest

import basisdb
from basisdb._format import INDEX_INTEGERS, INDEX_STRINGS, PAYLOAD_FIELDS, payload_sha256
from basisdb.builder import build_database
from basisdb.builder.writer import write_dataset

REPO = Path(__file__).resolve().parents[2]
HALLS = [1, 2, 81, 523]
KMAX = 2


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "good.h5"
    build_database(path, kmax=KMAX, halls=HALLS, jobs=1)
    return path


@pytest.fixture
def copy(good, tmp_path):
    """A fresh copy of the good artifact for one test to damage."""
    counter = iter(range(1000))

    def make() -> Path:
        p = tmp_path / f"hostile{next(counter)}.h5"
        shutil.copyfile(good, p)
        return p

    return make


def _open_all(path: Path) -> None:
    """Everything a user would do: open, look every setting up, evaluate, verify."""
    with basisdb.open(path) as db:
        for s in db.settings():
            db.get(hall=s.hall_number).evaluate(np.zeros((2, 3)))
        db.verify(invariance_points=2)


def _refused(path: Path, pattern: str, max_alloc: int = 20 * 2**20) -> str:
    """The file is refused with an ArtifactError matching ``pattern``, allocating < ``max_alloc``."""
    tracemalloc.start()
    try:
        with pytest.raises(basisdb.ArtifactError) as info:
            _open_all(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert str(path) in message, message
    assert re.search(pattern, message, re.S), message
    assert peak < max_alloc, f"refusing the file allocated {peak / 2**20:.0f} MiB"
    return message


# --------------------------------------------------------------------------- crafting helpers
def _replace(group: h5py.Group, name: str, data: np.ndarray, *, checked: bool = True) -> None:
    """Replace a dataset by ``data`` (same storage options as the writer when ``checked``)."""
    attrs = dict(group[name].attrs) if name in group else {}
    if name in group:
        del group[name]
    if checked:
        ds = write_dataset(group, name, np.asarray(data))
    else:
        ds = group.create_dataset(name, data=data)
    for k, v in attrs.items():
        ds.attrs[k] = v


def _set_row(f: h5py.File, hall: int, **values) -> None:
    """Change columns of one setting's row in the index tables."""
    ints, strs = f["index/integers"][()], f["index/strings"][()]
    row = int(np.flatnonzero(ints[:, 0] == hall)[0])
    for name, value in values.items():
        if name in INDEX_INTEGERS:
            ints[row, INDEX_INTEGERS.index(name)] = value
        else:
            strs[row, INDEX_STRINGS.index(name)] = value.encode("ascii")
    _replace(f["index"], "integers", ints)
    _replace(f["index"], "strings", strs)


def _rewrite_payload(path: Path, hall: int, fix_index: bool = True, **arrays) -> None:
    """Replace payload arrays of ``hall`` and recompute its SHA-256 (and sizes) in the index."""
    with h5py.File(path, "r+") as f:
        g = f[f"settings/{hall}"]
        payload = {name: g[name][()] for name in PAYLOAD_FIELDS}
        for name, value in arrays.items():
            payload[name] = np.asarray(value)
            _replace(g, name, payload[name])
        row = {"sha256": payload_sha256(payload)}
        if fix_index:
            row.update(
                n_orbits=len(payload["orbit_ptr"]) - 1,
                n_frequencies=len(payload["frequencies"]),
                n_extinct=len(payload["extinct"]),
                order=len(payload["rotations"]),
            )
        _set_row(f, hall, **row)


def _payload(good: Path, hall: int) -> dict[str, np.ndarray]:
    with h5py.File(good, "r") as f:
        return {name: f[f"settings/{hall}/{name}"][()] for name in PAYLOAD_FIELDS}


# --------------------------------------------------------------------------- sanity
def test_good_file_passes(good):
    _open_all(good)


def test_rewrite_helper_keeps_a_good_file_good(good, copy):
    p = copy()
    arrays = _payload(good, 81)
    _rewrite_payload(p, 81, **arrays)  # same content, rewritten with a recomputed hash
    _open_all(p)


# --------------------------------------------------------------------------- root attributes
@pytest.mark.parametrize(
    "name, value, pattern",
    [
        ("kmax", "8", r"'kmax' must be an integer scalar, got string"),
        ("kmax", np.float64(2.0), r"'kmax' must be an integer scalar, got float"),
        ("kmax", np.int64(10**6), r"'kmax' = 1000000 is outside 1..127"),
        ("kmax", np.int64(-(2**62)), r"'kmax' = -\d+ is outside 1..127"),
        (
            "kmax",
            np.zeros(10**6, dtype=np.int32),
            r"'kmax' must be an integer scalar, got integer of shape \(1000000,\)",
        ),
        (
            "format_version",
            np.array([1, 1], dtype=np.int32),
            r"'format_version' must be an integer scalar, got integer of shape \(2,\)",
        ),
        ("format_version", np.int32(0), r"unknown format version 0"),
        (
            "format_version",
            np.int32(2**31 - 1),
            r"format version 2147483647 is newer than this basisdb supports",
        ),
        ("format", np.int32(1), r"'format' must be a string scalar, got integer"),
        ("format", "basisdc", r"not a basisdb artifact"),
        ("format", ["basisdb", "basisdb"], r"'format' must be a string scalar, got string of shape \(2,\)"),
        ("denominator", np.int32(0), r"'denominator' = 0 is outside"),
        ("n_settings", np.int32(5), r"'n_settings' = 5 but /index has 4 rows"),
        ("n_settings", "4", r"'n_settings' must be an integer scalar"),
        ("conventions", "x\x01\x02y", r"'conventions' is not printable ASCII"),
        ("builder_version", "0.1\x7f", r"'builder_version' is not printable ASCII"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_bad_root_attribute(copy, name, value, pattern):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f.attrs[name]
        f.attrs[name] = value
    _refused(p, pattern)


@pytest.mark.parametrize("name", ["format_version", "kmax", "denominator", "n_settings"])
def test_missing_root_attribute(copy, name):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f.attrs[name]
    _refused(p, rf"missing root attribute '{name}'")


# --------------------------------------------------------------------------- index tables
def test_index_with_absurd_declared_rows(copy):
    """/index/integers declared (10**9, 7) in chunked, unwritten storage: refused before reading."""
    p = copy()
    with h5py.File(p, "r+") as f:
        cols = f["index/integers"].attrs["columns"]
        del f["index/integers"]
        ds = f["index"].create_dataset("integers", shape=(10**9, 7), dtype="i4", chunks=(1024, 7))
        ds.attrs["columns"] = cols
    _refused(p, r"/index/integers has an absurd number of rows 1000000000")


@pytest.mark.parametrize(
    "table, data, pattern",
    [
        ("integers", np.zeros((4, 7), dtype=np.float64), r"/index/integers has unexpected dtype float64"),
        (
            "integers",
            np.zeros((4, 6), dtype=np.int32),
            r"/index/integers is missing or not an \(n, 7\) table",
        ),
        ("integers", np.zeros((4, 7, 1), dtype=np.int32), r"not an \(n, 7\) table"),
        (
            "strings",
            np.array([["x"] * 8] * 4, dtype=h5py.string_dtype()),
            r"/index/strings has unexpected dtype object",
        ),
        ("strings", np.zeros((4, 8), dtype="S1000"), r"/index/strings has unexpected dtype \|S1000"),
    ],
    ids=["float-ints", "six-columns", "3-d", "vlen-strings", "huge-strings"],
)
def test_index_wrong_dtype_or_shape(copy, table, data, pattern):
    p = copy()
    with h5py.File(p, "r+") as f:
        _replace(f["index"], table, data, checked=False)
    _refused(p, pattern)


def test_index_table_is_a_group(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["index/integers"]
        f["index"].create_group("integers")
    _refused(p, r"/index/integers is missing or not an \(n, 7\) table")


def test_index_columns_attribute_is_an_array(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        f["index/integers"].attrs["columns"] = np.array(list(INDEX_INTEGERS), dtype=h5py.string_dtype())
    _refused(p, r"/index/integers has columns .* expected 'hall_number,number")


@pytest.mark.parametrize(
    "column, value, pattern",
    [
        ("hall_number", 999, r"hall_number outside 1..530"),
        ("number", 0, r"number outside 1..230"),
        ("order", 10**6, r"order outside 1..192"),
        ("n_frequencies", 10**9, r"n_frequencies \+ n_extinct outside 1..125"),
        ("n_extinct", -5, r"n_frequencies \+ n_extinct outside"),
        ("n_orbits", 0, r"n_orbits outside 1..n_frequencies"),
        ("is_default", 7, r"is_default not 0 or 1"),
    ],
)
def test_index_impossible_values(copy, column, value, pattern):
    p = copy()
    with h5py.File(p, "r+") as f:
        ints = f["index/integers"][()]
        ints[-1, INDEX_INTEGERS.index(column)] = value
        _replace(f["index"], "integers", ints)
    _refused(p, pattern)


def test_index_not_increasing(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        ints = f["index/integers"][()]
        ints[[0, 1]] = ints[[1, 0]]
        _replace(f["index"], "integers", ints)
    _refused(p, r"hall_number column is not strictly increasing")


def test_sha256_column_tampered(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        _set_row(f, 81, sha256="0" * 64)
    _refused(p, r"setting 81 fails its SHA-256 check")


# --------------------------------------------------------------------------- payload shapes and dtypes
@pytest.mark.parametrize("rows", [10**12, 10**6, 1000])
def test_payload_with_absurd_declared_shape(copy, rows):
    """frequencies declared (rows, 3) in chunked, mostly unwritten storage: refused before reading."""
    p = copy()
    with h5py.File(p, "r+") as f:
        g = f["settings/1"]
        del g["frequencies"]
        ds = g.create_dataset("frequencies", shape=(rows, 3), dtype="i1", chunks=(64, 3), fillvalue=0)
        ds[:64] = 1
    _refused(p, rf"/settings/1/frequencies has an absurd length {rows} \(at most 192 at kmax=2\)")


@pytest.mark.parametrize(
    "field, data, pattern",
    [
        (
            "frequencies",
            np.zeros((125, 3), dtype=np.int16),
            r"/settings/1/frequencies has shape \(125, 3\) dtype int16",
        ),
        ("frequencies", np.zeros((125, 4), dtype=np.int8), r"/settings/1/frequencies has shape \(125, 4\)"),
        ("phases", -np.ones(125, dtype=np.int8), r"/settings/1/phases has shape \(125,\) dtype int8"),
        (
            "orbit_ptr",
            np.arange(126, dtype=np.float64),
            r"/settings/1/orbit_ptr has shape \(126,\) dtype float64",
        ),
        ("rotations", np.eye(3, dtype=np.int8), r"/settings/1/rotations has shape \(3, 3\)"),
        (
            "translations",
            np.array([["0", "0", "0"]], dtype=h5py.string_dtype()),
            r"/settings/1/translations has shape \(1, 3\) dtype object",
        ),
    ],
    ids=[
        "int16-freqs",
        "4-columns",
        "negative-phases-int8",
        "float-ptr",
        "2-d-rotations",
        "string-translations",
    ],
)
def test_payload_wrong_dtype_or_shape(copy, field, data, pattern):
    p = copy()
    with h5py.File(p, "r+") as f:
        _replace(f["settings/1"], field, data, checked=False)
    _refused(p, pattern)


def test_payload_group_missing(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["settings/81"]
    _refused(p, r"setting 81 is listed but /settings/81 is missing")


def test_payload_dataset_missing(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["settings/81/phases"]
    _refused(p, r"/settings/81/phases is missing")


def test_payload_dataset_is_a_group(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["settings/81/phases"]
        f["settings/81"].create_group("phases")
    _refused(p, r"/settings/81/phases is missing")


def test_external_link_is_not_followed(copy, good, tmp_path):
    """A setting that is an external link into another file is refused, not followed."""
    other = tmp_path / "elsewhere.h5"
    shutil.copyfile(good, other)
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["settings/81"]
        f["settings/81"] = h5py.ExternalLink(str(other), "/settings/81")
    _refused(p, r"/settings/81 is an external link, not an object of the file")


def test_soft_link_is_not_followed(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        del f["settings/81/phases"]
        f["settings/81/phases"] = h5py.SoftLink("/settings/2/phases")
    _refused(p, r"/settings/81/phases is a soft link, not an object of the file")


def test_external_raw_storage_is_refused(copy, good, tmp_path):
    """A dataset whose bytes live in another file (HDF5 external storage) is refused unread."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes(range(256)) * 4)
    p = copy()
    with h5py.File(p, "r+") as f:
        g = f["settings/1"]
        del g["phases"]
        g.create_dataset("phases", shape=(125,), dtype="u1", external=[(str(secret), 0, 125)])
    _refused(p, r"/settings/1/phases keeps its data outside the file")


# --------------------------------------------------------------------------- payload content with a matching hash
def _ptr_and_phases(good):
    a = _payload(good, 81)
    return a, a["orbit_ptr"].copy(), a["phases"].copy()


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        ("ptr_last_out_of_range", r"orbit_ptr is not strictly increasing from 0 to \d+"),
        ("ptr_non_monotonic", r"orbit_ptr is not strictly increasing"),
        ("ptr_not_from_zero", r"orbit_ptr is not strictly increasing from 0"),
        ("phase_24", r"a phase numerator is outside 0..23"),
        ("phase_255", r"a phase numerator is outside 0..23"),
        ("first_phase_nonzero", r"the first member of an orbit has a non-zero phase"),
        ("frequency_beyond_kmax", r"a frequency lies outside the box \|h\|,\|k\|,\|l\| <= 2"),
        ("frequency_int8_min", r"a frequency lies outside the box"),
        ("extinct_beyond_kmax", r"a frequency lies outside the box"),
        ("duplicate_frequency", r"a frequency is stored twice|not closed under k -> -k"),
        ("extinct_overlaps", r"a frequency is stored twice"),
        ("not_closed_under_negation", r"not closed under k -> -k"),
        ("translation_24", r"a translation numerator is outside 0..23"),
        ("rotation_det_2", r"a rotation is not unimodular"),
        ("rotation_singular", r"a rotation is not unimodular"),
        ("identity_missing", r"the identity operation is missing"),
        ("no_orbits", r"orbit_ptr has 1 rows|no basis functions"),
    ],
)
def test_payload_structure_with_matching_hash(good, copy, mutate, pattern):
    a, ptr, ph = _ptr_and_phases(good)
    hall = 81
    F, E, R, T = a["frequencies"].copy(), a["extinct"].copy(), a["rotations"].copy(), a["translations"].copy()
    new: dict[str, np.ndarray] = {}
    if mutate == "ptr_last_out_of_range":
        ptr[-1] += 5
        new["orbit_ptr"] = ptr
    elif mutate == "ptr_non_monotonic":
        ptr[2], ptr[3] = ptr[3], ptr[2]
        new["orbit_ptr"] = ptr
    elif mutate == "ptr_not_from_zero":
        ptr[0] = -1
        new["orbit_ptr"] = ptr
    elif mutate == "phase_24":
        ph[5] = 24
        new["phases"] = ph
    elif mutate == "phase_255":
        ph[-1] = 255
        new["phases"] = ph
    elif mutate == "first_phase_nonzero":
        ph[ptr[3]] = 6
        new["phases"] = ph
    elif mutate == "frequency_beyond_kmax":
        F[7, 1] = KMAX + 3
        new["frequencies"] = F
    elif mutate == "frequency_int8_min":
        F[7, 1] = -128
        new["frequencies"] = F
    elif mutate == "extinct_beyond_kmax":
        E[0, 0] = 100
        new["extinct"] = E
    elif mutate == "duplicate_frequency":
        F[8] = F[9]
        new["frequencies"] = F
    elif mutate == "extinct_overlaps":
        E[0] = F[5]
        new["extinct"] = E
    elif mutate == "not_closed_under_negation":  # P 1: drop the orbit {k}, keep {-k}
        hall, b = 1, _payload(good, 1)
        new.update(frequencies=b["frequencies"][:-1], phases=b["phases"][:-1], orbit_ptr=b["orbit_ptr"][:-1])
    elif mutate == "translation_24":
        T[1, 0] = 24
        new["translations"] = T
    elif mutate == "rotation_det_2":
        R[1] = np.diag([2, 1, 1])
        new["rotations"] = R
    elif mutate == "rotation_singular":
        R[1] = 0
        new["rotations"] = R
    elif mutate == "identity_missing":
        R[0] = -np.eye(3, dtype=np.int8)
        new["rotations"] = R
    elif mutate == "no_orbits":
        new.update(frequencies=F[:0], phases=ph[:0], orbit_ptr=ptr[:1])
    p = copy()
    _rewrite_payload(p, hall, **new)
    if mutate == "no_orbits":  # the index itself then claims 0 orbits: refused as impossible at open
        pattern += r"|n_orbits outside|n_frequencies \+ n_extinct outside"
    _refused(p, pattern)


def test_payload_rows_disagree_with_index(good, copy):
    """A hash-consistent payload whose extinct list is shorter than its index row says."""
    p = copy()
    _rewrite_payload(p, 81, fix_index=False, extinct=_payload(good, 81)["extinct"][:-1])
    _refused(p, r"setting 81 is inconsistent: extinct has \d+ rows, the index says \d+")


# --------------------------------------------------------------------------- resource hygiene
def test_refused_file_is_closed_so_a_rewrite_is_seen(good, tmp_path):
    """A file refused at open is closed: HDF5 would otherwise serve its cached content to the
    next open of the same path, even after the file was rewritten in place."""
    p = tmp_path / "x.h5"
    shutil.copyfile(good, p)
    with h5py.File(p, "r+") as f:
        f.attrs["format_version"] = np.int32(3)
    with pytest.raises(basisdb.ArtifactError, match="newer") as info:
        basisdb.open(p)
    p.write_bytes(good.read_bytes())  # same inode, good content; keep ``info`` (and its frames) alive
    with basisdb.open(p) as db:
        assert db.format_version == 2
    assert info.value is not None


# --------------------------------------------------------------------------- no pickle / eval / exec
def test_no_unsafe_loading_in_the_library():
    """The reader and builder never unpickle, eval or exec anything (file content included)."""
    pattern = re.compile(
        r"\b(pickle\.loads?|cPickle|marshal\.loads?|shelve\.|dill\.|eval\(|exec\(|yaml\.load\(|"
        r"numpy\.load\(|np\.load\(|allow_pickle\s*=\s*True)|(?<![\w.])compile\("
    )
    # the one exception: the dataset watchdog exchanges its partitions with its own forked child over an
    # anonymous pipe (the same process image on both ends; never file content): pickle.loads only, there
    allowed = {"basisdb/_watchdog.py": re.compile(r"\bpickle\.loads\(")}
    offenders = []
    for folder in ("basisdb", "build/builder"):
        for py in sorted((REPO / folder).rglob("*.py")):
            rel = py.relative_to(REPO).as_posix()
            for n, line in enumerate(py.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if rel in allowed:
                    code = allowed[rel].sub("", code)
                if pattern.search(code):
                    offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == [], offenders
    # and there it reads only from the pipes it created (no file or socket is ever unpickled)
    watchdog = (REPO / "basisdb" / "_watchdog.py").read_text()
    assert "open(" not in watchdog and "socket" not in watchdog


def test_h5py_object_dtypes_never_reach_the_reader(copy):
    """Object (vlen) payloads are refused by dtype before any conversion of their content."""
    p = copy()
    with h5py.File(p, "r+") as f:
        _replace(
            f["settings/2"],
            "phases",
            np.array(["__import__('os')"] * 125, dtype=h5py.string_dtype()),
            checked=False,
        )
    _refused(p, r"/settings/2/phases has shape \(125,\) dtype object")


def test_cli_verify_on_hostile_file_is_one_line(copy):
    p = copy()
    with h5py.File(p, "r+") as f:
        f.attrs["kmax"] = np.int64(10**6)
    proc = subprocess.run(
        [sys.executable, "-m", "basisdb", "verify", str(p)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("basisdb: error: ") and "kmax" in lines[0], lines
