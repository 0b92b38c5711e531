"""Real crystal structures and re-presentations of them, for the benchmarks and the structure tests.

Shared by bench/ and tests/ (imported there as ``crystals`` through the shim tests/crystals.py);
it lives here because bench code does not import from tests.

Literature structures (room-temperature experimental values; asymmetric units expanded
with spglib's operation table of the named Hall setting):

| name | group (setting) | source |
|---|---|---|
| NaCl | F m -3 m | Wyckoff, Crystal Structures vol. 1 (1963): a = 5.6402 |
| diamond-1, diamond-2 | F d -3 m origin choices 1 and 2 | a = 3.5668 (Straumanis & Aka 1951); C at 8a |
| wurtzite ZnO | P 6_3 m c (polar) | Kisi & Elcombe, Acta Cryst. C45 (1989) 1867 |
| corundum-H, corundum-R | R -3 c, hexagonal and rhombohedral axes | Lewis, Schwarzenbach & Flack, Acta Cryst. A38 (1982) 733 |
| rutile TiO2 | P 4_2/m n m | Burdett et al., JACS 109 (1987) 3639 |
| anatase-1, anatase-2 | I 4_1/a m d origin choices 1 and 2 | Burdett et al. (1987) |
| alpha-quartz | P 3_2 2 1 (chiral) | Le Page & Donnay, Acta Cryst. B32 (1976) 2456 |
| beta-Ga2O3 | C 2/m (monoclinic, centred) | Ahman, Svensson & Albertsson, Acta Cryst. C52 (1996) 1336 |
| Mg | P 6_3/m m c | Walker & Marezio, Acta Metall. 7 (1959) 769 |
| marcasite FeS2 | P n n m (orthorhombic) | Brostigen & Kjekshus, Acta Chem. Scand. 23 (1969) 2186 |
| alpha-U | C m c m (orthorhombic, centred) | Barrett, Mueller & Hitterman, Phys. Rev. 129 (1963) 625 |

Datasets (../shared/datasets, CDVAE's copies): carbon_24 (Pickard, Materials Cloud 2020.0026)
and perov_5 (Castelli et al. 2012).
"""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from basisdb._cif import atomic_number, lattice_from_parameters

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _spglib():
    import spglib

    if hasattr(spglib, "error") and hasattr(spglib.error, "OLD_ERROR_HANDLING"):
        spglib.error.OLD_ERROR_HANDLING = False
    return spglib


def expand(hall: int, cellpar, sites) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-cell content of an asymmetric unit [(symbol, (x, y, z)), ...] under setting ``hall``."""
    sym = _spglib().get_symmetry_from_database(hall)
    rot, tra = np.asarray(sym["rotations"]), np.asarray(sym["translations"])
    pos, num = [], []
    for symbol, x in sites:
        kept: list[np.ndarray] = []
        for y in (np.einsum("gij,j->gi", rot, np.asarray(x, float)) + tra) % 1.0:
            if not any(np.abs((y - k) - np.rint(y - k)).max() < 1e-6 for k in kept):
                kept.append(y)
        pos += kept
        num += [atomic_number(symbol)] * len(kept)
    return lattice_from_parameters(*cellpar), np.array(pos), np.array(num)


def _hex(a, c):
    return (a, a, c, 90, 90, 120)


LITERATURE = {
    "NaCl": (523, (5.6402,) * 3 + (90,) * 3, [("Na", (0, 0, 0)), ("Cl", (0.5, 0.5, 0.5))]),
    "diamond-1": (525, (3.5668,) * 3 + (90,) * 3, [("C", (0, 0, 0))]),
    "diamond-2": (526, (3.5668,) * 3 + (90,) * 3, [("C", (0.125, 0.125, 0.125))]),
    "wurtzite-ZnO": (480, _hex(3.2496, 5.2042), [("Zn", (1 / 3, 2 / 3, 0)), ("O", (1 / 3, 2 / 3, 0.3819))]),
    "corundum-H": (460, _hex(4.7589, 12.991), [("Al", (0, 0, 0.35216)), ("O", (0.30624, 0, 0.25))]),
    "rutile-TiO2": (
        419,
        (4.5937, 4.5937, 2.9587, 90, 90, 90),
        [("Ti", (0, 0, 0)), ("O", (0.30478, 0.30478, 0))],
    ),
    "anatase-1": (426, (3.7845, 3.7845, 9.5143, 90, 90, 90), [("Ti", (0, 0, 0)), ("O", (0, 0, 0.2081))]),
    "anatase-2": (
        427,
        (3.7845, 3.7845, 9.5143, 90, 90, 90),
        [("Ti", (0, 0.75, 0.125)), ("O", (0, 0.25, 0.0831))],
    ),
    "alpha-quartz": (
        443,
        _hex(4.9134, 5.4052),
        [("Si", (0.4697, 0, 2 / 3)), ("O", (0.4135, 0.2669, 0.7858))],
    ),
    "beta-Ga2O3": (
        63,
        (12.214, 3.0371, 5.7981, 90, 103.83, 90),
        [
            ("Ga", (0.0904, 0, 0.7948)),
            ("Ga", (0.3414, 0, 0.6857)),
            ("O", (0.1674, 0, 0.1011)),
            ("O", (0.4957, 0, 0.2553)),
            ("O", (0.8279, 0, 0.4365)),
        ],
    ),
    "Mg-hcp": (488, _hex(3.2094, 5.2108), [("Mg", (1 / 3, 2 / 3, 0.25))]),
    "marcasite-FeS2": (
        275,
        (4.4431, 5.4239, 3.3857, 90, 90, 90),
        [("Fe", (0, 0, 0)), ("S", (0.2002, 0.3780, 0))],
    ),
    "alpha-U": (298, (2.8537, 5.8695, 4.9548, 90, 90, 90), [("U", (0, 0.1025, 0.25))]),
}


def literature(name: str):
    hall, cellpar, sites = LITERATURE[name]
    return expand(hall, cellpar, sites)


def corundum_rhombohedral():
    """Corundum in its primitive rhombohedral cell (obverse setting of the hexagonal cell)."""
    L, x, z = literature("corundum-H")
    M = np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3.0  # rows: a_R in hexagonal coordinates
    y = (x @ np.linalg.inv(M)) % 1.0
    key = np.rint(y * 1e6).astype(np.int64) % 10**6
    _, keep = np.unique(key, axis=0, return_index=True)
    keep = np.sort(keep)
    return M @ L, y[keep], z[keep]


def real_crystals() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = {name: literature(name) for name in LITERATURE}
    out["corundum-R"] = corundum_rhombohedral()
    return out


# ---------------------------------------------------------------- datasets
@lru_cache(maxsize=4)
def dataset_rows(name: str) -> tuple[dict, ...]:
    path = DATASETS / name / f"{name}.csv"
    with open(path, newline="") as fh:
        return tuple(csv.DictReader(fh))


def cif_to_cell(text: str):
    from basisdb._cif import read_cif

    return read_cif(text)


# ---------------------------------------------------------------- presentations
def random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_unimodular(rng, det: int = 1, steps: int = 4) -> np.ndarray:
    m = np.eye(3, dtype=np.int64)
    for _ in range(steps):
        i, j = rng.choice(3, size=2, replace=False)
        e = np.eye(3, dtype=np.int64)
        e[i, j] = rng.choice([-1, 1])
        m = e @ m
    if det == -1:
        m[0] = -m[0]
    return m


def supercell(lattice, positions, numbers, S):
    """Supercell with rows S @ lattice; returns (lattice, positions, numbers, index of the original atom)."""
    S = np.asarray(S, dtype=np.int64)
    d = round(abs(np.linalg.det(S)))
    Sinv = np.linalg.inv(S.astype(float))
    rng = range(-d, d + 1)
    pts = np.array([[a, b, c] for a in rng for b in rng for c in rng], float) @ Sinv
    pts = pts - np.floor(pts + 1e-9)
    key = np.rint(pts * 1e6).astype(np.int64) % 10**6
    _, first = np.unique(key, axis=0, return_index=True)
    cosets = pts[np.sort(first)]
    assert len(cosets) == d, (len(cosets), d)
    new = (positions @ Sinv)[:, None, :] + cosets[None, :, :]
    index = np.repeat(np.arange(len(positions)), d)
    return S @ lattice, new.reshape(-1, 3), np.repeat(numbers, d), index


def represent(cell, rng, kinds=("shift", "cell", "supercell", "permute", "rotate", "unwrap")):
    """A random re-presentation of the same crystal.

    Returns (lattice, positions, numbers, index): index[j] is the original atom that new atom j is
    (a lattice translate of).  kinds: any of shift, cell, lefthanded, supercell, permute, rotate, unwrap.
    """
    L, x, z = (np.array(a) for a in cell)
    index = np.arange(len(x))
    if "supercell" in kinds:
        S = np.diag(rng.integers(1, 3, size=3))
        if rng.random() < 0.5:
            S = S @ random_unimodular(rng, steps=2)
        L, x, z, idx = supercell(L, x, z, S)
        index = index[idx]
    if "cell" in kinds or "lefthanded" in kinds:
        M = random_unimodular(rng, det=-1 if "lefthanded" in kinds else 1)
        L = M @ L
        x = x @ np.linalg.inv(M.astype(float))
    if "shift" in kinds:
        x = x + rng.random(3)
    if "rotate" in kinds:
        L = L @ random_rotation(rng).T
    if "unwrap" in kinds:
        x = x - np.floor(x) + rng.integers(-2, 3, size=x.shape)
    else:
        x = x - np.floor(x)
    if "permute" in kinds:
        p = rng.permutation(len(x))
        x, z, index = x[p], z[p], index[p]
    return L, x, z, index


def in_setting(cell, hall: int, symprec: float = 1e-5):
    """The crystal's conventional cell in setting ``hall`` of its group (spglib), with the atom map.

    Returns (lattice, positions, numbers, index, operations as 'x,y,z' strings of that setting).
    """
    spglib = _spglib()
    L, x, z = cell
    ds = spglib.get_symmetry_dataset((L, x, z), symprec=symprec, hall_number=hall)
    prim_to_orig = {}
    for i, m in enumerate(ds.mapping_to_primitive):
        prim_to_orig.setdefault(int(m), i)
    index = np.array([prim_to_orig[int(m)] for m in ds.std_mapping_to_primitive])
    sym = spglib.get_symmetry_from_database(hall)
    from basisdb import format_triplet

    ops = [
        format_triplet(r, np.rint(np.asarray(t) * 24).astype(int) % 24)
        for r, t in zip(sym["rotations"], sym["translations"])
    ]
    return np.asarray(ds.std_lattice), np.asarray(ds.std_positions), np.asarray(ds.std_types), index, ops


def asymmetric_unit(positions, numbers, ops) -> np.ndarray:
    """Indices of one atom per orbit under ``ops`` (CIF triplets)."""
    from basisdb import parse_triplets

    rot, tnum = parse_triplets(list(ops))
    covered = np.zeros(len(positions), dtype=bool)
    keep = []
    for i, x in enumerate(positions):
        if covered[i]:
            continue
        keep.append(i)
        images = (np.einsum("gij,j->gi", rot, x) + tnum / 24.0) % 1.0
        d = images[:, None, :] - positions[None, :, :]
        d -= np.rint(d)
        covered |= (np.abs(d).max(axis=2) < 1e-6).any(axis=0) & (numbers == numbers[i])
    return np.array(keep)


def to_cif(lattice, positions, numbers, ops=("x,y,z",), name="crystal", number=None) -> str:
    """A minimal CIF: cell parameters, symmetry operations and the atoms (the asymmetric unit
    when ``ops`` has more than the identity); ``number`` writes _space_group_IT_number."""
    from basisdb._cif import ELEMENTS

    if len(ops) > 1:
        keep = asymmetric_unit(np.asarray(positions, float), np.asarray(numbers), ops)
        positions, numbers = np.asarray(positions)[keep], np.asarray(numbers)[keep]

    L = np.asarray(lattice, float)
    a, b, c = np.linalg.norm(L, axis=1)
    ang = lambda u, v: np.degrees(np.arccos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))  # noqa: E731
    out = io.StringIO()
    out.write(f"data_{name}\n")
    for tag, val in (
        ("length_a", a),
        ("length_b", b),
        ("length_c", c),
        ("angle_alpha", ang(L[1], L[2])),
        ("angle_beta", ang(L[0], L[2])),
        ("angle_gamma", ang(L[0], L[1])),
    ):
        out.write(f"_cell_{tag} {val:.10f}\n")
    if number is not None:
        out.write(f"_space_group_IT_number {number}\n")
    else:
        out.write("_symmetry_space_group_name_H-M 'P 1'\n")
    out.write("loop_\n_symmetry_equiv_pos_as_xyz\n")
    for op in ops:
        out.write(f"  '{op}'\n")
    out.write(
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    )
    for i, (p, zz) in enumerate(zip(positions, numbers)):
        out.write(f"  {ELEMENTS[zz]}{i} {ELEMENTS[zz]} {p[0]:.12f} {p[1]:.12f} {p[2]:.12f}\n")
    return out.getvalue()


# ---------------------------------------------------------------- random crystals in any setting
def random_cellpar(setting, rng, scale=1.0):
    """Cell parameters compatible with a Setting's crystal system, unique axis and axes."""
    a, b, c = rng.uniform(4.0, 8.0, 3) * scale
    system, choice = setting.crystal_system, setting.choice.lstrip("-")
    if system == "triclinic":
        return (a, b, c, *rng.uniform(75, 105, 3))
    if system == "monoclinic":
        angle = rng.uniform(95, 115)
        axis = choice[:1] if choice[:1] in ("a", "b", "c") else "b"
        return {"a": (a, b, c, angle, 90, 90), "b": (a, b, c, 90, angle, 90), "c": (a, b, c, 90, 90, angle)}[
            axis
        ]
    if system == "orthorhombic":
        return (a, b, c, 90, 90, 90)
    if system == "tetragonal":
        return (a, a, c, 90, 90, 90)
    if system in ("trigonal", "hexagonal"):
        if choice == "R":
            return (a, a, a, *[rng.uniform(50, 80)] * 3)
        return (a, a, c, 90, 90, 120)
    return (a, a, a, 90, 90, 90)


def random_crystal(setting, rng, sites=None, species=(6, 8, 14), min_distance=0.5, tries=50):
    """A crystal whose symmetry is (generically) exactly the setting's group: a few random general
    positions expanded with spglib's operations of ``setting.hall_number``."""
    sym = _spglib().get_symmetry_from_database(setting.hall_number)
    R, T = np.asarray(sym["rotations"]), np.asarray(sym["translations"])
    from basisdb.structures import _closest_pair

    sites = sites or ((1, 2) if len(R) >= 48 else (2, 4))  # keep cubic cells small
    for _ in range(tries):
        n = int(rng.integers(*sites))
        x = rng.random((n, 3))
        pos = (np.einsum("gij,nj->ngi", R, x) + T).reshape(-1, 3) % 1.0
        z = np.repeat(rng.choice(species, size=n), len(R))
        L = lattice_from_parameters(*random_cellpar(setting, rng, scale=max(1.0, n * len(R) / 32) ** (1 / 3)))
        if _closest_pair(L, pos)[0] >= min_distance:
            return L, pos, z
    raise RuntimeError(f"no random crystal for hall {setting.hall_number}")
