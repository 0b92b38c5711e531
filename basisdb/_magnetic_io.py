"""Reading the /magnetic section of an artifact (docs/FORMAT.md section 15): index, validation, lookup."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ._constants import MAX_ORDER, N_MAGNETIC_TYPES, N_SETTINGS, N_SPACE_GROUPS
from ._errors import ArtifactError
from ._format import (
    MAGNETIC,
    MAGNETIC_BASIS_FIELDS,
    MAGNETIC_BASIS_INDEX_INTEGERS,
    MAGNETIC_BASIS_INDEX_STRINGS,
    MAGNETIC_INDEX_INTEGERS,
    MAGNETIC_INDEX_STRINGS,
    MAGNETIC_OPS_FIELDS,
    payload_sha256,
)
from ._magnetic import MagneticBasis, MagneticGroup, derived_odd, make_view, resolve_magnetic_key
from ._validate import check_payload

__all__ = ["magnetic_index", "get_magnetic", "verify_magnetic"]

#: a magnetic group has at most twice the operations of its family space group's point group
#: times the index of the BNS lattice in the family lattice (type IV): 2 * MAX_ORDER in spglib's table
MAX_MAGNETIC_ORDER = 2 * MAX_ORDER


@dataclass(frozen=True)
class MagneticIndex:
    groups: dict  # uni -> MagneticGroup, ascending
    rows: dict  # uni -> dict of the integer columns
    sha: dict  # uni -> sha256 of the operations
    bases: dict  # basis id -> dict(n_orbits, n_frequencies, n_extinct, sha256)

    def resolve(self, key) -> MagneticGroup:
        return resolve_magnetic_key(key, self.groups)


_EMPTY = MagneticIndex({}, {}, {}, {})


def magnetic_index(db) -> MagneticIndex:
    """The /magnetic index tables of ``db`` (read and validated on first use; empty if absent)."""
    with db._lock:
        cached = getattr(db, "_magnetic_tables", None)
        if cached is not None:
            return cached
        f = db._h5()
        if MAGNETIC not in f:  # version-1 files, and builds of fewer than 530 settings
            db._magnetic_tables = _EMPTY
            return _EMPTY
        ints = db._read_table(f, "integers", MAGNETIC_INDEX_INTEGERS, "iu", index=f"{MAGNETIC}/index")
        strs = db._read_table(f, "strings", MAGNETIC_INDEX_STRINGS, "S", index=f"{MAGNETIC}/index")
        bints = db._read_table(f, "integers", MAGNETIC_BASIS_INDEX_INTEGERS, "iu", index=f"{MAGNETIC}/basis_index")
        bstrs = db._read_table(f, "strings", MAGNETIC_BASIS_INDEX_STRINGS, "S", index=f"{MAGNETIC}/basis_index")
        db._magnetic_tables = _build_index(db, ints, strs, bints, bstrs)
        return db._magnetic_tables


def _build_index(db, ints, strs, bints, bstrs) -> MagneticIndex:
    path = db.path
    nbox = (2 * db.kmax + 1) ** 3

    def fail(rule: str):
        raise ArtifactError(f"{path}: /{MAGNETIC} index has impossible values: {rule}")

    if len(strs) != len(ints) or len(bstrs) != len(bints):
        fail("the integer and string tables have different numbers of rows")
    bases = {}
    for r, row in enumerate(bints.tolist()):
        b = dict(zip(MAGNETIC_BASIS_INDEX_INTEGERS, row))
        if b["basis"] != r:
            fail("basis ids are not 0, 1, 2, ... in row order")
        if not (b["n_frequencies"] >= 0 and b["n_extinct"] >= 0 and b["n_frequencies"] + b["n_extinct"] <= nbox):
            fail(f"basis {r} has sizes outside the box at kmax={db.kmax}")
        if not 0 <= b["n_orbits"] <= b["n_frequencies"] or (b["n_orbits"] == 0) != (b["n_frequencies"] == 0):
            fail(f"basis {r} has {b['n_orbits']} orbits over {b['n_frequencies']} frequencies")
        b["sha256"] = bstrs[r, 0].decode("ascii", "replace")
        bases[r] = b
    groups, rows, sha = {}, {}, {}
    previous = 0
    for r, values in enumerate(ints.tolist()):
        c = dict(zip(MAGNETIC_INDEX_INTEGERS, values))
        uni = c["uni_number"]
        if not previous < uni <= N_MAGNETIC_TYPES:
            fail("uni_number is not strictly increasing within 1..1651")
        previous = uni
        problems = []
        if c["type"] not in (1, 2, 3, 4):
            problems.append("type not in 1..4")
        if not 1 <= c["order"] <= MAX_MAGNETIC_ORDER:
            problems.append(f"order outside 1..{MAX_MAGNETIC_ORDER}")
        if not (1 <= c["family_hall_number"] <= N_SETTINGS and 1 <= c["family_number"] <= N_SPACE_GROUPS and 1 <= c["number"] <= N_SPACE_GROUPS):
            problems.append("family_hall_number, family_number or number out of range")
        if (c["even_hall_number"] > 0) == (c["even_basis"] >= 0):
            problems.append("exactly one of even_hall_number and even_basis must name the time-even basis")
        if c["even_hall_number"] > 0 and c["even_hall_number"] not in db._row:
            problems.append(f"even_hall_number {c['even_hall_number']} is not a setting of the file")
        if c["even_basis"] >= 0 and c["even_basis"] not in bases:
            problems.append(f"even_basis {c['even_basis']} is not a stored basis")
        if (c["odd_basis"] >= 0) != (c["type"] in (3, 4)) or (c["odd_basis"] >= 0 and c["odd_basis"] not in bases):
            problems.append("odd_basis must name a stored basis for types 3 and 4 and be -1 for types 1 and 2")
        if not all(0 <= c[f"p{i}"] < db.denominator for i in range(3)):
            problems.append("origin shift numerator outside 0..denominator-1")
        if problems:
            fail(f"UNI {uni}: " + "; ".join(problems))
        s = {k: v.decode("ascii", "replace") for k, v in zip(MAGNETIC_INDEX_STRINGS, strs[r].tolist())}
        if c["even_hall_number"] > 0:
            n_even = int(db._ints[db._row[c["even_hall_number"]], 3])
        else:
            n_even = bases[c["even_basis"]]["n_orbits"]
        n_odd = bases[c["odd_basis"]]["n_orbits"] if c["odd_basis"] >= 0 else (n_even if c["type"] == 1 else 0)
        groups[uni] = MagneticGroup(
            uni_number=uni,
            litvin_number=c["litvin_number"],
            bns_number=s["bns_number"],
            og_number=s["og_number"],
            type=c["type"],
            number=c["number"],
            order=c["order"],
            family_hall_number=c["family_hall_number"],
            family_number=c["family_number"],
            transformation=tuple(tuple(c[f"P{i}{j}"] for j in range(3)) for i in range(3)),
            origin_shift=tuple(c[f"p{i}"] for i in range(3)),
            even_hall_number=c["even_hall_number"],
            n_even=n_even,
            n_odd=n_odd,
            denominator=db.denominator,
        )
        rows[uni], sha[uni] = c, s["sha256"]
    return MagneticIndex(groups, rows, sha, bases)


def _read_group(db, name: str, fields: dict, limit: int) -> dict:
    from ._database import read_datasets

    return read_datasets(db.path, db._h5(), name, fields, limit, limit_note=f" (at most {limit})")


def _read_operations(db, index: MagneticIndex, uni: int) -> dict:
    name = f"/{MAGNETIC}/types/{uni}"
    with db._lock:
        ops = _read_group(db, name, MAGNETIC_OPS_FIELDS, MAX_MAGNETIC_ORDER)
    if payload_sha256(ops, MAGNETIC_OPS_FIELDS) != index.sha[uni]:
        raise ArtifactError(f"{db.path}: magnetic group UNI {uni} fails its SHA-256 check (damaged file)")
    order = index.rows[uni]["order"]
    if any(len(a) != order for a in ops.values()):
        raise ArtifactError(f"{db.path}: magnetic group UNI {uni} has operation arrays of a length other than its order {order}")
    if ops["time_reversals"].size and int(ops["time_reversals"].max()) > 1:
        raise ArtifactError(f"{db.path}: magnetic group UNI {uni} has a time_reversals value other than 0 or 1")
    return ops


def _read_stored_basis(db, index: MagneticIndex, basis_id: int, ops: dict, what: str) -> dict:
    name = f"/{MAGNETIC}/bases/{basis_id}"
    limit = (2 * db.kmax + 1) ** 3 + 1
    with db._lock:
        arrays = _read_group(db, name, MAGNETIC_BASIS_FIELDS, limit)
    meta = index.bases[basis_id]
    if payload_sha256(arrays, MAGNETIC_BASIS_FIELDS) != meta["sha256"]:
        raise ArtifactError(f"{db.path}: magnetic basis {basis_id} fails its SHA-256 check (damaged file)")
    row = SimpleNamespace(order=len(ops["rotations"]), **{k: meta[k] for k in ("n_orbits", "n_frequencies", "n_extinct")})
    payload = {**arrays, "rotations": ops["rotations"], "translations": ops["translations"]}
    if meta["n_orbits"] > 0:
        check_payload(db.path, what, payload, row, db.kmax, db.denominator)
    elif len(arrays["frequencies"]) or len(arrays["phases"]) or arrays["orbit_ptr"].tolist() != [0] or len(arrays["extinct"]) != meta["n_extinct"]:
        raise ArtifactError(f"{db.path}: {what} is inconsistent: an empty basis with frequencies or a bad orbit_ptr")
    return arrays


def get_magnetic(db, key, kmax: int) -> MagneticBasis:
    """The MagneticBasis of the type ``key`` resolves to, at ``kmax`` (cached on ``db``)."""
    index = magnetic_index(db)
    group = index.resolve(key)
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
                raise ArtifactError(f"{db.path}: magnetic group UNI {uni} ({view.setting.hm_extended}) is not invariant under its operations")
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
                raise ArtifactError(f"{db.path}: magnetic group UNI {uni} ({view.setting.hm_extended}) is not invariant (error {err:.2e})")
    return {"groups": len(index.groups), "max_invariance_error": worst}
