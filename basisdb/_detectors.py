"""Symmetry-detector backends for ``basisdb.featurize``: spglib (default) and moyopy (optional).

``featurize`` needs, from the detector, the fields of spglib's symmetry dataset that
``structures._canonicalize`` reads: ``number``, ``international``, ``hall_number`` (in
spglib's default setting of the group: the basis settings are spglib's Hall numbers),
``transformation_matrix`` P and ``origin_shift`` p (x_std = P x + p), ``mapping_to_primitive``
(input atom -> primitive site: equal for atoms related by a pure translation) and
``std_lattice`` (rows: the idealised standard cell, any Cartesian orientation).

moyopy (``pip install basisdb[moyopy]``; imported on first use) is adapted to these fields by
``moyopy_dataset``: moyopy's ``(std_linear, std_origin_shift)`` is the inverse transformation
(input basis = standard basis @ std_linear, x_std = std_linear^-1 (x - std_origin_shift)), and
``mapping_std_prim`` is the primitive mapping.  ``Setting.spglib()`` makes moyopy report the
Hall number of spglib's default setting.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ._errors import SymmetryNotFoundError

DETECTORS = ("spglib", "moyopy")


def check_detector(detector) -> str:
    if detector not in DETECTORS:
        raise ValueError(f"detector must be 'spglib' or 'moyopy', got {detector!r}")
    return detector


def require_moyopy():
    try:
        import moyopy
    except ImportError:
        raise ImportError(
            "detector='moyopy' needs moyopy; install it with `pip install basisdb[moyopy]` "
            "(or `pip install moyopy`)"
        ) from None
    # moyopy logs a WARNING through Python's logging (logger "moyo") whenever operations of a
    # supercell input are not integral in its basis; basisdb does not use those operations, so
    # keep it off stderr unless the application configures logging itself.
    log = logging.getLogger("moyo")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    return moyopy


@dataclass(frozen=True)
class MoyoDataset:
    """moyopy's dataset, presented with the spglib dataset fields ``featurize`` reads."""

    number: int
    hall_number: int
    international: str
    transformation_matrix: np.ndarray
    origin_shift: np.ndarray
    mapping_to_primitive: np.ndarray
    std_lattice: np.ndarray
    symprec: float  # the tolerance moyopy actually used (its search may iterate)


def _international(hall_number: int) -> str:
    try:  # spglib is installed with basisdb[structures]; the symbol is only used in messages
        import spglib

        with warnings.catch_warnings():  # spglib >= 2.5's OLD_ERROR_HANDLING notice: not the caller's concern
            warnings.simplefilter("ignore", DeprecationWarning)
            t = spglib.get_spacegroup_type(int(hall_number))
    except Exception:  # pragma: no cover
        t = None
    return f"Hall {hall_number}" if t is None else str(t.international_short)


def moyopy_dataset(lattice, positions, numbers, symprec: float, angle_tolerance: float | None):
    """moyopy's symmetry dataset for (lattice, positions, numbers) as a ``MoyoDataset``.

    ``angle_tolerance`` in degrees (None or negative: moyopy's own choice).  Raises
    ``SymmetryNotFoundError`` when moyopy finds no symmetry.
    """
    moyopy = require_moyopy()
    angle = None if angle_tolerance is None or angle_tolerance < 0 else float(np.deg2rad(angle_tolerance))
    try:
        cell = moyopy.Cell(
            np.asarray(lattice, dtype=np.float64).tolist(),
            np.asarray(positions, dtype=np.float64).tolist(),
            [int(z) for z in numbers],
        )
        ds = moyopy.MoyoDataset(
            cell, symprec=float(symprec), angle_tolerance=angle, setting=moyopy.Setting.spglib()
        )
    except Exception as exc:
        raise SymmetryNotFoundError(
            f"moyopy could not determine the symmetry (symprec={symprec}): {exc}"
        ) from None
    Q = np.asarray(ds.std_linear, dtype=np.float64)
    P = np.linalg.inv(Q)
    P_int = np.rint(P * 12.0) / 12.0  # spglib's matrices are rational with small denominators
    P = np.where(np.abs(P - P_int) < 1e-8, P_int, P)
    p = -P @ np.asarray(ds.std_origin_shift, dtype=np.float64)
    return MoyoDataset(
        number=int(ds.number),
        hall_number=int(ds.hall_number),
        international=_international(int(ds.hall_number)),
        transformation_matrix=P,
        origin_shift=p,
        mapping_to_primitive=np.asarray(ds.mapping_std_prim, dtype=np.int64),
        std_lattice=np.asarray(ds.std_cell.basis, dtype=np.float64),
        symprec=float(ds.symprec),
    )
