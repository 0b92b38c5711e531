"""``Database.verify``: a full pass over an artifact, beyond what ``open`` and ``get`` check.

Every setting and plane group is read (checksums, structural checks of ``_validate``) and
its basis functions are evaluated at random points and at their images under every stored
operation; the magnetic section is checked by ``_magnetic_io.verify_magnetic``.  Raises
``ArtifactError`` on the first problem.
"""

from __future__ import annotations

import numpy as np

from . import _magnetic_io
from ._basis import PlaneGroup
from ._errors import ArtifactError
from ._h5read import attr_str

__all__ = ["verify"]


def check_informative_attributes(db) -> None:
    """The informative string attributes (not read by ``open``) are intact printable text."""
    f = db._h5()
    with db._lock:
        for name in ("conventions", "builder_version", "spglib_version"):
            if name in f.attrs:
                text = attr_str(f, name)
                if len(text) > 65536 or any(not (32 <= ord(c) < 127 or c in "\n\t") for c in text):
                    raise ArtifactError(
                        f"{db.path}: root attribute {name!r} is not printable ASCII (damaged file?)"
                    )


def invariance_error(basis, x: np.ndarray) -> float:
    """The largest change of any basis function between the points ``x`` and their images."""
    rots, trans = basis.operations()
    images = (np.einsum("gij,nj->gni", rots, x) + trans[:, None, :]).reshape(-1, basis.dim)
    values = basis.evaluate(np.concatenate([x, images]))
    ref = np.tile(values[: len(x)], (len(rots), 1))
    return float(np.max(np.abs(values[len(x) :] - ref), initial=0.0))


def verify(db, invariance_points: int = 8, seed: int = 0, tol: float = 1e-10) -> dict:
    """See ``Database.verify``."""
    rng = np.random.default_rng(seed)
    worst = 0.0
    check_informative_attributes(db)
    planes = db.plane_groups()
    for s in db.settings() + planes:
        basis = db._read_basis(s)
        err = invariance_error(basis, rng.random((invariance_points, basis.dim)))
        worst = max(worst, err)
        if err > tol:
            what = f"plane group {s.number}" if isinstance(s, PlaneGroup) else f"setting {s.hall_number}"
            raise ArtifactError(f"{db.path}: {what} is not invariant under its operations (error {err:.2e})")
    magnetic = _magnetic_io.verify_magnetic(db, rng, invariance_points, tol)
    worst = max(worst, magnetic["max_invariance_error"])
    return {
        "path": str(db.path),
        "settings": len(db),
        "plane_groups": len(planes),
        "magnetic_groups": magnetic["groups"],
        "kmax": db.kmax,
        "max_invariance_error": worst,
    }
