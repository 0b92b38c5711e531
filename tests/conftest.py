"""Shared fixtures and independent helpers for the basisdb test-suite.

Nothing here uses basisdb's own operation tables or index helpers: the
references (spglib's database, plain numpy arithmetic) are independent of the
artifact, so tests comparing against them can fail.
"""

from __future__ import annotations

import os
from functools import cache

import numpy as np
import pytest

# cctbx must be imported before gemmi in one process, or it crashes (GUIDE section 3).
try:  # pragma: no cover - depends on the environment
    import cctbx  # noqa: F401
    from cctbx import sgtbx  # noqa: F401
except ImportError:  # cctbx tests skip themselves with pytest.importorskip
    pass

import spglib

import basisdb

if hasattr(spglib, "error") and hasattr(spglib.error, "OLD_ERROR_HANDLING"):
    spglib.error.OLD_ERROR_HANDLING = False

#: every spglib Hall setting
ALL_HALLS = tuple(range(1, 531))

#: settings checked at the artifact's full cut-off K = 8
SPOT_HALLS = (
    1,  # P 1
    2,  # P -1
    81,  # P 1 21/c 1
    460,  # R -3 c :H
    461,  # R -3 c :R
    488,  # P 63/m m c
    523,  # F m -3 m
    525,  # F d -3 m :1
    526,  # F d -3 m :2
    530,  # I a -3 d
)

#: common denominator of the stored translations (checked against the artifact in the tests)
DEN = 24


@pytest.fixture(scope="module")
def shipped():
    """The shipped artifact, opened with $BASISDB_PATH ignored."""
    old = os.environ.pop("BASISDB_PATH", None)
    try:
        database = basisdb.open()
    finally:
        if old is not None:
            os.environ["BASISDB_PATH"] = old
    yield database
    database.close()


@pytest.fixture(scope="session")
def db():
    return basisdb.open()


@pytest.fixture(scope="session")
def all_halls():
    return range(1, 531)


@cache
def spglib_operations(hall: int) -> tuple[np.ndarray, np.ndarray]:
    """spglib's full operation list of ``hall`` (centring included).

    Returns ``(rotations int64 (n, 3, 3), translations float64 (n, 3))`` of
    x -> R x + t, read-only.
    """
    sym = spglib.get_symmetry_from_database(int(hall))
    rot = np.array(sym["rotations"], dtype=np.int64)
    tra = np.array(sym["translations"], dtype=np.float64)
    rot.setflags(write=False)
    tra.setflags(write=False)
    return rot, tra


def spglib_exact_operations(hall: int) -> tuple[np.ndarray, np.ndarray]:
    """spglib's operations with translations as integer numerators over 24, reduced mod 24."""
    rot, tra = spglib_operations(hall)
    num = np.rint(tra * DEN).astype(np.int64)
    assert np.allclose(num, tra * DEN, atol=1e-9), f"hall {hall}: translation not a multiple of 1/{DEN}"
    return rot, num % DEN


@pytest.fixture(scope="session")
def spglib_ops():
    """The helper ``spglib_operations(hall) -> (rotations, float translations)``."""
    return spglib_operations


# ---------------------------------------------------------------- plain numpy references
def box(kmax: int) -> np.ndarray:
    """All frequencies with |h|,|k|,|l| <= kmax, (n, 3) int64 (any order)."""
    r = np.arange(-kmax, kmax + 1)
    return np.array(np.meshgrid(r, r, r, indexing="ij")).reshape(3, -1).T.astype(np.int64)


def flat_index(freqs: np.ndarray, kmax: int) -> np.ndarray:
    """Row-major index ((h+K)n + (k+K))n + (l+K) of (..., 3) frequencies inside the box."""
    f = np.asarray(freqs, dtype=np.int64) + kmax
    n = 2 * kmax + 1
    return (f[..., 0] * n + f[..., 1]) * n + f[..., 2]


def closed_set(rotations: np.ndarray, kmax: int) -> np.ndarray:
    """Box frequencies k whose every image R^T k (R in ``rotations``) stays inside the box."""
    b = box(kmax)
    images = np.einsum("ni,gij->gnj", b, rotations)  # row k^T R == (R^T k)^T
    keep = np.all(np.abs(images) <= kmax, axis=(0, 2))
    return b[keep]


def env_without_artifact_override() -> dict[str, str]:
    """os.environ for a subprocess, without $BASISDB_PATH (so it uses the shipped artifact)."""
    env = dict(os.environ)
    env.pop("BASISDB_PATH", None)
    return env
