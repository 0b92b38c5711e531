"""An independent reader of the artifact, written only from docs/FORMAT.md.

The reading part uses h5py, numpy and hashlib only (basisdb is not imported
there).  Each setting is reconstructed from the raw datasets, its SHA-256 is
recomputed per FORMAT.md section 8.3, and the basis functions are checked for
invariance under the stored operations.  Only after that is the result compared
with basisdb's own reader.
"""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from pathlib import Path

import h5py
import numpy as np
import pytest

ARTIFACT = Path(__file__).resolve().parents[2] / "data" / "basisdb.h5"
HALLS = [1, 81, 460, 461, 523, 526]

INT_COLUMNS = "hall_number,number,order,n_orbits,n_frequencies,n_extinct,is_default"
STR_COLUMNS = "hall_symbol,hm_short,hm_full,hm_extended,choice,crystal_system,point_group,sha256"
# FORMAT.md section 4 / 8.3: name -> (dtype, trailing shape), in hash order
PAYLOAD = [
    ("frequencies", "<i1", (3,)),
    ("orbit_ptr", "<i4", ()),
    ("phases", "<u1", ()),
    ("extinct", "<i1", (3,)),
    ("rotations", "<i1", (3, 3)),
    ("translations", "<u1", (3,)),
]

pytestmark = pytest.mark.skipif(not ARTIFACT.is_file(), reason="shipped artifact data/basisdb.h5 is missing")


# ============================================================ spec-only reader


def _str(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def box_index(freqs: np.ndarray, kmax: int) -> np.ndarray:
    """FORMAT.md section 5: ((h + K) N + (k + K)) N + (l + K), N = 2K + 1."""
    f = np.asarray(freqs, dtype=np.int64) + kmax
    n = 2 * kmax + 1
    return (f[:, 0] * n + f[:, 1]) * n + f[:, 2]


def canonical_order(freqs: np.ndarray) -> np.ndarray:
    """Permutation sorting by (max|k_i|, |k|^2, -h, -k, -l) ascending (FORMAT.md section 5)."""
    f = np.asarray(freqs, dtype=np.int64).reshape(-1, 3)
    shell = np.abs(f).max(axis=1) if len(f) else np.zeros(0, dtype=np.int64)
    return np.lexsort((-f[:, 2], -f[:, 1], -f[:, 0], (f * f).sum(axis=1), shell))


def is_canonically_increasing(freqs: np.ndarray) -> bool:
    return bool(np.array_equal(canonical_order(freqs), np.arange(len(freqs))))


def payload_sha256(arrays: dict) -> str:
    """FORMAT.md section 8.3."""
    h = hashlib.sha256()
    for name, dtype, _ in PAYLOAD:
        a = np.ascontiguousarray(arrays[name], dtype=dtype)
        h.update(f"{name}:{','.join(str(s) for s in a.shape)};".encode("ascii"))
        h.update(a.tobytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def read_header() -> dict:
    """Root attributes and index tables, with the type checks of FORMAT.md sections 2-3."""
    with h5py.File(ARTIFACT, "r") as f:
        attrs = {}
        for name in ("format", "conventions", "builder_version", "spglib_version"):
            tid = f.attrs.get_id(name).get_type()
            assert isinstance(tid, h5py.h5t.TypeStringID) and tid.is_variable_str(), name
            assert tid.get_cset() == h5py.h5t.CSET_UTF8, name
            assert f.attrs.get_id(name).shape == (), name
            attrs[name] = _str(f.attrs[name])
        for name in ("format_version", "kmax", "denominator", "n_settings"):
            aid = f.attrs.get_id(name)
            tid = aid.get_type()
            assert isinstance(tid, h5py.h5t.TypeIntegerID), name
            assert (tid.get_size(), tid.get_sign(), tid.get_order()) == (
                4,
                h5py.h5t.SGN_2,
                h5py.h5t.ORDER_LE,
            ), name
            assert aid.shape == (), name
            attrs[name] = int(f.attrs[name])
        assert set(f.attrs.keys()) == set(attrs)
        # FORMAT.md sections 13 and 14: the plane-group and magnetic sections are optional (own tests read them)
        assert set(f.keys()) - {"index_plane", "plane_groups", "magnetic"} == {"index", "settings"}

        ints_ds, strs_ds = f["index/integers"], f["index/strings"]
        for ds, cols in ((ints_ds, INT_COLUMNS), (strs_ds, STR_COLUMNS)):
            tid = ds.attrs.get_id("columns").get_type()
            assert isinstance(tid, h5py.h5t.TypeStringID) and tid.is_variable_str()
            assert _str(ds.attrs["columns"]) == cols
        it = ints_ds.id.get_type()
        assert (it.get_size(), it.get_sign(), it.get_order()) == (4, h5py.h5t.SGN_2, h5py.h5t.ORDER_LE)
        st = strs_ds.id.get_type()
        assert isinstance(st, h5py.h5t.TypeStringID) and not st.is_variable_str()
        assert st.get_cset() == h5py.h5t.CSET_ASCII and st.get_strpad() == h5py.h5t.STR_NULLPAD
        ints = ints_ds[()]
        strs = strs_ds[()]
        storage = {name: _storage(ds) for name, ds in (("integers", ints_ds), ("strings", strs_ds))}
        groups = sorted(f["settings"].keys(), key=int)
    cols = STR_COLUMNS.split(",")
    rows = {}
    for r in range(len(ints)):
        row = dict(zip(INT_COLUMNS.split(","), (int(v) for v in ints[r])))
        row.update({c: strs[r, i].rstrip(b"\0").decode("ascii") for i, c in enumerate(cols)})
        rows[row["hall_number"]] = row
    return {"attrs": attrs, "ints": ints, "strs": strs, "rows": rows, "storage": storage, "groups": groups}


def _storage(ds: h5py.Dataset) -> dict:
    plist = ds.id.get_create_plist()
    return {
        "shape": ds.shape,
        "chunks": ds.chunks,
        "maxshape": ds.maxshape,
        "filters": [plist.get_filter(i)[0] for i in range(plist.get_nfilters())],
        "gzip_level": ds.compression_opts,
        "itemsize": ds.dtype.itemsize,
        "n_attrs": len(ds.attrs),
    }


@cache
def read_setting(hall: int) -> dict:
    """Raw payload of /settings/<hall> (FORMAT.md section 4), validated against its index row."""
    header = read_header()
    row = header["rows"][hall]
    with h5py.File(ARTIFACT, "r") as f:
        group = f[f"settings/{hall}"]
        assert set(group.keys()) == {name for name, _, _ in PAYLOAD}
        assert len(group.attrs) == 0
        data, storage = {}, {}
        for name, dtype, tail in PAYLOAD:
            ds = group[name]
            assert ds.dtype == np.dtype(dtype), (name, ds.dtype)
            assert ds.ndim == 1 + len(tail) and ds.shape[1:] == tail, (name, ds.shape)
            data[name] = ds[()]
            storage[name] = _storage(ds)
    return {"row": row, "data": data, "storage": storage}


def reconstruct(data: dict, kmax: int, den: int) -> dict:
    """COO triplets of the complex basis B (FORMAT.md section 6.1) plus helpers."""
    freqs = data["frequencies"].astype(np.int64)
    ptr = data["orbit_ptr"].astype(np.int64)
    phases = data["phases"].astype(np.int64)
    sizes = np.diff(ptr)
    col = np.repeat(np.arange(len(sizes)), sizes)
    vals = np.exp(2j * np.pi * phases / den) / np.sqrt(sizes[col])
    return {
        "rows": box_index(freqs, kmax),
        "cols": col,
        "vals": vals,
        "n_box": (2 * kmax + 1) ** 3,
        "n_cols": len(sizes),
        "freqs": freqs,
        "ptr": ptr,
        "phases": phases,
    }


def dense_block(b: dict, c0: int, c1: int) -> np.ndarray:
    out = np.zeros((b["n_box"], c1 - c0), dtype=np.complex128)
    m = (b["cols"] >= c0) & (b["cols"] < c1)
    out[b["rows"][m], b["cols"][m] - c0] = b["vals"][m]
    return out


def evaluate(b: dict, x: np.ndarray) -> np.ndarray:
    """phi_j(x) = sum_k B[idx(k), j] exp(2 pi i k.x), straight from the definition: (N, n_orbits)."""
    waves = np.exp(2j * np.pi * (x @ b["freqs"].T)) * b["vals"]
    return np.add.reduceat(waves, b["ptr"][:-1], axis=1)


def real_triplets(b: dict, kmax: int, den: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real basis per FORMAT.md section 6.2, as COO triplets (box row, column, coefficient)."""
    freqs, ptr, phases = b["freqs"], b["ptr"], b["phases"]
    where = {int(i): r for r, i in enumerate(b["rows"])}
    orbit_of = b["cols"]
    rows, cols, vals = [], [], []
    col = 0
    for j in range(b["n_cols"]):
        sl = slice(ptr[j], ptr[j + 1])
        f = freqs[sl]
        size = len(f)
        neg = box_index(-f, kmax)
        conj = orbit_of[where[int(neg[0])]]
        if conj == j:
            m = phases[where[int(neg[0])]]
            rows.append(b["rows"][sl])
            vals.append(np.exp(2j * np.pi * (2 * phases[sl] - m) / (2 * den)) / np.sqrt(size))
            cols.append(np.full(size, col))
            col += 1
        elif j < conj:
            c = b["vals"][sl]
            for coeff in (c, -1j * c):  # sqrt(2) Re phi_j, then sqrt(2) Im phi_j
                rows += [b["rows"][sl], neg]
                vals += [coeff / np.sqrt(2), np.conj(coeff) / np.sqrt(2)]
                cols += [np.full(size, col), np.full(size, col)]
                col += 1
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def restrict(data: dict, kp: int) -> dict:
    """FORMAT.md section 7."""
    freqs = data["frequencies"].astype(np.int64)
    ptr = data["orbit_ptr"].astype(np.int64)
    sizes = np.diff(ptr)
    shell = np.abs(freqs).max(axis=1)
    keep = np.array([shell[a:b].max() <= kp for a, b in zip(ptr[:-1], ptr[1:])], dtype=bool)
    rows = np.repeat(keep, sizes)
    new_ptr = np.concatenate([[0], np.cumsum(sizes[keep])])
    ext = data["extinct"].astype(np.int64)
    rots = data["rotations"].astype(np.int64)
    images = np.einsum("gji,mj->mgi", rots, ext)  # R^T k for every R
    ext_keep = np.abs(images).max(axis=(1, 2), initial=0) <= kp
    return {
        "frequencies": freqs[rows],
        "orbit_ptr": new_ptr,
        "phases": data["phases"][rows].astype(np.int64),
        "extinct": ext[ext_keep],
    }


def sparse_key(rows, cols, n_cols) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)


# ============================================================ tests of the spec


def test_root_attributes():
    h = read_header()
    a = h["attrs"]
    assert a["format"] == "basisdb"
    assert a["format_version"] == 2
    assert 1 <= a["kmax"] <= 127
    assert a["kmax"] == 8  # shipped file
    assert a["denominator"] == 24
    assert a["n_settings"] == len(h["ints"]) == len(h["strs"]) == len(h["groups"]) == 530
    assert (
        a["builder_version"] and a["spglib_version"] and "c_{R^T k} = c_k exp(2 pi i k.t)" in a["conventions"]
    )


def test_index_tables():
    h = read_header()
    ints, strs = h["ints"], h["strs"]
    assert ints.dtype == np.dtype("<i4") and ints.shape == (530, 7)
    assert strs.dtype.kind == "S" and strs.shape == (530, 8)
    assert strs.dtype.itemsize == max(len(v.rstrip(b"\0")) for v in strs.ravel())
    assert np.all(np.diff(ints[:, 0]) > 0)
    assert [int(g) for g in h["groups"]] == ints[:, 0].tolist()
    # one default per number in a full build
    assert sorted(ints[ints[:, 6] == 1, 1].tolist()) == list(range(1, 231))
    assert set(np.unique(ints[:, 6]).tolist()) == {0, 1}
    for row in h["rows"].values():
        assert len(row["sha256"]) == 64 and row["sha256"] == row["sha256"].lower()
        int(row["sha256"], 16)
        assert row["crystal_system"] in {
            "triclinic",
            "monoclinic",
            "orthorhombic",
            "tetragonal",
            "trigonal",
            "hexagonal",
            "cubic",
        }
    # Hall symbols are not unique (FORMAT.md section 3.2)
    for a, b in ((322, 324), (326, 328), (330, 332)):
        assert h["rows"][a]["hall_symbol"] == h["rows"][b]["hall_symbol"]
    for _name, st in h["storage"].items():
        assert st["chunks"] == st["shape"]
        assert st["filters"] == [2, 1, 3]  # multi-byte elements: shuffle, deflate, fletcher32
        assert st["gzip_level"] == 9


@pytest.mark.parametrize("hall", HALLS)
def test_setting_metadata(hall):
    row = read_setting(hall)["row"]
    expected = {
        1: (1, "P 1", "", 1),
        81: (14, "P 1 2_1/c 1", "b1", 1),
        460: (167, "R -3 c:H", "H", 1),
        461: (167, "R -3 c:R", "R", 0),
        523: (225, "F m -3 m", "", 1),
        526: (227, "F d -3 m:2", "2", 0),
    }[hall]
    assert (row["number"], row["hm_extended"], row["choice"], row["is_default"]) == expected


@pytest.mark.parametrize("hall", HALLS)
def test_storage_layout(hall):
    s = read_setting(hall)
    for name, st in s["storage"].items():
        shape = st["shape"]
        assert st["chunks"] == tuple(max(1, d) for d in shape), name
        shuffle = [2] if st["itemsize"] > 1 else []
        assert st["filters"] == shuffle + [1, 3], name
        assert st["gzip_level"] == 9
        assert st["n_attrs"] == 0
        if shape[0] == 0:
            assert st["maxshape"] == (None,) + shape[1:]
        else:
            assert st["maxshape"] == shape


@pytest.mark.parametrize("hall", HALLS)
def test_sha256_recomputed(hall):
    s = read_setting(hall)
    assert payload_sha256(s["data"]) == s["row"]["sha256"]
    # any change of content changes the digest
    damaged = dict(s["data"])
    damaged["phases"] = damaged["phases"].copy()
    damaged["phases"][-1] ^= 1
    assert payload_sha256(damaged) != s["row"]["sha256"]


def payload_int64(d: dict) -> tuple[np.ndarray, ...]:
    """frequencies, orbit_ptr, phases, extinct, rotations, translations of one setting as int64."""
    names = ("frequencies", "orbit_ptr", "phases", "extinct", "rotations", "translations")
    return tuple(d[n].astype(np.int64) for n in names)


@pytest.mark.parametrize("hall", HALLS)
def test_arrays_consistent_with_spec(hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    s = read_setting(hall)
    d, row = s["data"], s["row"]
    freqs, ptr, ph, ext, rots, tnum = payload_int64(d)
    # sizes agree with the index row
    assert len(ptr) - 1 == row["n_orbits"] and len(freqs) == row["n_frequencies"]
    assert len(ext) == row["n_extinct"] and len(rots) == len(tnum) == row["order"]
    # orbit_ptr
    assert ptr[0] == 0 and ptr[-1] == len(freqs) and np.all(np.diff(ptr) > 0)
    assert len(ph) == len(freqs)
    # value ranges
    assert np.abs(freqs).max() <= K and (len(ext) == 0 or np.abs(ext).max() <= K)
    assert ph.min() >= 0 and ph.max() < D and tnum.min() >= 0 and tnum.max() < D
    assert np.all(np.abs(np.rint(np.linalg.det(rots.astype(float)))) == 1)
    # canonical order: members, representatives, extinct list; representatives have phase 0
    for a, b in zip(ptr[:-1], ptr[1:]):
        assert is_canonically_increasing(freqs[a:b])
    assert is_canonically_increasing(freqs[ptr[:-1]])
    assert is_canonically_increasing(ext)
    assert np.all(ph[ptr[:-1]] == 0)
    assert np.array_equal(freqs[0], [0, 0, 0])
    # frequencies are distinct, disjoint from extinct, and the union is closed under k -> R^T k
    allf = np.concatenate([freqs, ext])
    idx = box_index(allf, K)
    assert len(np.unique(idx)) == len(idx)
    images = np.einsum("gji,mj->gmi", rots, allf)
    assert np.abs(images).max() <= K
    member = np.zeros((2 * K + 1) ** 3, dtype=bool)
    member[idx] = True
    assert member[box_index(images.reshape(-1, 3), K)].all()
    # full box exactly when the rotations are signed permutations (FORMAT.md section 4)
    signed_perm = bool(np.all(np.abs(rots).sum(axis=1) == 1))
    assert (len(allf) == (2 * K + 1) ** 3) == signed_perm


@pytest.mark.parametrize("hall", HALLS)
def test_exact_invariance_and_extinction(hall):
    """Condition (I) in integers: p_{R^T k} = p_k + k.t_num (mod D); extinct iff a stabiliser has k.t != 0."""
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    d = read_setting(hall)["data"]
    freqs, ptr, ph, ext, rots, tnum = payload_int64(d)
    orbit_of = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    lookup = np.full((2 * K + 1) ** 3, -1, dtype=np.int64)
    lookup[box_index(freqs, K)] = np.arange(len(freqs))
    pg = np.unique(rots, axis=0)  # the point group: distinct R
    n_pg = len(pg)
    stab = np.zeros(len(freqs), dtype=np.int64)
    for R, t in zip(rots, tnum):
        img = freqs @ R  # rows: (R^T k)^T
        dst = lookup[box_index(img, K)]
        assert np.all(dst >= 0)
        assert np.all(orbit_of[dst] == orbit_of)
        assert np.all((ph + freqs @ t - ph[dst]) % D == 0)
        fixed = np.all(img == freqs, axis=1)
        assert np.all((freqs[fixed] @ t) % D == 0)  # a kept frequency has no bad stabiliser
    # orbit-stabiliser over the point group
    for R in pg:
        stab += np.all(freqs @ R == freqs, axis=1)
    sizes = np.diff(ptr)
    assert np.all(sizes[orbit_of] * stab == n_pg)
    # every extinct frequency has a stabiliser with non-integer k.t
    if len(ext):
        bad = np.zeros(len(ext), dtype=bool)
        for R, t in zip(rots, tnum):
            bad |= np.all(ext @ R == ext, axis=1) & ((ext @ t) % D != 0)
        assert bad.all()


@pytest.mark.parametrize("hall", HALLS)
def test_reconstructed_basis_orthonormal_and_invariant(hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    d = read_setting(hall)["data"]
    b = reconstruct(d, K, D)
    # every row of B has at most one non-zero; column norms are 1 -> B^H B = I
    assert len(np.unique(b["rows"])) == len(b["rows"])
    norms = np.bincount(b["cols"], weights=np.abs(b["vals"]) ** 2, minlength=b["n_cols"])
    assert np.allclose(norms, 1.0, atol=1e-13)
    # invariance phi_j(R x + t) == phi_j(x) at random points, independent evaluation
    rng = np.random.default_rng(hall)
    x = rng.random((3, 3))
    rots = d["rotations"].astype(np.float64)
    t = d["translations"].astype(np.float64) / D
    ref = evaluate(b, x)
    assert np.abs(ref).max() > 0.1
    for g in range(0, len(rots), 16):  # batches of operations
        gx = (np.einsum("gij,nj->gni", rots[g : g + 16], x) + t[g : g + 16, None, :]).reshape(-1, 3)
        val = evaluate(b, gx).reshape(-1, len(x), b["n_cols"])
        assert np.abs(val - ref[None]).max() < 1e-10
    # shifting by a lattice vector changes nothing either
    assert np.abs(evaluate(b, x + np.array([1.0, -2.0, 3.0])) - ref).max() < 1e-10


@pytest.mark.parametrize("hall", HALLS)
def test_real_basis_per_spec_is_real_and_orthonormal(hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    b = reconstruct(read_setting(hall)["data"], K, D)
    rows, cols, vals = real_triplets(b, K, D)
    assert cols.max() + 1 == b["n_cols"]  # as many real functions as complex ones
    # real: the coefficient at -k is the conjugate of the one at k, column by column
    n_box = b["n_box"]
    neg_row = (n_box - 1) - rows  # box_index(-k) = N^3 - 1 - box_index(k)
    coeff = dict(zip(sparse_key(rows, cols, b["n_cols"]).tolist(), vals.tolist()))
    mirror = np.array([coeff[k] for k in sparse_key(neg_row, cols, b["n_cols"]).tolist()])
    assert np.abs(mirror - np.conj(vals)).max() < 1e-13
    # orthonormal: Gram = V^H V accumulated over rows shared by columns
    order = np.lexsort((cols, rows))
    r, c, v = rows[order], cols[order], vals[order]
    gram = {}
    starts = np.flatnonzero(np.r_[True, np.diff(r) != 0])
    ends = np.r_[starts[1:], len(r)]
    for s0, s1 in zip(starts, ends):
        for i in range(s0, s1):
            for j in range(s0, s1):
                key = (int(c[i]), int(c[j]))
                gram[key] = gram.get(key, 0) + np.conj(v[i]) * v[j]
    for (i, j), g in gram.items():
        assert abs(g - (1.0 if i == j else 0.0)) < 1e-12, (i, j, g)
    assert all((i, i) in gram for i in range(b["n_cols"]))
    # and the real functions evaluate to real numbers
    x = np.random.default_rng(7).random((4, 3))
    freqs_of_row = np.stack(np.unravel_index(rows, (2 * K + 1,) * 3), axis=1) - K
    w = np.exp(2j * np.pi * (x @ freqs_of_row.T)) * vals
    out = np.zeros((len(x), b["n_cols"]), dtype=np.complex128)
    np.add.at(out.T, cols, w.T)
    assert np.abs(out.imag).max() < 1e-12


def test_worked_example_hall_81():
    """The listing of FORMAT.md section 11."""
    d = read_setting(81)["data"]
    F, ptr, ph = d["frequencies"], d["orbit_ptr"], d["phases"]
    assert d["rotations"].tolist() == [
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[-1, 0, 0], [0, -1, 0], [0, 0, -1]],
        [[-1, 0, 0], [0, 1, 0], [0, 0, -1]],
        [[1, 0, 0], [0, -1, 0], [0, 0, 1]],
    ]
    assert d["translations"].tolist() == [[0, 0, 0], [0, 0, 0], [0, 12, 12], [0, 12, 12]]
    orbits = [(F[ptr[j] : ptr[j + 1]].tolist(), ph[ptr[j] : ptr[j + 1]].tolist()) for j in range(6)]
    assert orbits == [
        ([[0, 0, 0]], [0]),
        ([[1, 0, 0], [-1, 0, 0]], [0, 0]),
        ([[1, 1, 0], [1, -1, 0], [-1, 1, 0], [-1, -1, 0]], [0, 12, 12, 0]),
        ([[0, 1, 1], [0, 1, -1], [0, -1, 1], [0, -1, -1]], [0, 0, 0, 0]),
        ([[1, 1, 1], [1, -1, 1], [-1, 1, -1], [-1, -1, -1]], [0, 0, 0, 0]),
        ([[1, 1, -1], [1, -1, -1], [-1, 1, 1], [-1, -1, 1]], [0, 0, 0, 0]),
    ]
    small = [e.tolist() for e in d["extinct"] if np.abs(e).max() <= 2]
    assert small == [
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, -1],
        [0, -1, 0],
        [1, 0, 1],
        [1, 0, -1],
        [-1, 0, 1],
        [-1, 0, -1],
        [2, 0, 1],
        [2, 0, -1],
        [-2, 0, 1],
        [-2, 0, -1],
    ]
    # all extinctions of P 1 2_1/c 1: 0k0 with k odd, h0l with l odd
    ext = d["extinct"].astype(int)
    screw = (ext[:, 0] == 0) & (ext[:, 2] == 0) & (ext[:, 1] % 2 == 1)
    glide = (ext[:, 1] == 0) & (ext[:, 2] % 2 == 1)
    assert np.all(screw | glide)
    K = read_header()["attrs"]["kmax"]
    r = np.arange(-K, K + 1)
    expected = sum(1 for k in r if k % 2) + sum(1 for hh in r for ll in r if ll % 2)
    assert len(ext) == expected
    # phi_2 = -2 sin(2 pi x) sin(2 pi y)
    b = reconstruct(d, K, 24)
    x = np.random.default_rng(3).random((5, 3))
    assert np.allclose(
        evaluate(b, x)[:, 2], -2 * np.sin(2 * np.pi * x[:, 0]) * np.sin(2 * np.pi * x[:, 1]), atol=1e-12
    )


# ============================================ only now: compare with basisdb


@pytest.fixture(scope="module")
def db():
    import basisdb

    return basisdb.open(ARTIFACT)


@pytest.mark.parametrize("hall", HALLS)
def test_matches_basisdb_complex_basis(db, hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    mine = reconstruct(read_setting(hall)["data"], K, D)
    theirs = db.get(hall=hall).complex_basis()
    assert theirs.shape == (mine["n_box"], mine["n_cols"])
    step = 512
    for c0 in range(0, mine["n_cols"], step):
        c1 = min(c0 + step, mine["n_cols"])
        a = dense_block(mine, c0, c1)
        bl = theirs[:, c0:c1].toarray()
        assert np.abs(a - bl).max() < 1e-12


@pytest.mark.parametrize("hall", HALLS)
def test_matches_basisdb_real_basis_and_projector(db, hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    mine = reconstruct(read_setting(hall)["data"], K, D)
    basis = db.get(hall=hall)
    n = mine["n_cols"]
    # real basis (FORMAT.md section 6.2)
    rows, cols, vals = real_triplets(mine, K, D)
    theirs = basis.real_basis().tocoo()
    mk, tk = sparse_key(rows, cols, n), sparse_key(theirs.row, theirs.col, n)
    keep = np.abs(theirs.data) > 0
    om, ot = np.argsort(mk), np.argsort(tk[keep])
    assert np.array_equal(mk[om], tk[keep][ot])
    assert np.abs(vals[om] - theirs.data[keep][ot]).max() < 1e-12
    # projector (FORMAT.md section 6.3): block formula e((p_k - p_k')/D) / |O|
    pr, pc, pv = [], [], []
    for j in range(n):
        sl = slice(mine["ptr"][j], mine["ptr"][j + 1])
        r, p = mine["rows"][sl], mine["phases"][sl]
        pr.append(np.repeat(r, len(r)))
        pc.append(np.tile(r, len(r)))
        pv.append((np.exp(2j * np.pi * (p[:, None] - p[None, :]) / D) / len(r)).ravel())
    pr, pc, pv = np.concatenate(pr), np.concatenate(pc), np.concatenate(pv)
    proj = basis.projector().tocoo()
    keep = np.abs(proj.data) > 1e-15
    mk, tk = sparse_key(pr, pc, mine["n_box"]), sparse_key(proj.row[keep], proj.col[keep], mine["n_box"])
    om, ot = np.argsort(mk), np.argsort(tk)
    assert np.array_equal(mk[om], tk[ot])
    assert np.abs(pv[om] - proj.data[keep][ot]).max() < 1e-12


@pytest.mark.parametrize("hall", HALLS)
@pytest.mark.parametrize("kp", [1, 3])
def test_restriction_matches_basisdb(db, hall, kp):
    restricted = restrict(read_setting(hall)["data"], kp)
    theirs = db.get(hall=hall, kmax=kp)
    for name in ("frequencies", "orbit_ptr", "phases", "extinct"):
        assert np.array_equal(restricted[name], getattr(theirs, name)), name
    assert restricted["frequencies"].size == 0 or np.abs(restricted["frequencies"]).max() <= kp


@pytest.mark.parametrize("hall", HALLS)
def test_matches_basisdb_metadata(db, hall):
    row = read_setting(hall)["row"]
    s = db.get_setting(hall=hall)
    for name in (
        "hall_number",
        "number",
        "order",
        "n_orbits",
        "n_frequencies",
        "n_extinct",
        "hall_symbol",
        "hm_short",
        "hm_full",
        "hm_extended",
        "choice",
        "crystal_system",
        "point_group",
    ):
        assert getattr(s, name) == row[name], name
    assert s.is_default == bool(row["is_default"])
    assert (
        db.kmax == read_header()["attrs"]["kmax"] and db.denominator == read_header()["attrs"]["denominator"]
    )


@pytest.mark.parametrize("hall", HALLS)
def test_gemmi_absences_and_conjugate_phases(hall):
    """CONVENTIONS.md section 9: same absences as gemmi, phases conjugate to gemmi's phase_shift."""
    gemmi = pytest.importorskip("gemmi")
    h = read_header()
    D = h["attrs"]["denominator"]
    d = read_setting(hall)["data"]
    ops = list(gemmi.spacegroup_table_itb())[hall - 1].operations()
    freqs = d["frequencies"].astype(int)
    ext = d["extinct"].astype(int)
    assert not any(ops.is_systematically_absent(k) for k in freqs.tolist())
    assert all(ops.is_systematically_absent(k) for k in ext.tolist())
    ptr = d["orbit_ptr"]
    ph = d["phases"].astype(int)
    lookup = {tuple(k): int(p) for k, p in zip(freqs.tolist(), ph.tolist())}
    n_pg = len(np.unique(d["rotations"], axis=0))
    for j in range(0, len(ptr) - 1, max(1, (len(ptr) - 1) // 60)):
        k0 = freqs[ptr[j]].tolist()
        assert (ptr[j + 1] - ptr[j]) * ops.epsilon_factor_without_centering(k0) == n_pg
        for op in ops:
            h2 = tuple(op.apply_to_hkl(k0))
            gemmi_num = op.phase_shift(k0) / (2 * np.pi) * D
            assert abs(gemmi_num - round(gemmi_num)) < 1e-9
            assert (lookup[h2] + round(gemmi_num)) % D == 0


# ================================= sign conventions need a non-centrosymmetric group
# In the six settings above the inversion sits at the origin, so conjugated phases
# would be invariant too.  P 4_1 (hall 350) and P 6_1 (hall 463) tell the signs apart.


@pytest.mark.parametrize("hall", [350, 463])
def test_phase_sign_convention(hall):
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    s = read_setting(hall)
    assert payload_sha256(s["data"]) == s["row"]["sha256"]
    d = s["data"]
    b = reconstruct(d, K, D)
    flipped = dict(b, vals=np.conj(b["vals"]))  # exp(-2 pi i p/D): the crystallographic sign
    rots = d["rotations"].astype(np.float64)
    t = d["translations"].astype(np.float64) / D
    x = np.random.default_rng(hall).random((4, 3))
    gx = (np.einsum("gij,nj->gni", rots, x) + t[:, None, :]).reshape(-1, 3)
    for basis, invariant in ((b, True), (flipped, False)):
        ref = evaluate(basis, x)
        err = np.abs(evaluate(basis, gx).reshape(len(rots), len(x), -1) - ref[None]).max()
        assert (err < 1e-10) == invariant, err


@pytest.mark.parametrize("hall", [350, 463])
def test_point_encoding_needs_conjugate(hall):
    """CONVENTIONS.md section 8: P conj(e(x)) is invariant, P e(x) in general is not."""
    h = read_header()
    K, D = h["attrs"]["kmax"], h["attrs"]["denominator"]
    d = read_setting(hall)["data"]
    b = reconstruct(d, K, D)
    rots = d["rotations"].astype(np.float64)
    t = d["translations"].astype(np.float64) / D
    x = np.random.default_rng(5).random((2, 3))

    def project(waves):  # (N, n) plane-wave values on b["freqs"] -> P @ waves in box order
        s = np.add.reduceat(waves * np.conj(b["vals"]), b["ptr"][:-1], axis=1)  # B^H w
        return b["vals"] * s[:, b["cols"]]  # B (B^H w), one entry per stored frequency

    def enc(y, sign):
        return project(np.exp(sign * 2j * np.pi * (y @ b["freqs"].T)))

    worst = {+1: 0.0, -1: 0.0}
    for R, tt in zip(rots, t):
        gx = x @ R.T + tt
        for sign in worst:
            worst[sign] = max(worst[sign], np.abs(enc(gx, sign) - enc(x, sign)).max())
    assert worst[-1] < 1e-10  # P conj(e(x))
    assert worst[+1] > 1e-2  # P e(x)


def test_shared_constants_match_the_spec():
    """basisdb._constants (imported by reader and builder) holds the numbers FORMAT.md fixes."""
    from basisdb import _constants as c
    from basisdb._format import PAYLOAD_FIELDS

    h = read_header()
    assert c.DEN == h["attrs"]["denominator"] == 24
    assert c.N_SETTINGS == h["attrs"]["n_settings"] == 530  # the shipped file holds every setting
    freq_dtype = dict((name, dtype) for name, dtype, _ in PAYLOAD)["frequencies"]
    assert (
        c.MAX_KMAX
        == np.iinfo(np.dtype(freq_dtype)).max
        == np.iinfo(PAYLOAD_FIELDS["frequencies"][0]).max
        == 127
    )
    spec = (Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md").read_text()
    assert f"1 <= K <= {c.MAX_KMAX}" in spec and f"{c.MAX_ORDER} for F m -3 m" in spec
    assert f"`hall_number` 1..{c.N_SETTINGS}" in spec
