"""Reading the HDF5 artifact: opening, validation, lookup and integrity checks."""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ._basis import Basis, PlaneGroup, Setting
from ._constants import MAX_KMAX, MAX_ORDER, N_PLANE_GROUPS, N_SETTINGS, N_SPACE_GROUPS
from ._errors import ArtifactError, SettingNotFoundError
from ._format import FORMAT_NAME, FORMAT_VERSION, INDEX_INTEGERS, INDEX_STRINGS, PAYLOAD_FIELDS, payload_sha256, setting_group_name
from ._format import PLANE_INDEX, PLANE_INDEX_INTEGERS, PLANE_INDEX_STRINGS, PLANE_PAYLOAD_FIELDS, plane_group_name
from ._format import MIN_FORMAT_VERSION
from . import _magnetic_io
from ._symbol_resolver import SymbolResolver
from ._validate import check_index, check_payload

__all__ = ["Database", "open", "default_path", "ENV_PATH"]

#: environment variable naming the artifact to use when ``open()`` gets no path
ENV_PATH = "BASISDB_PATH"
ARTIFACT_NAME = "basisdb.h5"

_MAX_SETTINGS = 100_000
_MAX_STRING = 256


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


def open(path: str | os.PathLike | None = None) -> "Database":  # noqa: A001 - mirrors h5py.File / io.open
    """Open an artifact (default: ``$BASISDB_PATH`` or the shipped one) and validate its header."""
    return Database(default_path() if path is None else Path(path))


def _attr_declared(f: h5py.File, name: str, kind: str):
    """The attribute's low-level id, after refusing a wrong declared shape or type (nothing read yet)."""
    aid = f.attrs.get_id(name)
    shape, tclass = aid.shape, aid.get_type().get_class()
    want = h5py.h5t.INTEGER if kind == "an integer" else h5py.h5t.STRING
    if shape != () or tclass != want:
        names = {h5py.h5t.INTEGER: "integer", h5py.h5t.FLOAT: "float", h5py.h5t.STRING: "string"}
        got = f"{names.get(tclass, f'HDF5 type class {tclass}')} of shape {shape}"
        raise ArtifactError(f"{f.filename}: root attribute {name!r} must be {kind} scalar, got {got}")
    return aid


def _attr_int(f: h5py.File, name: str, lo: int, hi: int) -> int:
    try:
        aid = _attr_declared(f, name, "an integer")
    except KeyError:
        if name in f.attrs:  # it exists but cannot be opened
            raise
        raise ArtifactError(f"{f.filename}: missing root attribute {name!r}; not a basisdb artifact") from None
    value = np.zeros((), dtype=np.int64)  # any stored integer width is converted by HDF5
    try:
        aid.read(value)
    except (OSError, RuntimeError, ValueError) as exc:  # e.g. an unsigned value beyond int64
        raise ArtifactError(f"{f.filename}: root attribute {name!r} cannot be read as an integer: {exc}") from None
    if not lo <= int(value) <= hi:
        raise ArtifactError(f"{f.filename}: root attribute {name!r} = {int(value)} is outside {lo}..{hi}")
    return int(value)


def _attr_str(f: h5py.File, name: str) -> str:
    if name in f.attrs:
        _attr_declared(f, name, "a string")
    value = f.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ArtifactError(f"{f.filename}: root attribute {name!r} must be a string")
    return value


def _h5_message(exc: BaseException) -> str:
    """h5py's KeyError repr()s its message; show the text."""
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


def _child(path, parent: h5py.Group, name: str):
    """``parent[name]``; None if there is no such link; ArtifactError if it exists but cannot be opened,
    if it is a soft or external link (never followed out of the file), or if it keeps its data elsewhere."""

    def full() -> str:  # only for messages: h5py's .name costs a library call
        return f"{parent.name.rstrip('/')}/{name.lstrip('/')}"

    try:
        kind = parent.id.links.get_info(name.encode()).type  # no object is opened
    except (KeyError, RuntimeError, ValueError) as exc:
        try:
            missing = parent.get(name, getlink=True) is None
        except (KeyError, RuntimeError, ValueError, OSError):
            missing = False
        if missing:
            return None
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {_h5_message(exc)}") from None
    if kind != h5py.h5l.TYPE_HARD:
        what = {h5py.h5l.TYPE_SOFT: "a soft link", h5py.h5l.TYPE_EXTERNAL: "an external link"}.get(kind, "a user-defined link")
        raise ArtifactError(f"{path}: {full()} is {what}, not an object of the file")
    try:
        obj = parent[name]
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {_h5_message(exc)}") from None
    except OSError as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{path}: cannot open {full()} (damaged file?): {exc}") from None
    if isinstance(obj, h5py.Dataset) and obj.chunks is None:  # chunked data cannot live in other files
        if obj.is_virtual or obj.id.get_create_plist().get_external_count() > 0:
            raise ArtifactError(f"{path}: {full()} keeps its data outside the file (external or virtual dataset)")
    return obj


def _hall_keyword(hall, hall_number):
    """``hall=`` or its spglib spelling ``hall_number=``; not both."""
    if hall is not None and hall_number is not None:
        raise TypeError("give hall= or hall_number= (the same key, spglib's name), not both")
    return hall if hall is not None else hall_number


def read_datasets(path, f: h5py.File, name: str, fields: dict, limit: int, *, what: str | None = None,
                  limit_note: str = "") -> dict[str, np.ndarray]:
    """The datasets ``fields`` ({field: (dtype, trailing shape)}) of the HDF5 group ``name``, each
    checked for dtype, shape and a length of at most ``limit`` before it is read; ArtifactError on
    any mismatch, a missing or linked object, or damaged data.  The caller holds the file's lock."""
    group = _child(path, f, name)
    if not isinstance(group, h5py.Group):
        listed = f"{what} is listed but {name} is missing" if what else f"{name} is listed but missing"
        raise ArtifactError(f"{path}: {listed}")
    out = {}
    for field, (dtype, tail) in fields.items():
        ds = _child(path, group, field)
        if not isinstance(ds, h5py.Dataset):
            raise ArtifactError(f"{path}: {name}/{field} is missing")
        if ds.dtype != np.dtype(dtype) or ds.shape[1:] != tail or ds.ndim != 1 + len(tail):
            raise ArtifactError(f"{path}: {name}/{field} has shape {ds.shape} dtype {ds.dtype}")
        if ds.shape[0] > limit:
            raise ArtifactError(f"{path}: {name}/{field} has an absurd length {ds.shape[0]}{limit_note}")
        try:
            out[field] = ds[()]
        except (OSError, RuntimeError, ValueError) as exc:
            raise ArtifactError(f"{path}: {name}/{field} is damaged: {exc}") from None
    return out


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
        self._cache: dict[tuple[int, int], Basis] = {}
        try:
            self._read_header(self._h5())
        except BaseException as exc:
            # never leave a refused file open: HDF5 would hand the same (cached) open file
            # to the next h5py.File() of that path, even after the file has been rewritten
            self.close()
            if isinstance(exc, (KeyError, RuntimeError, ValueError, TypeError)) or (
                isinstance(exc, OSError) and not isinstance(exc, ArtifactError)
            ):
                raise ArtifactError(f"{self.path}: cannot read the artifact's header (damaged file?): {_h5_message(exc)}") from None
            raise
        self._resolver: SymbolResolver | None = None  # built on the first symbol lookup

    def _read_header(self, f: h5py.File) -> None:
        self.format_version = _attr_int(f, "format_version", 0, 2**31 - 1)
        if _attr_str(f, "format") != FORMAT_NAME:
            raise ArtifactError(f"{self.path}: not a basisdb artifact (format attribute is not {FORMAT_NAME!r})")
        if self.format_version > FORMAT_VERSION:
            raise ArtifactError(
                f"{self.path}: format version {self.format_version} is newer than this basisdb "
                f"supports ({FORMAT_VERSION}); upgrade basisdb"
            )
        if self.format_version < MIN_FORMAT_VERSION:
            raise ArtifactError(f"{self.path}: unknown format version {self.format_version}")
        self.kmax = _attr_int(f, "kmax", 1, MAX_KMAX)
        self.denominator = _attr_int(f, "denominator", 1, 10_000)
        self._read_index(f)
        n_settings = _attr_int(f, "n_settings", 1, _MAX_SETTINGS)
        if n_settings != len(self._ints):
            raise ArtifactError(f"{self.path}: root attribute 'n_settings' = {n_settings} but /index has {len(self._ints)} rows")

    # ----------------------------------------------------------------- file
    def _h5(self) -> h5py.File:
        """The open h5py file of *this* process (reopened after fork)."""
        with self._lock:
            if self._file is None or self._pid != os.getpid():
                f = self._open_file()
                if getattr(self, "_ints", None) is not None:  # reopened after fork() or close()
                    self._check_unchanged(f)
                self._file = f
                self._pid = os.getpid()
            return self._file

    def _check_unchanged(self, f: h5py.File) -> None:
        """The path must still hold the artifact whose index this object has read: a rebuild
        (atomic rename) between opening and a reopen after fork() would otherwise mix two files."""
        try:
            same = (
                _attr_int(f, "kmax", 1, MAX_KMAX) == self.kmax
                and np.array_equal(self._read_table(f, "integers", INDEX_INTEGERS, "iu"), self._ints)
                and np.array_equal(self._read_table(f, "strings", INDEX_STRINGS, "S"), self._strs)
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
        h.update(np.ascontiguousarray(self._ints, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self._strs).tobytes())
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
            raise ArtifactError(f"{self.path}: cannot open HDF5 file (truncated or damaged?): {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:  # pickling for spawn-based workers: reopen by path
        return {"path": self.path, "content": self._content_digest()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])
        if state.get("content") not in (None, self._content_digest()):
            self.close()
            raise ArtifactError(
                f"{self.path}: holds a different artifact than the Database that was pickled "
                "(rebuilt since?); open it again with basisdb.open()"
            )

    def __repr__(self) -> str:
        return f"<basisdb.Database {str(self.path)!r} kmax={self.kmax} settings={len(self)}>"

    # ---------------------------------------------------------------- index
    def _read_table(self, f: h5py.File, name: str, columns: tuple[str, ...], kinds: str, index: str = "index") -> np.ndarray:
        ds = _child(self.path, f, f"{index}/{name}")
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[1] != len(columns):
            raise ArtifactError(f"{self.path}: /{index}/{name} is missing or not an (n, {len(columns)}) table")
        if not 0 < ds.shape[0] <= _MAX_SETTINGS:
            raise ArtifactError(f"{self.path}: /{index}/{name} has an absurd number of rows {ds.shape[0]}")
        if ds.dtype.kind not in kinds or ds.dtype.itemsize > _MAX_STRING:
            raise ArtifactError(f"{self.path}: /{index}/{name} has unexpected dtype {ds.dtype}")
        found = ds.attrs.get("columns")
        if isinstance(found, bytes):
            found = found.decode("ascii", "replace")
        if not isinstance(found, str) or found != ",".join(columns):
            raise ArtifactError(f"{self.path}: /{index}/{name} has columns {found!r:.200}, expected {','.join(columns)!r}")
        try:
            data = ds[()]
        except OSError as exc:
            raise ArtifactError(f"{self.path}: /{index}/{name} is damaged: {exc}") from None
        return data.astype(np.int64) if kinds == "iu" else data

    def _read_index(self, f: h5py.File) -> None:
        """Load the two index tables; Setting objects are made on demand (fast open)."""
        ints = self._read_table(f, "integers", INDEX_INTEGERS, "iu")
        strs = self._read_table(f, "strings", INDEX_STRINGS, "S")
        if len(strs) != len(ints):
            raise ArtifactError(f"{self.path}: /index tables have different numbers of rows")
        halls = ints[:, 0]
        if np.any(np.diff(halls) <= 0):
            raise ArtifactError(f"{self.path}: /index hall_number column is not strictly increasing")
        check_index(self.path, "/index/integers", ints, INDEX_INTEGERS, self.kmax)
        self._ints, self._strs = ints, strs
        self._row = {int(h): i for i, h in enumerate(halls.tolist())}
        self._setting_cache: dict[int, Setting] = {}

    def _setting_at(self, row: int) -> Setting:
        s = self._setting_cache.get(row)
        if s is None:
            ints = dict(zip(INDEX_INTEGERS, self._ints[row].tolist()))
            strs = {k: v.decode("ascii", "replace") for k, v in zip(INDEX_STRINGS, self._strs[row].tolist())}
            ints["is_default"] = bool(ints["is_default"])
            fields = {**ints, **strs}
            s = Setting(**{name: fields[name] for name in Setting.__dataclass_fields__})
            self._setting_cache[row] = s
        return s

    @property
    def _settings(self) -> list[Setting]:
        return [self._setting_at(i) for i in range(len(self._ints))]

    @cached_property
    def attrs(self) -> dict:
        """Root attributes of the artifact (format, versions, kmax, denominator, conventions)."""
        f = self._h5()
        with self._lock:
            return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}

    def _symbols(self) -> SymbolResolver:
        """The symbol resolver over this artifact's settings (built on the first symbol lookup)."""
        with self._lock:
            if self._resolver is None:
                self._resolver = SymbolResolver(self._settings)
            return self._resolver

    def settings(self) -> list[Setting]:
        """All settings in the artifact, ascending hall_number."""
        return list(self._settings)

    def __len__(self) -> int:
        return len(self._ints)

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings)

    # --------------------------------------------------------------- lookup
    def find_setting(self, group=None, *, hall: int | None = None, hall_number: int | None = None) -> Setting | None:
        """Like ``get_setting`` but returns None when nothing matches (bad input still raises)."""
        try:
            return self.get_setting(group, hall=hall, hall_number=hall_number)
        except SettingNotFoundError:
            return None

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
        hall = _hall_keyword(hall, hall_number)
        if hall is not None:
            if group is not None:
                raise ValueError("give either a group (number or symbol) or hall=, not both")
            return self._by_hall_number(hall)
        if group is None:
            raise TypeError("a space-group number, symbol or hall= is required")
        if isinstance(group, (bool, np.bool_)):
            raise TypeError(f"space group must be a number or a symbol, got {group!r}")
        if isinstance(group, (int, np.integer)):
            return self._by_number(int(group))
        if isinstance(group, (float, np.floating)):
            raise TypeError(f"space-group number must be an integer, got {group!r}")
        if not isinstance(group, str):
            raise TypeError(f"space group must be a number or a symbol, got {type(group).__name__}")
        text = group.strip()
        if not text:
            raise ValueError("empty space-group symbol")
        if text.lstrip("+-").isdigit():
            return self._by_number(int(text))
        return self._by_symbol(text)

    def _by_hall_number(self, hall) -> Setting:
        if isinstance(hall, (bool, np.bool_)) or not isinstance(hall, (int, np.integer)):
            raise TypeError(f"hall_number must be an integer, got {hall!r}")
        if int(hall) not in self._row:
            if 1 <= int(hall) <= N_SETTINGS:
                raise SettingNotFoundError(f"hall_number {int(hall)} is not in {self.path}; rebuild it with that setting")
            raise SettingNotFoundError(f"hall_number must be in 1..{N_SETTINGS}, got {int(hall)}")
        return self._setting_at(self._row[int(hall)])

    def _by_number(self, number: int) -> Setting:
        if not 1 <= number <= N_SPACE_GROUPS:
            raise SettingNotFoundError(f"space-group number must be in 1..{N_SPACE_GROUPS}, got {number}")
        matches = [self._setting_at(i) for i in np.flatnonzero(self._ints[:, 1] == number)]
        if not matches:
            raise SettingNotFoundError(f"space group {number} is not in {self.path}")
        for s in matches:
            if s.is_default:
                return s
        return matches[0]

    def _by_symbol(self, text: str) -> Setting:
        return self._setting_at(self._row[self._symbols().resolve(text)])

    def get(
        self,
        group=None,
        *,
        hall: int | None = None,
        kmax: int | None = None,
        plane=None,
        hall_number: int | None = None,
        magnetic=None,
    ) -> Basis:
        """The Basis of a setting (see ``get_setting`` for ``group``/``hall``) at ``kmax`` (default: the artifact's).

        ``plane=``: instead, one of the 17 plane groups, by number 1..17 or symbol
        ('p2mg', 'pmg', 'p4gm', ...; see ``plane_group``): a 2-D Basis.  Plane-group
        numbers never collide with space-group numbers: ``get(17)`` is space group 17
        (P 2 2 2_1), ``get(plane=17)`` is the plane group p6mm.

        ``magnetic=``: instead, one of the 1,651 magnetic space-group types, by UNI number
        (int), BNS number ('136.499') or OG number ('136.4.1155'): a ``MagneticBasis`` with
        ``time_even`` and ``time_odd`` Basis views (see ``magnetic_group``).
        """
        hall = _hall_keyword(hall, hall_number)
        if magnetic is not None:
            if group is not None or hall is not None or plane is not None:
                raise ValueError("give either magnetic= or a space/plane group, not both")
            return _magnetic_io.get_magnetic(self, magnetic, self._check_kmax(kmax))
        if plane is not None:
            if group is not None or hall is not None:
                raise ValueError("give either plane= or a space group (number, symbol or hall=), not both")
            setting = self.plane_group(plane)
            ident = ("plane", setting.number)
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
            return self.get(group, hall=hall, kmax=kmax, plane=plane, hall_number=hall_number, magnetic=magnetic)
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
            raise ValueError(
                f"kmax={int(kmax)} exceeds this artifact's kmax={self.kmax}; build a larger one with "
                f"`basisdb build --kmax {int(kmax)} -o PATH` and open it with basisdb.open(PATH)"
            )
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
            return read_datasets(self.path, f, name, fields, limit, what=what, limit_note=f" (at most {limit} at kmax={self.kmax})")

    def _read_basis(self, setting: Setting | PlaneGroup) -> Basis:
        if isinstance(setting, PlaneGroup):
            what = f"plane group {setting.number}"
            payload = self._read_payload(setting.number, plane=True)
            ints, strs, row = self._plane_index()
            expected = strs[row[setting.number], PLANE_INDEX_STRINGS.index("sha256")].decode("ascii", "replace")
        else:
            what = f"setting {setting.hall_number}"
            payload = self._read_payload(setting.hall_number)
            expected = self._strs[self._row[setting.hall_number], INDEX_STRINGS.index("sha256")].decode("ascii", "replace")
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
    def _check_informative_attributes(self) -> None:
        """The informative string attributes (not read by ``open``) are intact printable text."""
        f = self._h5()
        with self._lock:
            for name in ("conventions", "builder_version", "spglib_version"):
                if name in f.attrs:
                    text = _attr_str(f, name)
                    if len(text) > 65536 or any(not (32 <= ord(c) < 127 or c in "\n\t") for c in text):
                        raise ArtifactError(f"{self.path}: root attribute {name!r} is not printable ASCII (damaged file?)")

    def verify(self, invariance_points: int = 8, seed: int = 0, tol: float = 1e-10) -> dict:
        """Check every setting: readable, checksums (Fletcher-32 and SHA-256), consistent
        shapes, and invariance of every basis function under every stored operation at
        ``invariance_points`` random points.  Returns a report dict; raises ArtifactError
        on the first problem.
        """
        rng = np.random.default_rng(seed)
        worst = 0.0
        self._check_informative_attributes()
        planes = self.plane_groups()
        for s in self._settings + planes:
            basis = self._read_basis(s)
            x = rng.random((invariance_points, basis.dim))
            rots, trans = basis.operations()
            images = (np.einsum("gij,nj->gni", rots, x) + trans[:, None, :]).reshape(-1, basis.dim)
            values = basis.evaluate(np.concatenate([x, images]))
            ref = np.tile(values[: len(x)], (len(rots), 1))
            err = float(np.max(np.abs(values[len(x) :] - ref), initial=0.0))
            worst = max(worst, err)
            if err > tol:
                what = f"plane group {s.number}" if isinstance(s, PlaneGroup) else f"setting {s.hall_number}"
                raise ArtifactError(f"{self.path}: {what} is not invariant under its operations (error {err:.2e})")
        magnetic = _magnetic_io.verify_magnetic(self, rng, invariance_points, tol)
        worst = max(worst, magnetic["max_invariance_error"])
        return {
            "path": str(self.path),
            "settings": len(self),
            "plane_groups": len(planes),
            "magnetic_groups": magnetic["groups"],
            "kmax": self.kmax,
            "max_invariance_error": worst,
        }

    # ------------------------------------------------------- magnetic groups
    def magnetic_groups(self) -> list:
        """The magnetic space-group types in the artifact (all 1,651 in the shipped one), ascending UNI number."""
        return list(_magnetic_io.magnetic_index(self).groups.values())

    def magnetic_group(self, key):
        """Resolve a magnetic space-group type: a UNI number 1..1651 (int or text), a BNS number
        ('136.499') or an OG number ('136.4.1155').  Raises SettingNotFoundError / TypeError."""
        return _magnetic_io.magnetic_index(self).resolve(key)

    # --------------------------------------------------------- plane groups
    def _plane_index(self) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
        """The /index_plane tables and number -> row (read on first use; empty if the file has none)."""
        with self._lock:
            cached = getattr(self, "_plane_tables", None)
            if cached is not None:
                return cached
            f = self._h5()
            if PLANE_INDEX not in f:  # a valid file without plane groups (FORMAT.md section 13)
                tables = (np.zeros((0, len(PLANE_INDEX_INTEGERS)), np.int64), np.zeros((0, len(PLANE_INDEX_STRINGS)), "S1"), {})
            else:
                ints = self._read_table(f, "integers", PLANE_INDEX_INTEGERS, "iu", index=PLANE_INDEX)
                strs = self._read_table(f, "strings", PLANE_INDEX_STRINGS, "S", index=PLANE_INDEX)
                check_index(self.path, f"/{PLANE_INDEX}/integers", ints, PLANE_INDEX_INTEGERS, self.kmax, dim=2)
                numbers = ints[:, 0].tolist()
                if len(strs) != len(ints) or numbers != sorted(set(numbers)) or not set(numbers) <= set(range(1, N_PLANE_GROUPS + 1)):
                    raise ArtifactError(f"{self.path}: /{PLANE_INDEX} tables are inconsistent")
                tables = (ints, strs, {n: i for i, n in enumerate(numbers)})
            self._plane_tables = tables
            return tables

    def plane_groups(self) -> list[PlaneGroup]:
        """The plane groups in the artifact (all 17 in the shipped one), ascending number."""
        ints, strs, _ = self._plane_index()
        out = []
        for r in range(len(ints)):
            fields = dict(zip(PLANE_INDEX_INTEGERS, ints[r].tolist()))
            fields.update({k: v.decode("ascii", "replace") for k, v in zip(PLANE_INDEX_STRINGS, strs[r].tolist())})
            out.append(PlaneGroup(**{name: fields[name] for name in PlaneGroup.__dataclass_fields__}))
        return out

    def plane_group(self, plane) -> PlaneGroup:
        """Resolve a plane group: number 1..17 (int or text) or a symbol, full ('p2mg', 'c2mm',
        'p4gm') or short ('pmg', 'cmm', 'p4g'), ignoring spaces, underscores and case."""
        if isinstance(plane, (bool, np.bool_)) or not isinstance(plane, (int, np.integer, str)):
            raise TypeError(f"plane group must be a number 1..17 or a symbol like 'p4gm', got {plane!r}")
        groups = self.plane_groups()
        if not groups:
            raise SettingNotFoundError(f"{self.path} has no plane groups; rebuild it with `basisdb build`")
        text = str(plane).strip()
        if text.lstrip("+-").isdigit():
            number = int(text)
            if not 1 <= number <= N_PLANE_GROUPS:
                raise SettingNotFoundError(f"plane-group number must be in 1..{N_PLANE_GROUPS}, got {number}")
            found = [g for g in groups if g.number == number]
        else:
            key = "".join(text.split()).replace("_", "").lower()
            found = [g for g in groups if key in (g.hm_full.lower(), g.hm_short.lower())]
        if not found:
            raise SettingNotFoundError(f"unknown plane group {plane!r} (use 1..17 or a symbol like 'p4gm'; see `basisdb list --plane`)")
        return found[0]
