"""The 17 plane groups: independent checks against spglib's space groups, ITA reflection
conditions, invariance, completeness, the lookup API, the file layout and the CLI.

The references are independent of basisdb's plane-group data: spglib's operation
lists (the 3-D space group whose operations, restricted to the plane z = const,
are the plane group), reflection conditions typed from ITA's plane-group tables,
and plain numpy arithmetic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import spglib_exact_operations

import basisdb
from basisdb.cli import cli

ARTIFACT = Path(__file__).resolve().parents[2] / "data" / "basisdb.h5"

#: plane group -> (its full symbol, the spglib hall_number of the space group G whose operations are
#: (diag(R, 1), (t, 0)) for the plane group's (R, t): G acts trivially on z; its setting puts the
#: unique direction along c and the plane group's origin and axes on G's)
SPACE_GROUP_OF = {
    1: ("p1", 1, "P 1"),
    2: ("p2", 4, "P 1 1 2"),
    3: ("p1m1", 20, "P m 1 1"),
    4: ("p1g1", 27, "P b 1 1"),
    5: ("c1m1", 37, "C m 1 1"),
    6: ("p2mm", 125, "P m m 2"),
    7: ("p2mg", 137, "P m a 2"),
    8: ("p2gg", 161, "P b a 2"),
    9: ("c2mm", 173, "C m m 2"),
    10: ("p4", 349, "P 4"),
    11: ("p4mm", 376, "P 4 m m"),
    12: ("p4gm", 377, "P 4 b m"),
    13: ("p3", 430, "P 3"),
    14: ("p3m1", 446, "P 3 m 1"),
    15: ("p31m", 447, "P 3 1 m"),
    16: ("p6", 462, "P 6"),
    17: ("p6mm", 477, "P 6 m m"),
}

SHORT = {3: "pm", 4: "pg", 5: "cm", 6: "pmm", 7: "pmg", 8: "pgg", 9: "cmm", 11: "p4m", 12: "p4g", 17: "p6m"}


def _absent(number: int, h: int, k: int) -> bool:
    """ITA Vol. A, plane-group tables, 'Reflection conditions' (general position), typed by hand."""
    if number == 4:  # p1g1: 0k: k = 2n
        return h == 0 and k % 2 == 1
    if number in (5, 9):  # c1m1, c2mm: hk: h + k = 2n
        return (h + k) % 2 == 1
    if number == 7:  # p2mg: h0: h = 2n
        return k == 0 and h % 2 == 1
    if number == 8:  # p2gg: h0: h = 2n; 0k: k = 2n
        return (k == 0 and h % 2 == 1) or (h == 0 and k % 2 == 1)
    if number == 12:  # p4gm: 0k: k = 2n (h0: h = 2n follows from the 4-fold axis)
        return (h == 0 and k % 2 == 1) or (k == 0 and h % 2 == 1)
    return False


@pytest.fixture(scope="module")
def db():
    return basisdb.open()


def _plane_part_of(hall: int):
    """spglib's operations of ``hall`` as 2-D ops, after checking they act trivially on z."""
    rot, t = spglib_exact_operations(hall)
    assert np.all(rot[:, 2, :2] == 0) and np.all(rot[:, :2, 2] == 0) and np.all(rot[:, 2, 2] == 1), hall
    assert np.all(t[:, 2] == 0), hall
    return rot[:, :2, :2], t[:, :2]


def _op_set(rot, t) -> set:
    return {(tuple(int(v) for v in r.ravel()), tuple(int(v) % 24 for v in s)) for r, s in zip(rot, t)}


# ------------------------------------------------------------------ the independent check
@pytest.mark.parametrize("number", range(1, 18))
def test_space_group_names(number):
    import spglib

    _full, hall, name = SPACE_GROUP_OF[number]
    assert spglib.get_spacegroup_type(hall).international_full == name


@pytest.mark.parametrize("number", range(1, 18))
def test_operations_equal_the_space_group_restricted_to_the_plane(db, number):
    full, hall, _ = SPACE_GROUP_OF[number]
    basis = db.get(plane=number)
    assert basis.setting.hm_full == full
    assert basis.rotations.shape == (basis.setting.order, 2, 2)
    assert _op_set(basis.rotations, basis.translations) == _op_set(*_plane_part_of(hall))
    assert len(basis.rotations) == len(_plane_part_of(hall)[0])


@pytest.mark.parametrize("number", range(1, 18))
def test_basis_equals_space_group_basis_at_l_zero(db, number):
    """Same orbits (as arrays in canonical order, hence as sets), phases relative to the
    representative, and extinctions as the 3-D basis restricted to frequencies with l = 0."""
    _, hall, _ = SPACE_GROUP_OF[number]
    plane, space = db.get(plane=number), db.get(hall=hall)
    assert plane.dim == 2 and plane.frequencies.shape[1] == 2
    l0 = space.frequencies[:, 2] == 0
    sizes = np.diff(space.orbit_ptr)
    keep = l0[space.orbit_ptr[:-1]]
    assert np.array_equal(np.repeat(keep, sizes), l0), "a 3-D orbit mixes l = 0 and l != 0"
    np.testing.assert_array_equal(plane.frequencies, space.frequencies[l0, :2])
    np.testing.assert_array_equal(plane.phases, space.phases[l0])
    np.testing.assert_array_equal(plane.orbit_ptr, np.concatenate([[0], np.cumsum(sizes[keep])]))
    np.testing.assert_array_equal(plane.extinct, space.extinct[space.extinct[:, 2] == 0, :2])
    # as sets too, independent of order
    orbits_2d = {frozenset(map(tuple, plane.orbit(j)[0].tolist())) for j in range(plane.n_orbits)}
    orbits_3d = {
        frozenset((h, k) for h, k, _ in space.orbit(j)[0].tolist()) for j in range(space.n_orbits) if keep[j]
    }
    assert orbits_2d == orbits_3d


@pytest.mark.parametrize("number", range(1, 18))
def test_extinctions_are_ita_reflection_conditions(db, number):
    basis = db.get(plane=number)
    kept = np.concatenate([basis.frequencies, basis.extinct])
    assert len({tuple(k) for k in kept.tolist()}) == len(kept)
    absent = {tuple(k) for k in kept.tolist() if _absent(number, *k)}
    assert {tuple(k) for k in basis.extinct.tolist()} == absent
    K = basis.kmax
    if basis.setting.lattice != "hexagonal":  # signed-permutation rotations: the whole square box is kept
        assert len(kept) == (2 * K + 1) ** 2


@pytest.mark.parametrize("number", range(1, 18))
def test_invariance_at_random_points(db, number):
    basis = db.get(plane=number)
    rng = np.random.default_rng(number)
    x = rng.random((16, 2)) * 3 - 1
    real, cplx = basis.evaluate(x), basis.evaluate(x, real=False)
    assert real.shape == (16, basis.n_basis) and real.dtype == np.float64
    rot, trans = basis.operations()
    for r, t in zip(rot, trans):
        y = x @ r.T + t
        np.testing.assert_allclose(basis.evaluate(y), real, atol=1e-11)
        np.testing.assert_allclose(basis.evaluate(y, real=False), cplx, atol=1e-11)
    assert basis.evaluate(x[0]).shape == (basis.n_basis,)


@pytest.mark.parametrize("number", [1, 4, 8, 9, 12, 13, 15, 17])
def test_orthonormal_complete_and_projector(db, number):
    basis = db.get(plane=number, kmax=5)
    K, n = basis.kmax, 2 * basis.kmax + 2  # n > 2K points per axis: exact quadrature of the products
    u = np.arange(n) / n
    grid = np.stack(np.meshgrid(u, u, indexing="ij"), axis=-1).reshape(-1, 2)
    real = basis.evaluate(grid)
    np.testing.assert_allclose(real.T @ real / len(grid), np.eye(basis.n_basis), atol=1e-11)
    cplx = basis.evaluate(grid, real=False)
    np.testing.assert_allclose(cplx.conj().T @ cplx / len(grid), np.eye(basis.n_basis), atol=1e-11)
    # completeness: the trace of the Reynolds operator on the kept frequency set (plain numpy)
    kept = np.concatenate([basis.frequencies, basis.extinct])
    rot, t_num = basis.rotations, basis.translations
    trace = 0.0
    for r, t in zip(rot, t_num):
        fixed = np.all(kept @ r == kept, axis=1)
        trace += np.exp(2j * np.pi * (kept[fixed] @ t) / 24).sum().real
    assert round(trace / len(rot)) == basis.n_basis
    # orbit-stabiliser: |O| x |stabiliser| = |point group|
    point_group = {tuple(r.ravel()) for r in rot}
    for j in range(basis.n_orbits):
        k0 = basis.orbit(j)[0][0]
        stab = sum(1 for r in map(np.array, point_group) if np.array_equal(k0 @ r.reshape(2, 2), k0))
        assert basis.orbit_sizes[j] * stab == len(point_group)
    # projector: Hermitian, idempotent, trace n_basis, the real basis spans the same space
    P = basis.projector().toarray()
    assert P.shape == ((2 * K + 1) ** 2,) * 2
    np.testing.assert_allclose(P, P.conj().T, atol=1e-13)
    np.testing.assert_allclose(P @ P, P, atol=1e-12)
    assert round(np.trace(P).real) == basis.n_basis
    Br = basis.real_basis().toarray()
    np.testing.assert_allclose(Br @ Br.conj().T, P, atol=1e-12)


def test_features_in_box_space(db):
    """phi(x) = B^T e(x) with e(x) the 2-D plane waves in box-index order."""
    basis = db.get(plane="p4gm", kmax=4)
    K = basis.kmax
    r = np.arange(-K, K + 1)
    box = np.stack(np.meshgrid(r, r, indexing="ij"), axis=-1).reshape(-1, 2)  # (h + K) n + (k + K) order
    x = np.random.default_rng(3).random((5, 2))
    e = np.exp(2j * np.pi * x @ box.T)
    np.testing.assert_allclose(e @ basis.complex_basis().toarray(), basis.evaluate(x, real=False), atol=1e-12)
    np.testing.assert_allclose((e @ basis.real_basis().toarray()).real, basis.evaluate(x), atol=1e-12)


@pytest.mark.parametrize("number", [1, 5, 12, 17])
@pytest.mark.parametrize("kp", [1, 3])
def test_restriction_equals_a_fresh_build(db, number, kp):
    from basisdb.builder.plane_groups import plane_group_record, solve_plane_group

    rec = plane_group_record(number)
    sol = solve_plane_group(rec.rotations, rec.translations, kp)
    basis = db.get(plane=number, kmax=kp)
    assert basis.kmax == kp and basis.n_box == (2 * kp + 1) ** 2
    for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
        np.testing.assert_array_equal(getattr(basis, name), getattr(sol, name), err_msg=name)


# ------------------------------------------------------------------ lookup API
def test_lookup_by_number_and_symbols(db):
    groups = db.plane_groups()
    assert [g.number for g in groups] == list(range(1, 18))
    assert [g.hm_full for g in groups] == [SPACE_GROUP_OF[n][0] for n in range(1, 18)]
    for g in groups:
        b = db.get(plane=g.number)
        assert isinstance(g, basisdb.PlaneGroup) and b.setting == g and b.is_plane
        assert db.get(plane=g.hm_full) is b
        assert db.get(plane=g.hm_short) is b
        assert db.get(plane=g.hm_full.upper()) is b
        assert db.get(plane=str(g.number)) is b
        assert g.n_orbits == b.n_basis and g.n_extinct == len(b.extinct) and g.order == len(b.rotations)
    for number, short in SHORT.items():
        assert db.plane_group(short).number == number
    assert db.plane_group("p 2 m g").number == 7
    assert db.plane_group(np.int64(12)).hm_full == "p4gm"


def test_plane_numbers_do_not_collide_with_space_groups(db):
    assert db.get(17).dim == 3 and db.get(17).number == 17 and not db.get(17).is_plane
    assert db.get(plane=17).setting.hm_full == "p6mm"
    assert db.get("P6mm").number == 183  # the space-group symbol stays a space group
    assert basisdb.get_basis(plane="p2mg").setting.number == 7
    assert "plane=17" in repr(db.get(plane=17))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"plane": 0}, LookupError, "1..17"),
        ({"plane": 18}, LookupError, "1..17"),
        ({"plane": "p5"}, LookupError, "unknown plane group"),
        ({"plane": "P6mm:H"}, LookupError, "unknown plane group"),
        ({"plane": True}, TypeError, "plane group"),
        ({"plane": 1.0}, TypeError, "plane group"),
        ({"plane": 3, "hall": 3}, ValueError, "not both"),
        ({"group": 3, "plane": 3}, ValueError, "not both"),
        ({"plane": 3, "kmax": 99}, ValueError, "exceeds"),
    ],
)
def test_bad_plane_lookups(db, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        db.get(**kwargs)


def test_find_returns_none(db):
    assert db.find(plane="p5") is None
    assert db.find(plane="p4") is not None


def test_evaluate_checks_dimension(db):
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        db.get(plane=11).evaluate(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        db.get(11).evaluate(np.zeros((4, 2)))


def test_file_without_plane_groups_is_still_readable(tmp_path):
    """A file that lacks the optional plane-group section (e.g. an older build) reads normally."""
    from basisdb.builder import build_database

    path = tmp_path / "noplane.h5"
    build_database(path, kmax=2, halls=[1, 2], jobs=1)
    with h5py.File(path, "r+") as f:
        del f["plane_groups"], f["index_plane"]
    db = basisdb.open(path)
    assert db.get(2).n_basis > 0 and db.plane_groups() == []
    with pytest.raises(LookupError, match="no plane groups"):
        db.get(plane=1)
    assert db.verify(invariance_points=1)["plane_groups"] == 0


def test_damaged_plane_group_is_detected(tmp_path):
    import shutil

    path = tmp_path / "bad.h5"
    shutil.copy(ARTIFACT, path)
    with h5py.File(path, "r+") as f:
        ph = f["plane_groups/12/phases"]
        data = ph[()]
        data[5] = (data[5] + 1) % 24
        del f["plane_groups/12/phases"]
        f["plane_groups/12"].create_dataset("phases", data=data)
    db = basisdb.open(path)
    with pytest.raises(basisdb.ArtifactError, match="plane group 12 fails its SHA-256"):
        db.get(plane=12)
    assert db.get(plane=11).n_basis > 0


# ------------------------------------------------------------------ file layout (FORMAT.md section 13)
def test_layout_per_format_md():
    """Read the plane-group section with h5py only, per FORMAT.md section 13, and recompute the hashes."""
    with h5py.File(ARTIFACT, "r") as f:
        assert int(f.attrs["format_version"]) == 2
        assert set(f.keys()) == {"index", "settings", "index_plane", "plane_groups"} | (
            {"magnetic"} if "magnetic" in f else set()
        )
        ints, strs = f["index_plane/integers"], f["index_plane/strings"]
        assert ints.dtype == np.dtype("<i4") and ints.shape == (17, 5)
        assert ints.attrs["columns"] == "number,order,n_orbits,n_frequencies,n_extinct"
        assert strs.dtype.kind == "S" and strs.shape == (17, 5)
        assert strs.attrs["columns"] == "hm_short,hm_full,lattice,point_group,sha256"
        assert sorted(f["plane_groups"].keys(), key=int) == [str(n) for n in range(1, 18)]
        K = int(f.attrs["kmax"])
        for row, s in zip(ints[()], strs[()]):
            number, order, n_orbits, n_freq, n_ext = (int(v) for v in row)
            g = f[f"plane_groups/{number}"]
            assert len(g.attrs) == 0
            spec = [
                ("frequencies", "<i1", (n_freq, 2)),
                ("orbit_ptr", "<i4", (n_orbits + 1,)),
                ("phases", "<u1", (n_freq,)),
                ("extinct", "<i1", (n_ext, 2)),
                ("rotations", "<i1", (order, 2, 2)),
                ("translations", "<u1", (order, 2)),
            ]
            assert set(g.keys()) == {name for name, _, _ in spec}
            h = hashlib.sha256()
            for name, dtype, shape in spec:
                a = g[name][()]
                assert a.dtype == np.dtype(dtype) and a.shape == shape, (number, name)
                h.update(f"{name}:{','.join(map(str, a.shape))};".encode("ascii"))
                h.update(np.ascontiguousarray(a).tobytes())
            assert h.hexdigest() == s[4].rstrip(b"\0").decode("ascii")
            F = g["frequencies"][()]
            assert np.abs(F).max() <= K and g["orbit_ptr"][0] == 0 and g["orbit_ptr"][-1] == n_freq
            assert s[1].rstrip(b"\0").decode() == SPACE_GROUP_OF[number][0]


# ------------------------------------------------------------------ CLI
def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="basisdb", catch_exceptions=True)


def test_cli_list_info_show(monkeypatch):
    monkeypatch.delenv("BASISDB_PATH", raising=False)
    out = _invoke("list", "--plane")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert len(lines) == 19 and lines[-1].startswith("17 plane groups")
    assert lines[12].split()[:3] == ["12", "p4gm", "p4g"]
    out = _invoke("info", "--plane", "p4gm")
    assert out.exit_code == 0, out.output
    fields = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert fields["number"] == "12" and fields["lattice"] == "square" and fields["point_group"] == "4mm"
    out = _invoke("show", "--plane", "pmg", "--limit", "3")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("p2mg (plane group No. 7), K=8:")
    assert "(1,1)  (1,-1) @1/2  (-1,1) @1/2  (-1,-1)" in out.stdout
    # the same GROUP without --plane is a space group
    out = _invoke("info", "7")
    assert out.exit_code == 0 and "Pc" in out.stdout


@pytest.mark.parametrize(
    "args, contains",
    [
        (("info", "--plane", "p5"), "unknown plane group"),
        (("show", "--plane", "18"), "1..17"),
        (("info", "--plane"), "plane GROUP"),
        (("info", "--plane", "3", "--hall", "3"), "--hall"),
        (("list", "--plane", "--number", "3"), "--plane"),
        (("show", "--plane", "p4", "--ops", "x,y,z"), "not both"),
    ],
)
def test_cli_errors_are_one_line(monkeypatch, args, contains):
    monkeypatch.delenv("BASISDB_PATH", raising=False)
    out = _invoke(*args)
    assert out.exit_code != 0 and isinstance(out.exception, SystemExit)
    lines = out.stderr.splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("basisdb: error:") and contains.lower() in lines[0].lower()
    ), lines
