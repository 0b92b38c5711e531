"""Reproducible, checksummed, atomically written HDF5 output.

* every dataset is chunked, gzip-compressed, shuffled and Fletcher-32 checksummed;
* no object timestamps (``track_times=False``; groups via a creation property list),
  so two builds of the same content are byte-identical;
* the file is written to a temporary name in the destination directory, fsynced and
  renamed over the destination: readers see the old file or the new one, never a
  partial one.  Temporary names carry the writer's pid; leftovers of a killed writer
  are removed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.partial$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(dest: Path) -> list[Path]:
    """Delete temporary files of earlier writers of ``dest`` whose process is gone."""
    removed = []
    for entry in dest.parent.glob(f".{dest.name}.*.partial"):
        m = _PARTIAL.match(entry.name)
        if m and m["name"] == dest.name and not _pid_alive(int(m["pid"])):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_h5(dest: str | os.PathLike) -> Iterator[h5py.File]:
    """Open a temporary HDF5 file next to ``dest``; on success rename it onto ``dest``.

    On any exception (or a kill) ``dest`` is left untouched.
    """
    dest = Path(dest).absolute()
    if dest.is_dir():
        raise IsADirectoryError(f"output path {dest} is a directory")
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"output directory {dest.parent} does not exist")
    remove_stale_partials(dest)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.partial"
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    try:
        fid = h5py.h5f.create(os.fsencode(tmp), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
        with h5py.File(fid) as f:
            yield f
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        with contextlib.suppress(OSError):
            dirfd = os.open(dest.parent, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def create_group(parent: h5py.Group, name: str) -> h5py.Group:
    """Create a group without timestamps (h5py's create_group always records them)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(False)
    gid = h5py.h5g.create(parent.id, name.encode("ascii"), lcpl=lcpl, gcpl=gcpl)
    return h5py.Group(gid)


def write_dataset(parent: h5py.Group, name: str, data: np.ndarray) -> h5py.Dataset:
    """Write ``data`` as one compressed, shuffled, Fletcher-32 checksummed chunk."""
    data = np.ascontiguousarray(data)
    chunks = tuple(max(1, s) for s in data.shape) if data.ndim else None
    # an empty array needs a resizable first axis to have a (non-empty) chunk at all
    maxshape = (None,) + data.shape[1:] if data.ndim and data.shape[0] == 0 else None
    return parent.create_dataset(
        name,
        data=data,
        chunks=chunks,
        maxshape=maxshape,
        compression="gzip",
        compression_opts=9,
        shuffle=data.dtype.itemsize > 1,
        fletcher32=True,
        track_times=False,
    )
