"""Build the database: all (or selected) spglib settings, in parallel, into one HDF5 file."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from basisdb._constants import N_MAGNETIC_TYPES, N_PLANE_GROUPS, N_SETTINGS
from basisdb._format import (
    COLUMNS,
    INDEX,
    INDEX_INTEGERS,
    INDEX_STRINGS,
    INTEGERS,
    MAGNETIC,
    MAGNETIC_BASES,
    MAGNETIC_BASIS_FIELDS,
    MAGNETIC_BASIS_INDEX,
    MAGNETIC_BASIS_INDEX_INTEGERS,
    MAGNETIC_BASIS_INDEX_STRINGS,
    MAGNETIC_INDEX,
    MAGNETIC_INDEX_INTEGERS,
    MAGNETIC_INDEX_STRINGS,
    MAGNETIC_OPS_FIELDS,
    MAGNETIC_TYPES,
    MAX_KMAX,
    PAYLOAD_FIELDS,
    PLANE_GROUPS,
    PLANE_INDEX,
    PLANE_INDEX_INTEGERS,
    PLANE_INDEX_STRINGS,
    PLANE_PAYLOAD_FIELDS,
    SETTINGS,
    STRINGS,
    payload_sha256,
    root_attributes,
)
from basisdb._version import __version__

from .orbits import OrbitSolution, solve_orbits
from .plane_groups import PlaneGroupRecord, plane_group_record, solve_plane_group
from .settings import SettingRecord, default_hall_numbers, setting_record, spglib_version
from .writer import atomic_h5, create_group, write_dataset

#: the builder refuses a request whose estimated peak memory exceeds this fraction of RAM
_MEMORY_FRACTION = 0.5


@dataclass(frozen=True)
class BuiltSetting:
    """One setting's record and solution, as returned by a worker."""

    record: SettingRecord
    solution: OrbitSolution


def _build_one(args: tuple[int, int]) -> BuiltSetting:
    hall, kmax = args
    record = setting_record(hall)
    return BuiltSetting(record, solve_orbits(record.rotations, record.translations, kmax))


def estimate_peak_memory(kmax: int, jobs: int) -> int:
    """Upper bound (bytes) of the build's peak memory (resident set of the whole process tree).

    ~100 MB for the main process (numpy, h5py, spglib, networkx, the writer), ~80 MB
    per pool worker when ``jobs > 1``, and ~1600 bytes per box frequency in each
    solving process (the networkx graph and numpy work arrays of one setting).
    Measured with bench/bench_scale.py (docs/BENCHMARKS.md), all 530 settings:
    jobs=2: 223, 229, 248, 287, 510 MiB at K = 4, 8, 12, 16, 24 (estimate 250, 263,
    296, 358, 607 MiB); jobs=1: 89 and 106 MiB at K = 4 and 12 (estimate 96, 119 MiB).
    """
    nbox = (2 * kmax + 1) ** 3
    workers = 0 if jobs == 1 else jobs
    return int(100e6 + 80e6 * workers + 1600 * nbox * jobs)


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_build_request(kmax: int, jobs: int) -> None:
    """Raise ValueError for a bad ``kmax``/``jobs``, MemoryError for one that would not fit in memory."""
    if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)):
        raise ValueError(f"kmax must be an integer, got {kmax!r}")
    if kmax < 1:
        raise ValueError(f"kmax must be >= 1, got {kmax}")
    if kmax > MAX_KMAX:
        raise ValueError(f"kmax must be <= {MAX_KMAX} (frequencies are stored as int8), got {kmax}")
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    need, have = estimate_peak_memory(kmax, jobs), _total_memory()
    if have is not None and need > _MEMORY_FRACTION * have:
        raise MemoryError(
            f"building at kmax={kmax} with {jobs} job(s) needs about {need / 2**30:.1f} GiB, "
            f"more than {_MEMORY_FRACTION:.0%} of this machine's {have / 2**30:.1f} GiB; "
            "use a smaller kmax or fewer jobs"
        )


def check_output_path(path: str | os.PathLike) -> None:
    """Raise if ``path`` cannot receive the artifact (a directory, or a missing parent)."""
    dest = Path(path).absolute()
    if dest.is_dir():
        raise IsADirectoryError(f"output path {dest} is a directory")
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"output directory {dest.parent} does not exist")


def parse_selection(halls: Iterable[int] | None) -> list[int]:
    """Sorted unique hall numbers (all 530 for None); ValueError outside 1..530."""
    if halls is None:
        return list(range(1, N_SETTINGS + 1))
    out = sorted({int(h) for h in halls})
    if not out:
        raise ValueError("no settings selected")
    bad = [h for h in out if not 1 <= h <= N_SETTINGS]
    if bad:
        raise ValueError(f"hall_number must be in 1..{N_SETTINGS}, got {bad[0]}")
    return out


def build_database(
    path: str | os.PathLike,
    kmax: int = 8,
    halls: Sequence[int] | None = None,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    magnetic: bool | None = None,
) -> dict:
    """Build the artifact for ``halls`` (default: all 530) at cut-off ``kmax`` into ``path``.

    ``magnetic``: also write the 1,651 magnetic space-group types (FORMAT.md section 15);
    default: only in a full build (all 530 settings).
    Writes atomically; two builds with the same arguments give byte-identical
    files whatever ``jobs`` is.  ``progress(n)`` is called after each setting.
    Returns a summary dict (settings, kmax, bytes).
    """
    check_build_request(kmax, jobs)
    selected = parse_selection(halls)
    check_output_path(path)
    default_hall_numbers()  # computed once here; forked workers inherit the cache
    tasks = [(h, int(kmax)) for h in selected]
    index: dict[str, list] = {name: [] for name in INDEX_INTEGERS + INDEX_STRINGS}

    with atomic_h5(path) as f:
        for name, value in root_attributes(kmax, len(selected), __version__, spglib_version()).items():
            f.attrs[name] = value
        settings = create_group(f, SETTINGS)
        for built in _map(tasks, jobs):
            _write_setting(settings, built, index)
            if progress is not None:
                progress(1)
        _write_index(create_group(f, INDEX), index, INDEX_INTEGERS, INDEX_STRINGS)
        _write_plane_groups(f, int(kmax), jobs)
        if magnetic or (magnetic is None and len(selected) == N_SETTINGS):
            _write_magnetic(f, int(kmax), jobs, frozenset(selected))
    return {
        "path": os.fspath(path),
        "kmax": int(kmax),
        "settings": len(selected),
        "bytes": os.path.getsize(path),
    }


def _map(tasks: list[tuple], jobs: int, func: Callable = _build_one) -> Iterable:
    """``func`` over ``tasks`` (the arguments of one setting or magnetic type each), in ``jobs``
    processes, results in order."""
    if jobs == 1 or len(tasks) == 1:
        yield from map(func, tasks)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(min(jobs, len(tasks))) as pool:
        yield from pool.imap(func, tasks, chunksize=2)


def _write_index(
    group, index: dict[str, list], int_columns: tuple[str, ...], str_columns: tuple[str, ...]
) -> None:
    """The two index tables of ``group``: integers (int32) and strings (NUL-padded ASCII), with ``columns``."""
    integers = np.array([index[name] for name in int_columns], dtype=np.int32).T
    write_dataset(group, INTEGERS, integers).attrs[COLUMNS] = ",".join(int_columns)
    strings = [[v.encode("ascii") for v in index[name]] for name in str_columns]
    width = max(len(v) for col in strings for v in col)
    table = np.array(strings, dtype=f"S{max(1, width)}").T
    write_dataset(group, STRINGS, table).attrs[COLUMNS] = ",".join(str_columns)


# ------------------------------------------------------------------ plane groups (FORMAT.md section 13)
def _build_plane(args: tuple[int, int]) -> tuple[PlaneGroupRecord, OrbitSolution]:
    number, kmax = args
    rec = plane_group_record(number)
    return rec, solve_plane_group(rec.rotations, rec.translations, kmax)


def _write_plane_groups(f, kmax: int, jobs: int) -> None:
    """All 17 plane groups into /plane_groups/<number> and the /index_plane tables."""
    tasks = [(n, kmax) for n in range(1, N_PLANE_GROUPS + 1)]
    groups = create_group(f, PLANE_GROUPS)
    index: dict[str, list] = {name: [] for name in PLANE_INDEX_INTEGERS + PLANE_INDEX_STRINGS}
    for rec, sol in _map(tasks, jobs, _build_plane):
        row = _write_payload(
            groups, str(rec.number), rec.rotations, rec.translations, sol, PLANE_PAYLOAD_FIELDS
        )
        row.update(
            number=rec.number,
            hm_short=rec.hm_short,
            hm_full=rec.hm_full,
            lattice=rec.lattice,
            point_group=rec.point_group,
        )
        for name in index:
            index[name].append(row[name])
    _write_index(create_group(f, PLANE_INDEX), index, PLANE_INDEX_INTEGERS, PLANE_INDEX_STRINGS)


def _write_payload(
    parent, key: str, rotations: np.ndarray, translations: np.ndarray, sol: OrbitSolution, fields: dict
) -> dict:
    """Write one payload group ``parent/key``; return the index columns it fixes (sizes, sha256)."""
    payload = {
        "frequencies": sol.frequencies,
        "orbit_ptr": sol.orbit_ptr,
        "phases": sol.phases,
        "extinct": sol.extinct,
        "rotations": rotations,
        "translations": translations,
    }
    group = create_group(parent, key)
    for name, (dtype, _) in fields.items():
        payload[name] = np.asarray(payload[name], dtype=dtype)
        write_dataset(group, name, payload[name])
    return {
        "order": len(rotations),
        "n_orbits": len(sol.orbit_ptr) - 1,
        "n_frequencies": len(sol.frequencies),
        "n_extinct": len(sol.extinct),
        "sha256": payload_sha256(payload),
    }


def _write_setting(settings, built: BuiltSetting, index: dict[str, list]) -> None:
    rec, sol = built.record, built.solution
    row = _write_payload(settings, str(rec.hall_number), rec.rotations, rec.translations, sol, PAYLOAD_FIELDS)
    row.update(
        hall_number=rec.hall_number,
        number=rec.number,
        is_default=int(rec.is_default),
        hall_symbol=rec.hall_symbol,
        hm_short=rec.hm_short,
        hm_full=rec.hm_full,
        hm_extended=rec.hm_extended,
        choice=rec.choice,
        crystal_system=rec.crystal_system,
        point_group=rec.point_group,
    )
    for name, value in row.items():
        index[name].append(value)


# ------------------------------------------------------------------ magnetic groups (FORMAT.md section 15)
def _build_magnetic_type(args: tuple[int, int, frozenset]):
    """Record, time-even solution (None when a stored setting holds it) and time-odd solution
    (None for types 1 and 2, which the reader derives) of one UNI type."""
    from .magnetic import magnetic_record, solve_magnetic

    uni, kmax, halls = args
    rec = magnetic_record(uni)
    even = None if rec.even_hall_number in halls else solve_magnetic(rec, kmax, "even")
    odd = solve_magnetic(rec, kmax, "odd") if rec.type in (3, 4) else None
    return rec, even, odd


def _write_magnetic(f, kmax: int, jobs: int, halls: frozenset) -> None:
    """/magnetic: the index of the 1,651 types, their operations, and the deduplicated bases."""
    from .magnetic import prepare

    prepare()  # computed once here; forked workers inherit it
    root = create_group(f, MAGNETIC)
    types = create_group(root, MAGNETIC_TYPES)
    bases = create_group(root, MAGNETIC_BASES)
    index: dict[str, list] = {name: [] for name in MAGNETIC_INDEX_INTEGERS + MAGNETIC_INDEX_STRINGS}
    basis_index: dict[str, list] = {
        name: [] for name in MAGNETIC_BASIS_INDEX_INTEGERS + MAGNETIC_BASIS_INDEX_STRINGS
    }
    by_hash: dict[str, int] = {}

    def store(sol: OrbitSolution | None) -> int:
        if sol is None:
            return -1
        payload = {
            name: np.asarray(getattr(sol, name), dtype=dtype)
            for name, (dtype, _) in MAGNETIC_BASIS_FIELDS.items()
        }
        digest = payload_sha256(payload, MAGNETIC_BASIS_FIELDS)
        if digest not in by_hash:
            by_hash[digest] = len(by_hash)
            group = create_group(bases, str(by_hash[digest]))
            for name, arr in payload.items():
                write_dataset(group, name, arr)
            row = {
                "basis": by_hash[digest],
                "n_orbits": len(payload["orbit_ptr"]) - 1,
                "n_frequencies": len(payload["frequencies"]),
                "n_extinct": len(payload["extinct"]),
                "sha256": digest,
            }
            for name in basis_index:
                basis_index[name].append(row[name])
        return by_hash[digest]

    tasks = [(u, kmax, halls) for u in range(1, N_MAGNETIC_TYPES + 1)]
    for rec, even, odd in _map(tasks, jobs, _build_magnetic_type):
        ops = {
            "rotations": rec.rotations,
            "translations": rec.translations,
            "time_reversals": rec.time_reversals,
        }
        group = create_group(types, str(rec.uni_number))
        for name, (dtype, _) in MAGNETIC_OPS_FIELDS.items():
            ops[name] = np.asarray(ops[name], dtype=dtype)
            write_dataset(group, name, ops[name])
        even_hall = rec.even_hall_number if even is None else 0
        row = {
            "uni_number": rec.uni_number,
            "litvin_number": rec.litvin_number,
            "type": rec.type,
            "number": rec.number,
            "order": len(rec.rotations),
            "family_hall_number": rec.family_hall_number,
            "family_number": rec.family_number,
            "even_hall_number": even_hall,
            "even_basis": store(even),
            "odd_basis": store(odd),
            "bns_number": rec.bns_number,
            "og_number": rec.og_number,
            "sha256": payload_sha256(ops, MAGNETIC_OPS_FIELDS),
        }
        row.update({f"P{i}{j}": int(rec.transformation[i, j]) for i in range(3) for j in range(3)})
        row.update({f"p{i}": int(rec.origin_shift[i]) for i in range(3)})
        for name in index:
            index[name].append(row[name])
    _write_index(create_group(root, MAGNETIC_INDEX), index, MAGNETIC_INDEX_INTEGERS, MAGNETIC_INDEX_STRINGS)
    _write_index(
        create_group(root, MAGNETIC_BASIS_INDEX),
        basis_index,
        MAGNETIC_BASIS_INDEX_INTEGERS,
        MAGNETIC_BASIS_INDEX_STRINGS,
    )
