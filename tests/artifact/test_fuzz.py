"""Damaged artifacts: single-byte corruption and truncation never give wrong numbers silently.

A small artifact (10 settings, K = 2, plus the plane groups the builder writes) is
damaged one byte at a time at random offsets (fixed seed).  Half of the flips land in
the stored bytes of a dataset chunk (offsets and sizes from h5py's
``dataset.id.get_chunk_info``), the other half anywhere in the file.  For each damaged
copy, ``basisdb.open`` + ``verify()`` + ``get`` of every setting must either raise a
clear error (ArtifactError / OSError / ValueError with a message) or return exactly the
undamaged numbers and metadata.  Every flip inside a dataset chunk must be detected
(by Fletcher-32 or the per-setting SHA-256), and ``basisdb verify`` must report it in
one line with exit status 1.  Truncated copies must be refused.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import basisdb
from basisdb.builder import build_database

HALLS = [1, 2, 14, 81, 460, 461, 488, 523, 526, 530]  # > 8 settings: /settings uses dense link storage
KMAX = 2
N_FLIPS = 200
SEED = 20261127
FIELDS = ("frequencies", "orbit_ptr", "phases", "extinct", "rotations", "translations")
ALLOWED = (basisdb.ArtifactError, OSError, ValueError)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "small.h5"
    build_database(path, kmax=KMAX, halls=HALLS, jobs=1)
    return path


def _chunks(path: Path) -> list[tuple[str, int, int]]:
    """(dataset name, byte offset, stored size) of every written chunk in the file."""
    out = []
    with h5py.File(path, "r") as f:

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.chunks is not None:
                for i in range(obj.id.get_num_chunks()):
                    info = obj.id.get_chunk_info(i)
                    out.append((name, int(info.byte_offset), int(info.size)))

        f.visititems(visit)
    return sorted(out, key=lambda c: c[1])


def _snapshot(db: basisdb.Database) -> dict:
    """Everything a user gets out of the file: metadata and the exact arrays of every setting."""
    out = {"kmax": db.kmax, "denominator": db.denominator, "settings": db.settings()}
    for s in db.settings():
        b = db.get(hall=s.hall_number)
        out[s.hall_number] = tuple(getattr(b, n).tobytes() for n in FIELDS)
    if hasattr(db, "plane_groups"):
        out["plane_groups"] = db.plane_groups()
        for g in out["plane_groups"]:
            b = db.get(plane=g.number)
            out[("plane", g.number)] = tuple(getattr(b, n).tobytes() for n in FIELDS)
    return out


def _read_all(path: Path, verify: bool = True):
    """(snapshot, None) or (None, exception) for the file at ``path``."""
    try:
        with basisdb.open(path) as db:
            if verify:
                db.verify(invariance_points=2)
            return _snapshot(db), None
    except ALLOWED as exc:
        return None, exc


def _assert_clear(exc: BaseException, where: str) -> None:
    assert isinstance(exc, ALLOWED), f"{where}: unexpected {type(exc).__name__}: {exc}"
    message = str(exc)
    assert message and len(message) > 10, f"{where}: empty error message"
    if isinstance(exc, basisdb.ArtifactError):
        assert "Traceback" not in message


def test_chunk_map_covers_all_payloads(artifact):
    chunks = _chunks(artifact)
    names = {name for name, _, _ in chunks}
    for hall in HALLS:
        for field in ("frequencies", "orbit_ptr", "phases", "rotations", "translations"):
            assert f"settings/{hall}/{field}" in names
    assert {"index/integers", "index/strings"} <= names
    size = artifact.stat().st_size
    assert all(off > 0 and off + n <= size for _, off, n in chunks)


def test_single_byte_flips(artifact, tmp_path):
    """~200 single-byte flips: every chunk flip detected, no other flip changes any number."""
    from click.testing import CliRunner

    from basisdb.cli import cli

    t0 = time.monotonic()
    data = artifact.read_bytes()
    ref, err = _read_all(artifact)
    assert err is None, err
    chunks = _chunks(artifact)
    rng = np.random.default_rng(SEED)
    stats = {"chunk": 0, "chunk_detected": 0, "other": 0, "other_detected": 0, "other_identical": 0}
    problems = []
    for i in range(N_FLIPS):
        in_chunk = i % 2 == 0
        if in_chunk:
            name, off, size = chunks[rng.integers(len(chunks))]
            pos = off + int(rng.integers(size))
        else:
            pos = int(rng.integers(len(data)))
            name = next((n for n, o, s in chunks if o <= pos < o + s), None)
        buf = bytearray(data)
        buf[pos] ^= int(rng.integers(1, 256))
        # a new file (inode) per flip: HDF5 shares one open file between all handles of an
        # inode, so a handle still open elsewhere would serve the previous copy's cached chunks
        damaged = tmp_path / f"damaged{i}.h5"
        damaged.write_bytes(bytes(buf))
        got, exc = _read_all(damaged)
        where = f"flip #{i} at byte {pos} ({name or 'metadata/other'})"
        if exc is not None:
            _assert_clear(exc, where)
        if name is not None:  # inside a chunk: must be detected
            stats["chunk"] += 1
            if exc is None:
                problems.append(f"{where}: not detected")
            else:
                stats["chunk_detected"] += 1
                if i % 10 == 0:  # and `basisdb verify` says so in one line
                    res = CliRunner().invoke(cli, ["verify", str(damaged)], prog_name="basisdb")
                    assert res.exit_code == 1 and res.stdout == "", (where, res.output)
                    lines = res.stderr.splitlines()
                    assert len(lines) == 1 and lines[0].startswith("basisdb: error: "), (where, lines)
        else:
            stats["other"] += 1
            if exc is not None:
                stats["other_detected"] += 1
            elif got == ref:
                stats["other_identical"] += 1
            else:
                problems.append(f"{where}: DIFFERENT NUMBERS RETURNED SILENTLY")
        damaged.unlink()
    print(f"\nfuzz: {stats}, {time.monotonic() - t0:.1f} s")
    assert not problems, problems
    assert stats["chunk"] >= N_FLIPS // 2
    assert stats["chunk_detected"] == stats["chunk"]  # 100 %


@pytest.mark.parametrize("field", FIELDS[:3] + FIELDS[4:])
def test_every_payload_byte_of_one_setting(artifact, tmp_path, field):
    """Exhaustive over the stored bytes of one setting's datasets: each flip is detected."""
    data = artifact.read_bytes()
    ((name, off, size),) = [c for c in _chunks(artifact) if c[0] == f"settings/81/{field}"]
    damaged = tmp_path / "d.h5"
    missed = []
    for pos in range(off, off + size):
        buf = bytearray(data)
        buf[pos] ^= 0x01 if pos % 2 else 0x80
        damaged.write_bytes(bytes(buf))
        try:
            with basisdb.open(damaged) as db:
                db.get(hall=81)
        except ALLOWED as exc:
            _assert_clear(exc, f"byte {pos}")
            continue
        missed.append(pos)
    assert missed == [], f"flips in {name} not detected at bytes {missed}"


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, -1])
def test_truncated(artifact, tmp_path, fraction):
    data = artifact.read_bytes()
    n = len(data) - 1 if fraction == -1 else int(len(data) * fraction)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[:n])
    got, exc = _read_all(cut)
    assert got is None, f"a file truncated to {n} of {len(data)} bytes was accepted"
    assert isinstance(exc, basisdb.ArtifactError), exc
    assert str(cut) in str(exc)


def test_appended_garbage_is_harmless_or_refused(artifact, tmp_path):
    """Bytes appended after the end of the HDF5 data: refused or read identically."""
    longer = tmp_path / "longer.h5"
    longer.write_bytes(artifact.read_bytes() + os.urandom(1000))
    ref, _ = _read_all(artifact)
    got, exc = _read_all(longer)
    assert exc is not None or got == ref
