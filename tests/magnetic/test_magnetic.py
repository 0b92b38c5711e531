"""The 1,651 magnetic space groups (issue 12): time-even and time-odd bases.

References independent of the dual frequency graph and of the artifact's tables:
spglib's magnetic database (operations, numbers, types) and plain numpy arithmetic
(the magnetic Reynolds trace, plane waves at random points).
"""

from __future__ import annotations

import numpy as np
import pytest
import spglib
from click.testing import CliRunner

import basisdb
from basisdb.cli import cli

N_TYPES = 1651
DEN = 24
#: cut-off of the default-run sweep over all 1,651 types (the slow sweep uses the artifact's K)
SWEEP_K = 3
#: a few types of each kind, for the checks at the full cut-off in the default run
SPOT = (1, 2, 3, 4, 5, 7, 63, 250, 1158, 1159, 1200, 1500, 1567, 1651)


@pytest.fixture(scope="module")
def mdb():
    database = basisdb.open()
    yield database
    database.close()


def spglib_magnetic(uni: int):
    """spglib's (rotations int, translations float, time_reversals int) of a UNI type."""
    sym = spglib.get_magnetic_symmetry_from_database(int(uni))
    return (
        np.asarray(sym["rotations"], dtype=np.int64),
        np.asarray(sym["translations"], dtype=float),
        np.asarray(sym["time_reversals"], dtype=np.int64),
    )


def closed_box(rotations: np.ndarray, kmax: int) -> np.ndarray:
    """Frequencies of the box whose whole point-group orbit {R^T k} stays inside it (numpy only)."""
    r = np.arange(-kmax, kmax + 1)
    k = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    inside = np.ones(len(k), dtype=bool)
    for R in np.unique(rotations, axis=0):
        inside &= np.abs(k @ R).max(axis=1) <= kmax
    return k[inside]


def reynolds_dimension(rotations, translations, time_reversals, kmax: int, odd: bool, S=None) -> float:
    """dim = (1/|M|) sum_g (+-1)^theta_g sum_{k in S, R^T k = k} exp(2 pi i k.t): the trace of the
    magnetic Reynolds operator on the closed frequency set S, computed without any graph."""
    S = closed_box(rotations, kmax) if S is None else S
    total = 0j
    for R, t, th in zip(rotations, translations, time_reversals):
        fixed = S[np.all(S @ R == S, axis=1)]
        sign = -1.0 if (odd and th) else 1.0
        total += sign * np.exp(2j * np.pi * (fixed @ t)).sum()
    value = total / len(rotations)
    assert abs(value.imag) < 1e-9
    return value.real


def sign_invariance_error(mb, points: int = 3, seed: int = 0) -> float:
    """max |phi(R x + t) - s phi(x)| over every operation, s = 1 (time-even) or (-1)^theta (time-odd),
    with spglib's operations (not the stored ones)."""
    rot, tra, tr = spglib_magnetic(mb.uni_number)
    x = np.random.default_rng(seed).random((points, 3))
    images = (np.einsum("gij,nj->gni", rot, x) + tra[:, None, :]).reshape(-1, 3)
    worst = 0.0
    for view, signs in ((mb.time_even, np.ones(len(rot))), (mb.time_odd, 1.0 - 2.0 * tr)):
        if view.n_basis == 0:
            continue
        base = view.evaluate(x)
        moved = view.evaluate(images).reshape(len(rot), points, -1)
        worst = max(worst, float(np.max(np.abs(moved - signs[:, None, None] * base[None]))))
    return worst


def anti_translation(rot, tra, tr) -> np.ndarray:
    """t' of an operation (1, t', 1') of a type-IV group."""
    for R, t, th in zip(rot, tra, tr):
        if th == 1 and np.array_equal(R, np.eye(3, dtype=np.int64)):
            return t
    raise AssertionError("no anti-translation")


def _check_one(mdb, uni: int, kmax: int) -> dict:
    """Every independent check of one type at cut-off ``kmax``; returns a few counts."""
    mb = mdb.get(magnetic=uni, kmax=kmax)
    info = spglib.get_magnetic_spacegroup_type(uni)
    rot, tra, tr = spglib_magnetic(uni)
    g = mb.group
    # metadata and operations = spglib's
    assert (g.uni_number, g.bns_number, g.og_number, g.type, g.litvin_number, g.number) == (
        uni,
        info.bns_number,
        info.og_number,
        info.type,
        info.litvin_number,
        info.number,
    )
    srot, stra, str_ = mb.operations()
    assert np.array_equal(srot, rot) and np.array_equal(str_, tr)
    assert np.allclose(np.mod(stra - tra + 0.5, 1.0) - 0.5, 0.0, atol=1e-9)
    # completeness: basis sizes = Reynolds traces on the closed frequency set
    S = closed_box(rot, kmax)
    for view, odd in ((mb.time_even, False), (mb.time_odd, True)):
        assert view.n_basis == round(reynolds_dimension(rot, tra, tr, kmax, odd, S)), (uni, odd)
        assert len(view.frequencies) + len(view.extinct) == len(S)
    # the type rules
    if g.type == 1:
        assert not tr.any()
        assert np.array_equal(mb.time_odd.frequencies, mb.time_even.frequencies)
        assert np.array_equal(mb.time_odd.phases, mb.time_even.phases)
    elif g.type == 2:
        assert mb.time_odd.n_basis == 0
    else:
        assert 2 * int(tr.sum()) == len(tr)
    if g.type == 4:
        tp = anti_translation(rot, tra, tr)
        odd_phase = np.mod(mb.time_odd.frequencies @ tp, 1.0)
        even_phase = np.mod(mb.time_even.frequencies @ tp, 1.0)
        assert np.allclose(odd_phase, 0.5), uni  # magnetic reflections at half-integer positions
        assert np.allclose(np.minimum(even_phase, 1 - even_phase), 0.0), uni
    assert sign_invariance_error(mb) < 1e-12
    return {"type": g.type, "odd_empty": mb.time_odd.n_basis == 0}


def test_sweep_all_types_small_k(mdb):
    """All 1,651 types at K = 3: spglib metadata, completeness (Reynolds), type rules, signed invariance."""
    groups = mdb.magnetic_groups()
    assert [g.uni_number for g in groups] == list(range(1, N_TYPES + 1))
    counts = {1: 0, 2: 0, 3: 0, 4: 0}
    empty = 0
    for uni in range(1, N_TYPES + 1):
        out = _check_one(mdb, uni, SWEEP_K)
        counts[out["type"]] += 1
        empty += out["odd_empty"]
    assert counts == {1: 230, 2: 230, 3: 674, 4: 517}
    assert empty >= 230


@pytest.mark.parametrize("uni", SPOT)
def test_spot_types_full_k(mdb, uni):
    _check_one(mdb, uni, mdb.kmax)


@pytest.mark.slow
def test_sweep_all_types_full_k(mdb):
    for uni in range(1, N_TYPES + 1):
        _check_one(mdb, uni, mdb.kmax)


def test_physical_oracle_spin_and_charge_density(mdb):
    """A magnetic orbit of point moments: its spin density (moments signed by (-1)^theta) lies in
    the span of the time-odd basis, its charge density in that of the time-even basis."""
    rng = np.random.default_rng(7)
    for uni in (3, 1158, 1159, 1200, 1500, 1651, 250, 900):
        mb = mdb.get(magnetic=uni, kmax=4)
        rot, tra, tr = spglib_magnetic(uni)
        x0 = rng.random(3)
        pos = np.einsum("gij,j->gi", rot, x0) + tra
        moments = 1.0 - 2.0 * tr
        S = closed_box(rot, 4)
        phases = np.exp(-2j * np.pi * (S @ pos.T))  # c_k of delta functions at the atoms
        for view, weights in ((mb.time_odd, moments), (mb.time_even, np.ones(len(pos)))):
            c = phases @ weights
            B = view.complex_basis().toarray() if view.n_basis else np.zeros((view.n_box, 0))
            full = np.zeros(view.n_box, dtype=complex)
            full[_box_index(S, 4)] = c
            residual = full - B @ (B.conj().T @ full)
            assert np.linalg.norm(residual) <= 1e-10 * max(1.0, np.linalg.norm(full)), uni


def _box_index(k: np.ndarray, kmax: int) -> np.ndarray:
    n = 2 * kmax + 1
    return ((k[:, 0] + kmax) * n + (k[:, 1] + kmax)) * n + (k[:, 2] + kmax)


def test_orthonormal(mdb):
    for uni in (3, 1159, 1200):
        for view in (mdb.get(magnetic=uni).time_odd, mdb.get(magnetic=uni).time_even):
            B = view.complex_basis()
            assert np.allclose((B.conj().T @ B).toarray(), np.eye(view.n_basis), atol=1e-12)


def test_family_group_metadata(mdb):
    """The family group's hall number / number / transformation as spglib's dataset of an
    F-invariant crystal in the BNS setting gives them; type I-III: F is one of the 530 settings."""
    n_identity = 0
    for g in mdb.magnetic_groups():
        assert spglib.get_spacegroup_type(g.family_hall_number).number == g.family_number
        P = g.transformation_matrix
        assert abs(np.linalg.det(P)) > 0
        if g.type in (1, 2, 3):
            assert g.even_hall_number > 0
            assert g.family_number == g.number
        if g.even_hall_number:
            assert g.n_even == mdb.get(hall=g.even_hall_number).n_basis
        n_identity += np.allclose(P, np.eye(3)) and not any(g.origin_shift)
    assert n_identity > 1000


def test_type_one_time_even_is_the_space_group_basis(mdb):
    """Type I: both views are the basis of spglib's standard setting of the space group."""
    type_one = [g for g in mdb.magnetic_groups() if g.type == 1]
    assert len(type_one) == 230
    for g in type_one[::23]:
        mb = mdb.get(magnetic=g.uni_number)
        s = mdb.get(g.number)  # spglib's default setting of that number
        assert g.even_hall_number == s.hall_number
        for view in (mb.time_even, mb.time_odd):
            assert np.array_equal(s.frequencies, view.frequencies) and np.array_equal(s.phases, view.phases)


def test_lookup_keys(mdb):
    a = mdb.get(magnetic=1159)
    assert mdb.get(magnetic="136.499") is a
    assert mdb.get(magnetic="136.5.1156") is a
    assert mdb.get(magnetic="1159") is a
    assert mdb.get(magnetic=np.int64(1159)) is a
    assert mdb.magnetic_group("BNS 136.499").uni_number == 1159
    assert mdb.get(magnetic=1159, kmax=2).time_odd.kmax == 2
    assert mdb.find(magnetic="999.9") is None
    with pytest.raises(basisdb.SettingNotFoundError, match=r"UNI number must be in 1\.\.1651, got 1652"):
        mdb.get(magnetic=1652)
    with pytest.raises(
        basisdb.SettingNotFoundError, match=r"no magnetic space group has BNS number '136\.999'"
    ):
        mdb.get(magnetic="136.999")
    with pytest.raises(basisdb.SettingNotFoundError, match="unknown magnetic group 'P4'"):
        mdb.get(magnetic="P4")
    with pytest.raises(TypeError, match="magnetic group must be"):
        mdb.get(magnetic=1.5)
    with pytest.raises(ValueError, match="not both"):
        mdb.get(136, magnetic=1159)


def test_bns_and_og_numbers_are_unique_keys(mdb):
    groups = mdb.magnetic_groups()
    assert len({g.bns_number for g in groups}) == N_TYPES
    assert len({g.og_number for g in groups}) == N_TYPES
    for g in groups[::97]:
        assert mdb.magnetic_group(g.bns_number) == g and mdb.magnetic_group(g.og_number) == g


def test_cli_magnetic(mdb):
    runner = CliRunner()
    env = {"BASISDB_PATH": str(mdb.path)}
    out = runner.invoke(cli, ["list", "--magnetic"], env=env)
    assert out.exit_code == 0, out.output
    assert "1651 magnetic space groups" in out.output
    out = runner.invoke(cli, ["info", "--magnetic", "136.499"], env=env)
    assert out.exit_code == 0 and "uni_number         1159" in out.output
    out = runner.invoke(cli, ["show", "--magnetic", "1.3", "--limit", "2"], env=env)
    assert out.exit_code == 0 and "type IV" in out.output and "time-odd:" in out.output
    out = runner.invoke(cli, ["list", "--magnetic", "--json", "-n", "136"], env=env)
    assert out.exit_code == 0 and '"bns_number": "136.499"' in out.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "--magnetic", "9999"], "basisdb: error: UNI number must be in 1..1651, got 9999\n"),
        (
            ["show", "--magnetic", "1.99"],
            "basisdb: error: no magnetic space group has BNS number '1.99' (see `basisdb list --magnetic`)\n",
        ),
        (["info", "--magnetic"], None),
        (["show", "--magnetic", "5", "--hall", "3"], None),
    ],
)
def test_cli_magnetic_errors_are_one_line(mdb, args, message):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "basisdb", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "BASISDB_PATH": str(mdb.path)},
    )
    assert proc.returncode != 0
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("basisdb: error: ")
    if message is not None:
        assert proc.stderr == message


# ------------------------------------------------------------------ FORMAT.md section 15, read with h5py only
def _sha(arrays, fields) -> str:
    import hashlib

    h = hashlib.sha256()
    for name, dtype in fields:
        a = np.ascontiguousarray(arrays[name], dtype=dtype)
        h.update(f"{name}:{','.join(str(s) for s in a.shape)};".encode("ascii"))
        h.update(a.tobytes())
    return h.hexdigest()


def test_section_15_per_spec(mdb):
    """Read /magnetic per FORMAT.md section 15 without basisdb's reader, recompute the hashes,
    reconstruct the bases (section 6.1) and check the signed invariance."""
    import h5py

    ops_fields = [("rotations", "<i1"), ("translations", "<u1"), ("time_reversals", "<u1")]
    basis_fields = [("frequencies", "<i1"), ("orbit_ptr", "<i4"), ("phases", "<u1"), ("extinct", "<i1")]
    with h5py.File(mdb.path, "r") as f:
        den, kmax = int(f.attrs["denominator"]), int(f.attrs["kmax"])
        assert int(f.attrs["format_version"]) == 2
        ints_ds, strs_ds = f["magnetic/index/integers"], f["magnetic/index/strings"]
        cols = ints_ds.attrs["columns"].split(",")
        assert cols[:10] == [
            "uni_number",
            "litvin_number",
            "type",
            "number",
            "order",
            "family_hall_number",
            "family_number",
            "even_hall_number",
            "even_basis",
            "odd_basis",
        ]
        assert ints_ds.shape == (N_TYPES, 22) and strs_ds.attrs["columns"] == "bns_number,og_number,sha256"
        ints, strs = ints_ds[()], strs_ds[()]
        bstrs = f["magnetic/basis_index/strings"][()]
        row_of = {int(h): i for i, h in enumerate(f["index/integers"][:, 0])}
        for r in (0, 1, 2, 1157, 1158, 1199, 1499, 1650):
            c = dict(zip(cols, ints[r].tolist()))
            g = f[f"magnetic/types/{c['uni_number']}"]
            ops = {name: g[name][()] for name, _ in ops_fields}
            assert _sha(ops, ops_fields) == strs[r, 2].decode()
            if c["even_hall_number"] > 0:
                even = {name: f[f"settings/{c['even_hall_number']}/{name}"][()] for name, _ in basis_fields}
                assert row_of[c["even_hall_number"]] >= 0
            else:
                even = {name: f[f"magnetic/bases/{c['even_basis']}/{name}"][()] for name, _ in basis_fields}
                assert _sha(even, basis_fields) == bstrs[c["even_basis"], 0].decode()
            if c["odd_basis"] >= 0:
                odd = {name: f[f"magnetic/bases/{c['odd_basis']}/{name}"][()] for name, _ in basis_fields}
                assert _sha(odd, basis_fields) == bstrs[c["odd_basis"], 0].decode()
            else:
                assert c["type"] in (1, 2)
                odd = even if c["type"] == 1 else None
            rot, tra = ops["rotations"].astype(int), ops["translations"] / den
            theta = ops["time_reversals"].astype(int)
            x = np.random.default_rng(r).random((2, 3))
            for arrays, sign in ((even, np.ones(len(rot))), (odd, 1.0 - 2.0 * theta)):
                if arrays is None:
                    continue
                F, ptr, ph = arrays["frequencies"].astype(int), arrays["orbit_ptr"], arrays["phases"]
                coef = np.exp(2j * np.pi * ph / den) / np.sqrt(np.repeat(np.diff(ptr), np.diff(ptr)))
                assert np.abs(F).max() <= kmax

                def phi(y, coef=coef, F=F, ptr=ptr):  # (points, n_orbits) complex
                    terms = coef * np.exp(2j * np.pi * y @ F.T)
                    return np.add.reduceat(terms, ptr[:-1], axis=1)

                base = phi(x)
                for R, t, s in zip(rot, tra, sign):
                    assert np.allclose(phi(x @ R.T + t), s * base, atol=1e-12)


# ------------------------------------------------------------------ a damaged or hostile /magnetic section
@pytest.fixture(scope="module")
def copy_of_artifact(mdb, tmp_path_factory):
    import shutil

    p = tmp_path_factory.mktemp("magnetic") / "a.h5"
    shutil.copyfile(mdb.path, p)
    return p


def _tampered(src, tmp_path, edit):
    import shutil

    import h5py

    p = tmp_path / "t.h5"
    shutil.copyfile(src, p)
    with h5py.File(p, "r+") as f:
        edit(f)
    return p


def test_damaged_basis_fails_its_hash(copy_of_artifact, tmp_path):
    def edit(f):
        ds = f["magnetic/bases/0/phases"]
        a = ds[()]
        a[1] = (int(a[1]) + 1) % 24
        ds[...] = a

    with basisdb.open(_tampered(copy_of_artifact, tmp_path, edit)) as db:
        first = next(
            g for g in db.magnetic_groups() if g.even_hall_number == 0
        )  # basis ids: order of first use
        with pytest.raises(basisdb.ArtifactError, match=r"magnetic basis 0 fails its SHA-256 check"):
            db.get(magnetic=first.uni_number)


def test_impossible_index_values_are_refused(copy_of_artifact, tmp_path):
    def edit(f):
        ds = f["magnetic/index/integers"]
        a = ds[()]
        a[0, 9] = 99999  # odd_basis of a type-1 group
        ds[...] = a

    with (
        basisdb.open(_tampered(copy_of_artifact, tmp_path, edit)) as db,
        pytest.raises(
            basisdb.ArtifactError, match=r"UNI 1: odd_basis must name a stored basis for types 3 and 4"
        ),
    ):
        db.get(magnetic=1)


def test_damaged_operations_fail_their_hash(copy_of_artifact, tmp_path):
    def edit(f):
        ds = f["magnetic/types/1159/time_reversals"]
        a = ds[()]
        a[0] = 1 - a[0]
        ds[...] = a

    with basisdb.open(_tampered(copy_of_artifact, tmp_path, edit)) as db:
        with pytest.raises(basisdb.ArtifactError, match=r"UNI 1159 fails its SHA-256 check"):
            db.get(magnetic="136.499")
        assert db.get(magnetic=1158).type == 3  # the others still read


@pytest.mark.slow
def test_small_build_equals_restriction(mdb, tmp_path):
    """A full build at K = 2 holds, for every type, exactly the shipped bases restricted to K = 2
    (including stored bases with no orbit, which only small cut-offs produce)."""
    from basisdb.builder import build_database

    path = tmp_path / "k2.h5"
    build_database(path, kmax=2, jobs=2)
    with basisdb.open(path) as small:
        for uni in range(1, N_TYPES + 1):
            a, b = small.get(magnetic=uni), mdb.get(magnetic=uni, kmax=2)
            for va, vb in ((a.time_even, b.time_even), (a.time_odd, b.time_odd)):
                for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
                    assert np.array_equal(getattr(va, name), getattr(vb, name)), (uni, name)


def test_verify_checks_the_sign_rule(mdb):
    """``verify``'s exact check accepts each view under its own rule and refuses it under the other."""
    from basisdb._magnetic_io import exact_sign_invariance

    for uni in (3, 1158, 1159, 1200):
        mb = mdb.get(magnetic=uni)
        assert exact_sign_invariance(mb.time_odd, mb.time_reversals, odd=True)
        assert exact_sign_invariance(mb.time_even, mb.time_reversals, odd=False)
        assert not exact_sign_invariance(mb.time_odd, mb.time_reversals, odd=False)
        assert not exact_sign_invariance(mb.time_even, mb.time_reversals, odd=True)
