"""Structural validation of what the reader takes from an artifact.

The checksums (Fletcher-32 per chunk, SHA-256 per setting) catch damage.  These
checks catch a *hostile or buggy writer*: a file whose hashes match its content but
whose content breaks the format's promises (docs/FORMAT.md sections 3-5).  Every
failure is an ``ArtifactError`` that names the file, the setting and the broken rule;
nothing here allocates more than the (already bounded) arrays it is given.
"""

from __future__ import annotations

import numpy as np

from ._boxindex import box_index
from ._constants import MAX_ORDER, N_PLANE_GROUPS, N_SETTINGS, N_SPACE_GROUPS
from ._errors import ArtifactError

__all__ = ["check_index", "check_payload"]


def _det(r: np.ndarray) -> np.ndarray:
    """Exact integer determinants of a stack of 2x2 or 3x3 integer matrices."""
    r = r.astype(np.int64)
    if r.shape[1:] == (2, 2):
        return r[:, 0, 0] * r[:, 1, 1] - r[:, 0, 1] * r[:, 1, 0]
    return (
        r[:, 0, 0] * (r[:, 1, 1] * r[:, 2, 2] - r[:, 1, 2] * r[:, 2, 1])
        - r[:, 0, 1] * (r[:, 1, 0] * r[:, 2, 2] - r[:, 1, 2] * r[:, 2, 0])
        + r[:, 0, 2] * (r[:, 1, 0] * r[:, 2, 1] - r[:, 1, 1] * r[:, 2, 0])
    )


def check_index(
    path, table: str, ints: np.ndarray, columns: tuple[str, ...], kmax: int, dim: int = 3
) -> None:
    """Value ranges of an integer index table (``/index/integers`` or ``/index_plane/integers``)."""
    col = {name: ints[:, i] for i, name in enumerate(columns)}
    nbox = (2 * kmax + 1) ** dim
    problems = []
    if "hall_number" in col and not np.all((col["hall_number"] >= 1) & (col["hall_number"] <= N_SETTINGS)):
        problems.append(f"hall_number outside 1..{N_SETTINGS}")
    if "number" in col:
        top = N_SPACE_GROUPS if dim == 3 else N_PLANE_GROUPS
        if not np.all((col["number"] >= 1) & (col["number"] <= top)):
            problems.append(f"number outside 1..{top}")
    if "order" in col and not np.all((col["order"] >= 1) & (col["order"] <= MAX_ORDER)):
        problems.append(f"order outside 1..{MAX_ORDER}")
    if "n_frequencies" in col and "n_extinct" in col:
        nf, ne = col["n_frequencies"], col["n_extinct"]
        if not np.all((nf >= 1) & (ne >= 0) & (nf + ne <= nbox)):
            problems.append(f"n_frequencies + n_extinct outside 1..{nbox} (the box at kmax={kmax})")
        if "n_orbits" in col and not np.all((col["n_orbits"] >= 1) & (col["n_orbits"] <= nf)):
            problems.append("n_orbits outside 1..n_frequencies")
    if "is_default" in col and not np.all((col["is_default"] == 0) | (col["is_default"] == 1)):
        problems.append("is_default not 0 or 1")
    if problems:
        raise ArtifactError(f"{path}: {table} has impossible values: {'; '.join(problems)}")


def check_payload(path, what: str, payload: dict[str, np.ndarray], meta, kmax: int, denominator: int) -> None:
    """The format's promises for one setting's decoded arrays (after its SHA-256 matched).

    ``meta`` is the setting's index row (``Setting`` or ``PlaneGroup``: ``order``,
    ``n_orbits``, ``n_frequencies``, ``n_extinct``).
    """

    def fail(rule: str):
        raise ArtifactError(f"{path}: {what} is inconsistent: {rule}")

    freqs, ptr, phases = payload["frequencies"], payload["orbit_ptr"], payload["phases"]
    extinct, rots, trans = payload["extinct"], payload["rotations"], payload["translations"]
    n, dim = len(freqs), freqs.shape[1]
    sizes = {
        "frequencies": (n, meta.n_frequencies),
        "orbit_ptr": (len(ptr), meta.n_orbits + 1),
        "phases": (len(phases), n),
        "extinct": (len(extinct), meta.n_extinct),
        "rotations": (len(rots), meta.order),
        "translations": (len(trans), meta.order),
    }
    for name, (got, want) in sizes.items():
        if got != want:
            fail(f"{name} has {got} rows, the index says {want}")
    if n == 0 or len(ptr) < 2:
        fail("no basis functions")
    ptr = ptr.astype(np.int64)
    if ptr[0] != 0 or ptr[-1] != n or np.any(np.diff(ptr) <= 0):
        fail(f"orbit_ptr is not strictly increasing from 0 to {n}")

    def outside(a: np.ndarray, lo: int, hi: int) -> bool:  # min/max: no copies, no int8 abs() overflow
        return a.size > 0 and (int(a.min()) < lo or int(a.max()) > hi)

    if outside(freqs, -kmax, kmax) or outside(extinct, -kmax, kmax):
        fail(f"a frequency lies outside the box |h|,|k|,|l| <= {kmax}")
    if outside(phases, 0, denominator - 1):
        fail(f"a phase numerator is outside 0..{denominator - 1}")
    if np.any(phases[ptr[:-1]] != 0):
        fail("the first member of an orbit has a non-zero phase")
    if outside(trans, 0, denominator - 1):
        fail(f"a translation numerator is outside 0..{denominator - 1}")
    if np.any(np.abs(_det(rots)) != 1):
        fail("a rotation is not unimodular (det != +-1)")
    eye = np.eye(dim, dtype=rots.dtype)
    if not np.any(np.all(rots == eye, axis=(1, 2)) & np.all(trans == 0, axis=1)):
        fail("the identity operation is missing")
    nbox = (2 * kmax + 1) ** dim
    idx = box_index(np.concatenate([freqs, extinct]), kmax)
    seen = np.zeros(nbox, dtype=bool)
    seen[idx] = True
    if np.count_nonzero(seen) != len(idx):
        fail("a frequency is stored twice")
    own = np.zeros(nbox, dtype=bool)
    own[idx[:n]] = True
    if not np.all(own[nbox - 1 - idx[:n]]):  # box_index(-k) == nbox - 1 - box_index(k)
        fail("the frequencies are not closed under k -> -k")
