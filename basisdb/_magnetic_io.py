"""Reading the /magnetic section of an artifact (docs/FORMAT.md section 15): index tables, operations, bases, verification."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ._errors import ArtifactError
from ._format import (
    INTEGERS,
    MAGNETIC,
    MAGNETIC_BASIS_FIELDS,
    MAGNETIC_BASIS_INDEX,
    MAGNETIC_BASIS_INDEX_INTEGERS,
    MAGNETIC_BASIS_INDEX_STRINGS,
    MAGNETIC_INDEX,
    MAGNETIC_INDEX_INTEGERS,
    MAGNETIC_INDEX_STRINGS,
    MAGNETIC_OPS_FIELDS,
    STRINGS,
    magnetic_basis_name,
    magnetic_type_name,
    payload_sha256,
)
from ._h5read import read_datasets, read_table
from ._index import EMPTY_MAGNETIC, MAX_MAGNETIC_ORDER, MagneticIndex
from ._magnetic import MagneticBasis, MagneticGroup, derived_odd, make_view
from ._validate import check_payload

__all__ = ["magnetic_index", "get_magnetic", "verify_magnetic"]


def magnetic_index(db) -> MagneticIndex:
    """The /magnetic index tables of ``db`` (read and validated on first use; empty if absent)."""
    with db._lock:
        cached = getattr(db, "_magnetic_tables", None)
        if cached is not None:
            return cached
        f = db._h5()
        if MAGNETIC not in f:  # version-1 files, and builds of fewer than 530 settings
            db._magnetic_tables = EMPTY_MAGNETIC
            return EMPTY_MAGNETIC
        ints = read_table(
            db.path, f, INTEGERS, MAGNETIC_INDEX_INTEGERS, "iu", index=f"{MAGNETIC}/{MAGNETIC_INDEX}"
        )
        strs = read_table(
            db.path, f, STRINGS, MAGNETIC_INDEX_STRINGS, "S", index=f"{MAGNETIC}/{MAGNETIC_INDEX}"
        )
        bints = read_table(
            db.path,
            f,
            INTEGERS,
            MAGNETIC_BASIS_INDEX_INTEGERS,
            "iu",
            index=f"{MAGNETIC}/{MAGNETIC_BASIS_INDEX}",
        )
        bstrs = read_table(
            db.path, f, STRINGS, MAGNETIC_BASIS_INDEX_STRINGS, "S", index=f"{MAGNETIC}/{MAGNETIC_BASIS_INDEX}"
        )
        db._magnetic_tables = MagneticIndex.from_tables(
            db.path, ints, strs, bints, bstrs, settings=db._index, kmax=db.kmax, denominator=db.denominator
        )
        return db._magnetic_tables


def _read_group(db, name: str, fields: dict, limit: int) -> dict:
    return read_datasets(db.path, db._h5(), name, fields, limit, limit_note=f" (at most {limit})")


def _read_operations(db, index: MagneticIndex, uni: int) -> dict:
    name = magnetic_type_name(uni)
    with db._lock:
        ops = _read_group(db, name, MAGNETIC_OPS_FIELDS, MAX_MAGNETIC_ORDER)
    if payload_sha256(ops, MAGNETIC_OPS_FIELDS) != index.sha[uni]:
        raise ArtifactError(f"{db.path}: magnetic group UNI {uni} fails its SHA-256 check (damaged file)")
    order = index.rows[uni]["order"]
    if any(len(a) != order for a in ops.values()):
        raise ArtifactError(
            f"{db.path}: magnetic group UNI {uni} has operation arrays of a length other than its order {order}"
        )
    if ops["time_reversals"].size and int(ops["time_reversals"].max()) > 1:
        raise ArtifactError(
            f"{db.path}: magnetic group UNI {uni} has a time_reversals value other than 0 or 1"
        )
    return ops


def _read_stored_basis(db, index: MagneticIndex, basis_id: int, ops: dict, what: str) -> dict:
    name = magnetic_basis_name(basis_id)
    limit = (2 * db.kmax + 1) ** 3 + 1
    with db._lock:
        arrays = _read_group(db, name, MAGNETIC_BASIS_FIELDS, limit)
    meta = index.bases[basis_id]
    if payload_sha256(arrays, MAGNETIC_BASIS_FIELDS) != meta["sha256"]:
        raise ArtifactError(f"{db.path}: magnetic basis {basis_id} fails its SHA-256 check (damaged file)")
    row = SimpleNamespace(
        order=len(ops["rotations"]), **{k: meta[k] for k in ("n_orbits", "n_frequencies", "n_extinct")}
    )
    payload = {**arrays, "rotations": ops["rotations"], "translations": ops["translations"]}
    if meta["n_orbits"] > 0:
        check_payload(db.path, what, payload, row, db.kmax, db.denominator)
    elif (
        len(arrays["frequencies"])
        or len(arrays["phases"])
        or arrays["orbit_ptr"].tolist() != [0]
        or len(arrays["extinct"]) != meta["n_extinct"]
    ):
        raise ArtifactError(
            f"{db.path}: {what} is inconsistent: an empty basis with frequencies or a bad orbit_ptr"
        )
    return arrays


def get_magnetic(db, key, kmax: int) -> MagneticBasis:
    """The MagneticBasis of the type ``key`` resolves to, at ``kmax`` (cached on ``db``)."""
    index = magnetic_index(db)
    group = index.get_magnetic_group(key)
    uni = group.uni_number
    with db._lock:
        hit = db._cache.get(("magnetic", uni, kmax))
        full = db._cache.get(("magnetic", uni, db.kmax))
    if hit is not None:
        return hit
    if full is None:
        full = _read_full(db, index, group)
    basis = full.restrict(kmax)
    with db._lock:
        db._cache.setdefault(("magnetic", uni, db.kmax), full)
        return db._cache.setdefault(("magnetic", uni, kmax), basis)


def _read_full(db, index: MagneticIndex, group: MagneticGroup) -> MagneticBasis:
    uni = group.uni_number
    row = index.rows[uni]
    ops = _read_operations(db, index, uni)
    rot, trans = ops["rotations"], ops["translations"]
    if row["even_hall_number"] > 0:
        setting = db.get(hall=row["even_hall_number"])
        even_arrays = {k: getattr(setting, k) for k in MAGNETIC_BASIS_FIELDS}
    else:
        even_arrays = _read_stored_basis(db, index, row["even_basis"], ops, f"time-even basis of UNI {uni}")
    even = make_view(group, "even", db.kmax, db.denominator, even_arrays, rot, trans)
    if row["odd_basis"] >= 0:
        odd_arrays = _read_stored_basis(db, index, row["odd_basis"], ops, f"time-odd basis of UNI {uni}")
        odd = make_view(group, "odd", db.kmax, db.denominator, odd_arrays, rot, trans)
    else:
        odd = derived_odd(group, even)
    return MagneticBasis(group=group, time_even=even, time_odd=odd, time_reversals=ops["time_reversals"])


def exact_sign_invariance(view, time_reversals: np.ndarray, odd: bool) -> bool:
    """Exact check of c_{R^T k} = (+-1)^theta exp(2 pi i k.t) c_k for every stored operation, on
    the integer phases (no floats): the image of every frequency lies in the same orbit with the
    phase numerator p_k + k.t + (D/2) theta (time-odd only), mod D."""
    from ._boxindex import box_index

    if view.n_basis == 0:
        return True
    den, kmax = view.denominator, view.kmax
    freqs, phases, orbit = view.frequencies, view.phases, view.orbit_of
    nbox = (2 * kmax + 1) ** 3
    where = np.full(nbox, -1, dtype=np.int64)
    where[box_index(freqs, kmax)] = np.arange(len(freqs))
    for R, t, th in zip(view.rotations, view.translations, time_reversals):
        img = freqs @ R
        if np.abs(img).max() > kmax:
            return False
        j = where[box_index(img, kmax)]
        if np.any(j < 0) or np.any(orbit[j] != orbit):
            return False
        shift = (den // 2) * int(th) if odd else 0
        if np.any((phases + freqs @ t + shift - phases[j]) % den != 0):
            return False
    return True


def verify_magnetic(db, rng: np.random.Generator, points: int, tol: float) -> dict:
    """Every magnetic type: readable, checksums, and exact invariance (time-even) / sign change
    under primed operations (time-odd) of the integer phases under every stored operation, plus a
    float evaluation at ``points`` random points under the operations of one in eight types."""
    index = magnetic_index(db)
    worst = 0.0
    for n, uni in enumerate(index.groups):
        mb = _read_full(db, index, index.groups[uni])
        for view, odd in ((mb.time_even, False), (mb.time_odd, True)):
            if not exact_sign_invariance(view, mb.time_reversals, odd):
                raise ArtifactError(
                    f"{db.path}: magnetic group UNI {uni} ({view.setting.hm_extended}) is not invariant under its operations"
                )
        if n % 8:
            continue
        rot, trans, theta = mb.operations()
        x = rng.random((points, 3))
        images = (np.einsum("gij,nj->gni", rot, x) + trans[:, None, :]).reshape(-1, 3)
        pts = np.concatenate([x, images])
        sign = np.repeat(1.0 - 2.0 * theta, points)[:, None]
        for view, s in ((mb.time_even, 1.0), (mb.time_odd, sign)):
            if view.n_basis == 0:
                continue
            values = view.evaluate(pts)
            ref = np.tile(values[:points], (len(rot), 1)) * s
            err = float(np.max(np.abs(values[points:] - ref), initial=0.0))
            worst = max(worst, err)
            if err > tol:
                raise ArtifactError(
                    f"{db.path}: magnetic group UNI {uni} ({view.setting.hm_extended}) is not invariant (error {err:.2e})"
                )
    return {"groups": len(index.groups), "max_invariance_error": worst}
