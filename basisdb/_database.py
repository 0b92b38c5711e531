"""The ``Database`` front: one open artifact, its lookups and its cache of bases.

The work is done elsewhere: ``_h5read`` reads a possibly hostile HDF5 file defensively,
``_index`` holds the lookup tables (settings, plane groups, magnetic groups) apart from
the file, ``_verify`` checks a whole artifact, ``_magnetic_io`` reads the magnetic
section.  This module opens the file (once per process: reopened after ``fork()``),
checks its header, reads payloads into ``Basis`` objects and caches them.
``default_database()`` is the one Database that the package uses without a path.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, overload

import h5py
import numpy as np

from . import _magnetic_io, _verify
from ._basis import Basis, PlaneGroup, Setting
from ._constants import MAX_KMAX, MAX_ORDER
from ._errors import ArtifactError, SettingNotFoundError
from ._format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    INDEX_INTEGERS,
    INDEX_STRINGS,
    INTEGERS,
    MIN_FORMAT_VERSION,
    PAYLOAD_FIELDS,
    PLANE_INDEX,
    PLANE_INDEX_INTEGERS,
    PLANE_INDEX_STRINGS,
    PLANE_PAYLOAD_FIELDS,
    STRINGS,
    payload_sha256,
    plane_group_name,
    setting_group_name,
)
from ._h5read import MAX_ROWS, attr_int, attr_str, h5_message, read_datasets, read_table
from ._index import PlaneIndex, SettingIndex, hall_keyword
from ._symbol_resolver import SymbolResolver
from ._validate import check_payload

if TYPE_CHECKING:
    from ._magnetic import MagneticBasis

__all__ = ["Database", "open", "default_database", "default_path", "ENV_PATH"]

#: environment variable naming the artifact to use when ``open()`` gets no path
ENV_PATH = "BASISDB_PATH"
ARTIFACT_NAME = "basisdb.h5"


def _shipped_candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [
        here / "data" / ARTIFACT_NAME,  # installed wheel: basisdb/data/basisdb.h5
        here.parent / "data" / ARTIFACT_NAME,  # source checkout / editable install: <repo>/data/
    ]


def default_path() -> Path:
    """The artifact ``open()`` uses without a path: ``$BASISDB_PATH``, else the shipped one."""
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env)
    for cand in _shipped_candidates():
        if cand.is_file():
            return cand
    raise ArtifactError(
        "no shipped basisdb artifact found (looked in "
        + ", ".join(str(c) for c in _shipped_candidates())
        + f"); set ${ENV_PATH} or pass a path, or build one with `basisdb build -o PATH`"
    )


def open(path: str | os.PathLike | None = None) -> Database:
    """Open an artifact (default: ``$BASISDB_PATH`` or the shipped one) and validate its header."""
    return Database(default_path() if path is None else Path(path))


_DEFAULT: Database | None = None
_DEFAULT_LOCK = threading.Lock()


def default_database() -> Database:
    """The one Database the package uses when given none (``get_basis``, ``featurize``, the
    adapters): ``open()`` of ``default_path()``, opened on first use and shared by all threads;
    a forked child keeps it (the Database reopens its file in the child)."""
    global _DEFAULT
    db = _DEFAULT
    if db is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = open()
            db = _DEFAULT
    return db


def _after_fork_in_child() -> None:
    """A lock held by another thread at fork() time would never be released in the child."""
    global _DEFAULT_LOCK
    _DEFAULT_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Database:
    """A read-only basisdb artifact.  Use ``basisdb.open()``.

    Safe to share between threads; after ``fork()`` (e.g. PyTorch DataLoader
    workers) the HDF5 file is reopened in the child automatically.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._file: h5py.File | None = None
        self._pid = -1
        self._cache: dict[tuple, Basis] = {}
        self._index: SettingIndex | None = None
        self._plane_tables: PlaneIndex | None = None  # read on first use
        self._magnetic_tables = None  # a MagneticIndex, read on first use by _magnetic_io
        try:
            self._read_header(self._h5())
        except BaseException as exc:
            # never leave a refused file open: HDF5 would hand the same (cached) open file
            # to the next h5py.File() of that path, even after the file has been rewritten
            self.close()
            if isinstance(exc, (KeyError, RuntimeError, ValueError, TypeError)) or (
                isinstance(exc, OSError) and not isinstance(exc, ArtifactError)
            ):
                raise ArtifactError(
                    f"{self.path}: cannot read the artifact's header (damaged file?): {h5_message(exc)}"
                ) from None
            raise

    def _read_header(self, f: h5py.File) -> None:
        self.format_version = attr_int(f, "format_version", 0, 2**31 - 1)
        if attr_str(f, "format") != FORMAT_NAME:
            raise ArtifactError(
                f"{self.path}: not a basisdb artifact (format attribute is not {FORMAT_NAME!r})"
            )
        if self.format_version > FORMAT_VERSION:
            raise ArtifactError(
                f"{self.path}: format version {self.format_version} is newer than this basisdb "
                f"supports ({FORMAT_VERSION}); upgrade basisdb"
            )
        if self.format_version < MIN_FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: unknown format version {self.format_version}")
        self.kmax = attr_int(f, "kmax", 1, MAX_KMAX)
        self.denominator = attr_int(f, "denominator", 1, 10_000)
        ints = read_table(self.path, f, INTEGERS, INDEX_INTEGERS, "iu")
        strs = read_table(self.path, f, STRINGS, INDEX_STRINGS, "S")
        self._index = SettingIndex(
            self.path, ints, strs, self.kmax
        )  # Settings are made on demand (fast open)
        n_settings = attr_int(f, "n_settings", 1, MAX_ROWS)
        if n_settings != len(self._index):
            raise ArtifactError(
                f"{self.path}: root attribute 'n_settings' = {n_settings} but /index has {len(self._index)} rows"
            )

    @property
    def _setting_index(self) -> SettingIndex:
        """The /index tables (``__init__`` reads them with the header, or raises)."""
        if self._index is None:  # pragma: no cover - no Database exists without its header
            raise ArtifactError(f"{self.path}: the artifact's header has not been read")
        return self._index

    # ----------------------------------------------------------------- file
    def _h5(self) -> h5py.File:
        """The open h5py file of *this* process (reopened after fork)."""
        with self._lock:
            if self._file is None or self._pid != os.getpid():
                f = self._open_file()
                if self._index is not None:  # reopened after fork() or close()
                    self._check_unchanged(f)
                self._file = f
                self._pid = os.getpid()
            return self._file

    def _check_unchanged(self, f: h5py.File) -> None:
        """The path must still hold the artifact whose index this object has read: a rebuild
        (atomic rename) between opening and a reopen after fork() would otherwise mix two files."""
        try:
            same = (
                attr_int(f, "kmax", 1, MAX_KMAX) == self.kmax
                and np.array_equal(
                    read_table(self.path, f, INTEGERS, INDEX_INTEGERS, "iu"), self._setting_index.ints
                )
                and np.array_equal(
                    read_table(self.path, f, STRINGS, INDEX_STRINGS, "S"), self._setting_index.strs
                )
            )
        except (ArtifactError, KeyError, RuntimeError, ValueError):
            same = False
        if not same:
            f.close()
            raise ArtifactError(
                f"{self.path}: the file was replaced by a different artifact after this Database "
                "opened it (rebuilt?); open it again with basisdb.open()"
            )

    def _content_digest(self) -> str:
        """SHA-256 of the header values and index tables: identifies the artifact's content."""
        import hashlib

        h = hashlib.sha256(f"{self.format_version},{self.kmax},{self.denominator};".encode())
        h.update(np.ascontiguousarray(self._setting_index.ints, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self._setting_index.strs).tobytes())
        return h.hexdigest()

    def _open_file(self) -> h5py.File:
        if not self.path.exists():
            raise ArtifactError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise ArtifactError(f"{self.path}: is a directory, not an artifact")
        try:
            if not h5py.is_hdf5(self.path):
                raise ArtifactError(f"{self.path}: not an HDF5 file")
            return h5py.File(self.path, "r")
        except ArtifactError:
            raise
        except OSError as exc:
            raise ArtifactError(
                f"{self.path}: cannot open HDF5 file (truncated or damaged?): {exc}"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # pickling for spawn-based workers: reopen by path
        return {"path": self.path, "content": self._content_digest()}

    def __setstate__(self, state: dict) -> None:
        type(self).__init__(self, state["path"])
        if state.get("content") not in (None, self._content_digest()):
            self.close()
            raise ArtifactError(
                f"{self.path}: holds a different artifact than the Database that was pickled "
                "(rebuilt since?); open it again with basisdb.open()"
            )

    def __repr__(self) -> str:
        return f"<basisdb.Database {str(self.path)!r} kmax={self.kmax} settings={len(self)}>"

    @cached_property
    def attrs(self) -> dict:
        """Root attributes of the artifact (format, versions, kmax, denominator, conventions)."""
        f = self._h5()
        with self._lock:
            return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}

    # ------------------------------------------------------------- settings
    def settings(self) -> list[Setting]:
        """All settings in the artifact, ascending hall_number."""
        return self._setting_index.settings()

    def __len__(self) -> int:
        return len(self._setting_index)

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._setting_index.settings())

    def _symbols(self) -> SymbolResolver:
        """The symbol resolver over this artifact's settings (built on the first symbol lookup)."""
        return self._setting_index.symbols()

    def find_setting(
        self, group=None, *, hall: int | None = None, hall_number: int | None = None
    ) -> Setting | None:
        """Like ``get_setting`` but returns None when nothing matches (bad input still raises)."""
        return self._setting_index.find_setting(group, hall=hall, hall_number=hall_number)

    def get_setting(self, group=None, *, hall: int | None = None, hall_number: int | None = None) -> Setting:
        """Resolve a space-group number, a symbol or ``hall=`` to a Setting.

        group: int 1..230 (spglib's default setting of that number), or a str:
        an H-M symbol (short 'Fd-3m', full, or setting-specific 'F d -3 m:2',
        'P 1 21/c 1', 'R -3 c:R'), a Hall symbol ('-F 4vw 2vw 3'), 'number:choice'
        ('227:2') or a number as text; the spellings read are listed in
        docs/CONVENTIONS.md, "Symbol lookup".  A symbol naming several settings
        resolves to spglib's default one when it is among them, else to the first
        in hall_number order.  ``hall_number=`` is spglib's name for ``hall=``.
        Raises SettingNotFoundError / ValueError / TypeError.
        """
        return self._setting_index.get_setting(group, hall=hall, hall_number=hall_number)

    # --------------------------------------------------------- plane groups
    def _plane_index(self) -> PlaneIndex:
        """The /index_plane tables (read on first use; empty if the file has none)."""
        with self._lock:
            if self._plane_tables is None:
                f = self._h5()
                if PLANE_INDEX not in f:  # a valid file without plane groups (FORMAT.md section 13)
                    self._plane_tables = PlaneIndex.empty(self.path)
                else:
                    ints = read_table(self.path, f, INTEGERS, PLANE_INDEX_INTEGERS, "iu", index=PLANE_INDEX)
                    strs = read_table(self.path, f, STRINGS, PLANE_INDEX_STRINGS, "S", index=PLANE_INDEX)
                    self._plane_tables = PlaneIndex(self.path, ints, strs, self.kmax)
            return self._plane_tables

    def plane_groups(self) -> list[PlaneGroup]:
        """The plane groups in the artifact (all 17 in the shipped one), ascending number."""
        return self._plane_index().plane_groups()

    def plane_group(self, plane) -> PlaneGroup:
        """Resolve a plane group: number 1..17 (int or text) or a symbol, full ('p2mg', 'c2mm',
        'p4gm') or short ('pmg', 'cmm', 'p4g'), ignoring spaces, underscores and case."""
        return self._plane_index().get_plane_group(plane)

    def find_plane_group(self, plane) -> PlaneGroup | None:
        """Like ``plane_group`` but returns None when nothing matches (bad input still raises)."""
        return self._plane_index().find_plane_group(plane)

    # ------------------------------------------------------- magnetic groups
    def magnetic_groups(self) -> list:
        """The magnetic space-group types in the artifact (all 1,651 in the shipped one), ascending UNI number."""
        return list(_magnetic_io.magnetic_index(self).groups.values())

    def magnetic_group(self, key):
        """Resolve a magnetic space-group type: a UNI number 1..1651 (int or text), a BNS number
        ('136.499') or an OG number ('136.4.1155').  Raises SettingNotFoundError / TypeError."""
        return _magnetic_io.magnetic_index(self).get_magnetic_group(key)

    def find_magnetic_group(self, key):
        """Like ``magnetic_group`` but returns None when nothing matches (bad input still raises)."""
        return _magnetic_io.magnetic_index(self).find_magnetic_group(key)

    # ---------------------------------------------------------------- bases
    @overload
    def get(
        self,
        group=None,
        *,
        hall: int | None = None,
        kmax: int | None = None,
        plane=None,
        hall_number: int | None = None,
        magnetic: None = None,
    ) -> Basis: ...
    @overload
    def get(
        self,
        group=None,
        *,
        hall: int | None = None,
        kmax: int | None = None,
        plane=None,
        hall_number: int | None = None,
        magnetic: int | str,
    ) -> MagneticBasis: ...
    def get(
        self,
        group=None,
        *,
        hall: int | None = None,
        kmax: int | None = None,
        plane=None,
        hall_number: int | None = None,
        magnetic: int | str | None = None,
    ) -> Basis | MagneticBasis:
        """The Basis of a setting (see ``get_setting`` for ``group``/``hall``) at ``kmax`` (default: the artifact's).

        ``plane=``: instead, one of the 17 plane groups, by number 1..17 or symbol
        ('p2mg', 'pmg', 'p4gm', ...; see ``plane_group``): a 2-D Basis.  Plane-group
        numbers never collide with space-group numbers: ``get(17)`` is space group 17
        (P 2 2 2_1), ``get(plane=17)`` is the plane group p6mm.

        ``magnetic=``: instead, one of the 1,651 magnetic space-group types, by UNI number
        (int), BNS number ('136.499') or OG number ('136.4.1155'): a ``MagneticBasis`` with
        ``time_even`` and ``time_odd`` Basis views (see ``magnetic_group``).
        """
        hall = hall_keyword(hall, hall_number)
        if magnetic is not None:
            if group is not None or hall is not None or plane is not None:
                raise ValueError("give either magnetic= or a space/plane group, not both")
            return _magnetic_io.get_magnetic(self, magnetic, self._check_kmax(kmax))
        if plane is not None:
            if group is not None or hall is not None:
                raise ValueError("give either plane= or a space group (number, symbol or hall=), not both")
            setting: Setting | PlaneGroup = self.plane_group(plane)
            ident: tuple[str, int] | int = ("plane", setting.number)
        else:
            setting = self.get_setting(group, hall=hall)
            ident = setting.hall_number
        kmax = self._check_kmax(kmax)
        key = (ident, kmax)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        full_key = (ident, self.kmax)
        with self._lock:
            full = self._cache.get(full_key)
        if full is None:
            full = self._read_basis(setting)
        basis = full.restrict(kmax)
        with self._lock:
            self._cache.setdefault(full_key, full)
            self._cache.setdefault(key, basis)
            return self._cache[key]

    def find(
        self,
        group=None,
        *,
        hall: int | None = None,
        kmax: int | None = None,
        plane=None,
        hall_number: int | None = None,
        magnetic=None,
    ) -> Basis | None:
        """Like ``get`` but returns None when no setting (or plane / magnetic group) matches."""
        try:
            return self.get(
                group, hall=hall, kmax=kmax, plane=plane, hall_number=hall_number, magnetic=magnetic
            )
        except SettingNotFoundError:
            return None

    def _check_kmax(self, kmax) -> int:
        if kmax is None:
            return self.kmax
        if isinstance(kmax, (bool, np.bool_)) or not isinstance(kmax, (int, np.integer)):
            raise TypeError(f"kmax must be an integer, got {kmax!r}")
        if kmax < 1:
            raise ValueError(f"kmax must be >= 1, got {int(kmax)}")
        if kmax > self.kmax:
            remedy = (
                f"build a larger one with `basisdb build --kmax {int(kmax)} -o PATH` and open it with "
                "basisdb.open(PATH)"
                if kmax <= MAX_KMAX
                else f"the format allows kmax <= {MAX_KMAX}"
            )
            raise ValueError(f"kmax={int(kmax)} exceeds this artifact's kmax={self.kmax}; {remedy}")
        return int(kmax)

    def _read_payload(self, hall_number: int, plane: bool = False) -> dict[str, np.ndarray]:
        """Raw datasets of /settings/<hall_number> (or of /plane_groups/<number> with ``plane``)."""
        name = plane_group_name(hall_number) if plane else setting_group_name(hall_number)
        f = self._h5()
        fields = PLANE_PAYLOAD_FIELDS if plane else PAYLOAD_FIELDS
        # no dataset of a valid file is longer than the box (or than the largest group order)
        limit = max((2 * self.kmax + 1) ** fields["frequencies"][1][0] + 1, MAX_ORDER)
        what = f"{'plane group' if plane else 'setting'} {hall_number}"
        with self._lock:
            return read_datasets(
                self.path,
                f,
                name,
                fields,
                limit,
                what=what,
                limit_note=f" (at most {limit} at kmax={self.kmax})",
            )

    def _read_basis(self, setting: Setting | PlaneGroup) -> Basis:
        if isinstance(setting, PlaneGroup):
            what = f"plane group {setting.number}"
            payload = self._read_payload(setting.number, plane=True)
            expected = self._plane_index().sha256(setting.number)
        else:
            what = f"setting {setting.hall_number}"
            payload = self._read_payload(setting.hall_number)
            expected = self._setting_index.sha256(setting.hall_number)
        if payload_sha256(payload) != expected:
            raise ArtifactError(f"{self.path}: {what} fails its SHA-256 check (damaged file)")
        check_payload(self.path, what, payload, setting, self.kmax, self.denominator)
        ptr = payload["orbit_ptr"]
        return Basis(
            setting=setting,
            kmax=self.kmax,
            denominator=self.denominator,
            frequencies=payload["frequencies"],
            orbit_ptr=ptr,
            phases=payload["phases"],
            extinct=payload["extinct"],
            rotations=payload["rotations"],
            translations=payload["translations"],
        )

    # --------------------------------------------------------------- verify
    def verify(self, invariance_points: int = 8, seed: int = 0, tol: float = 1e-10) -> dict:
        """Check every setting: readable, checksums (Fletcher-32 and SHA-256), consistent
        shapes, and invariance of every basis function under every stored operation at
        ``invariance_points`` random points.  Returns a report dict; raises ArtifactError
        on the first problem.
        """
        return _verify.verify(self, invariance_points, seed, tol)
