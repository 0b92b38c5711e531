"""Build the database: all (or selected) spglib settings, in parallel, into one HDF5 file."""
from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from basisdb._format import (
    CONVENTIONS,
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_INTEGERS,
    INDEX_STRINGS,
    PAYLOAD_FIELDS,
    payload_sha256,
)
from basisdb._ops import DEN
from basisdb._version import __version__

from .orbits import OrbitSolution, solve_orbits
from .settings import N_SETTINGS, SettingRecord, default_hall_numbers, setting_record, spglib_version
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
    return BuiltSetting(record, solve_orbits(record.rotations, record.t_num, kmax))


def estimate_peak_memory(kmax: int, jobs: int) -> int:
    """Rough upper bound (bytes) of the build's peak memory at cut-off ``kmax``.

    Per worker: the networkx graph (~600 bytes per node and per edge, about 6
    edges per node) plus numpy work arrays (~200 bytes per box frequency), and a
    fixed ~120 MB per interpreter.
    """
    nbox = (2 * kmax + 1) ** 3
    per_worker = 120e6 + nbox * (600 * 7 + 200)
    return int(per_worker * (jobs + 1))


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
    if kmax > 127:
        raise ValueError(f"kmax must be <= 127 (frequencies are stored as int8), got {kmax}")
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
) -> dict:
    """Build the artifact for ``halls`` (default: all 530) at cut-off ``kmax`` into ``path``.

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
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = np.int32(FORMAT_VERSION)
        f.attrs["kmax"] = np.int32(kmax)
        f.attrs["denominator"] = np.int32(DEN)
        f.attrs["n_settings"] = np.int32(len(selected))
        f.attrs["conventions"] = CONVENTIONS
        f.attrs["builder_version"] = __version__
        f.attrs["spglib_version"] = spglib_version()
        settings = create_group(f, "settings")
        for built in _map(tasks, jobs):
            _write_setting(settings, built, index)
            if progress is not None:
                progress(1)
        group = create_group(f, "index")
        integers = np.array([index[name] for name in INDEX_INTEGERS], dtype=np.int32).T
        write_dataset(group, "integers", integers).attrs["columns"] = ",".join(INDEX_INTEGERS)
        strings = [[v.encode("ascii") for v in index[name]] for name in INDEX_STRINGS]
        width = max(len(v) for col in strings for v in col)
        table = np.array(strings, dtype=f"S{max(1, width)}").T
        write_dataset(group, "strings", table).attrs["columns"] = ",".join(INDEX_STRINGS)
    return {"path": os.fspath(path), "kmax": int(kmax), "settings": len(selected), "bytes": os.path.getsize(path)}


def _map(tasks: list[tuple[int, int]], jobs: int) -> Iterable[BuiltSetting]:
    """Solve settings in hall_number order, in ``jobs`` processes (results in order)."""
    if jobs == 1 or len(tasks) == 1:
        yield from map(_build_one, tasks)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(min(jobs, len(tasks))) as pool:
        yield from pool.imap(_build_one, tasks, chunksize=2)


def _write_setting(settings, built: BuiltSetting, index: dict[str, list]) -> None:
    rec, sol = built.record, built.solution
    payload = {
        "frequencies": sol.frequencies,
        "orbit_ptr": sol.orbit_ptr,
        "phases": sol.phases,
        "extinct": sol.extinct,
        "rotations": rec.rotations.astype(np.int8),
        "translations": rec.t_num.astype(np.uint8),
    }
    group = create_group(settings, str(rec.hall_number))
    for name, (dtype, _) in PAYLOAD_FIELDS.items():
        write_dataset(group, name, np.asarray(payload[name], dtype=dtype))
    row = {
        "hall_number": rec.hall_number,
        "number": rec.number,
        "order": len(rec.rotations),
        "n_orbits": len(sol.orbit_ptr) - 1,
        "n_frequencies": len(sol.frequencies),
        "n_extinct": len(sol.extinct),
        "is_default": int(rec.is_default),
        "hall_symbol": rec.hall_symbol,
        "hm_short": rec.hm_short,
        "hm_full": rec.hm_full,
        "hm_extended": rec.hm_extended,
        "choice": rec.choice,
        "crystal_system": rec.crystal_system,
        "point_group": rec.point_group,
        "sha256": payload_sha256(payload),
    }
    for name, value in row.items():
        index[name].append(value)
