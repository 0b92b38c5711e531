"""Reading the HDF5 artifact: opening, validation, lookup and integrity checks."""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from ._basis import Basis, Setting
from ._errors import ArtifactError, SettingNotFoundError
from ._format import FORMAT_NAME, FORMAT_VERSION, INDEX_INTEGERS, INDEX_STRINGS, PAYLOAD_FIELDS, payload_sha256, setting_group_name
from ._symbols import normalize_symbol

__all__ = ["Database", "open", "default_path", "ENV_PATH"]

#: environment variable naming the artifact to use when ``open()`` gets no path
ENV_PATH = "BASISDB_PATH"
ARTIFACT_NAME = "basisdb.h5"

_MAX_SETTINGS = 100_000
_MAX_KMAX = 127
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


def _attr_int(f: h5py.File, name: str, lo: int, hi: int) -> int:
    if name not in f.attrs:
        raise ArtifactError(f"{f.filename}: missing root attribute {name!r}; not a basisdb artifact")
    value = f.attrs[name]
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        arr = np.asarray(value)
        if arr.shape != () or arr.dtype.kind not in "iu":
            raise ArtifactError(f"{f.filename}: root attribute {name!r} must be an integer, got {value!r:.80}")
        value = arr.item()
    if not lo <= int(value) <= hi:
        raise ArtifactError(f"{f.filename}: root attribute {name!r} = {int(value)} is outside {lo}..{hi}")
    return int(value)


def _attr_str(f: h5py.File, name: str) -> str:
    value = f.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise ArtifactError(f"{f.filename}: root attribute {name!r} must be a string")
    return value


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
        f = self._h5()
        self.format_version = _attr_int(f, "format_version", 0, 2**31 - 1)
        if _attr_str(f, "format") != FORMAT_NAME:
            raise ArtifactError(f"{self.path}: not a basisdb artifact (format attribute is not {FORMAT_NAME!r})")
        if self.format_version > FORMAT_VERSION:
            raise ArtifactError(
                f"{self.path}: format version {self.format_version} is newer than this basisdb "
                f"supports ({FORMAT_VERSION}); upgrade basisdb"
            )
        if self.format_version < 1:
            raise ArtifactError(f"{self.path}: unknown format version {self.format_version}")
        self.kmax = _attr_int(f, "kmax", 1, _MAX_KMAX)
        self.denominator = _attr_int(f, "denominator", 1, 10_000)
        self._read_index(f)
        self._aliases: tuple[dict, dict] | None = None  # built on the first symbol lookup

    # ----------------------------------------------------------------- file
    def _h5(self) -> h5py.File:
        """The open h5py file of *this* process (reopened after fork)."""
        with self._lock:
            if self._file is None or self._pid != os.getpid():
                self._file = self._open_file()
                self._pid = os.getpid()
            return self._file

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
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __repr__(self) -> str:
        return f"<basisdb.Database {str(self.path)!r} kmax={self.kmax} settings={len(self)}>"

    # ---------------------------------------------------------------- index
    def _read_table(self, f: h5py.File, name: str, columns: tuple[str, ...], kinds: str) -> np.ndarray:
        ds = f.get(f"index/{name}")
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[1] != len(columns):
            raise ArtifactError(f"{self.path}: /index/{name} is missing or not an (n, {len(columns)}) table")
        if not 0 < ds.shape[0] <= _MAX_SETTINGS:
            raise ArtifactError(f"{self.path}: /index/{name} has an absurd number of rows {ds.shape[0]}")
        if ds.dtype.kind not in kinds or ds.dtype.itemsize > _MAX_STRING:
            raise ArtifactError(f"{self.path}: /index/{name} has unexpected dtype {ds.dtype}")
        found = ds.attrs.get("columns")
        if isinstance(found, bytes):
            found = found.decode("ascii", "replace")
        if found != ",".join(columns):
            raise ArtifactError(f"{self.path}: /index/{name} has columns {found!r:.200}, expected {','.join(columns)!r}")
        try:
            data = ds[()]
        except OSError as exc:
            raise ArtifactError(f"{self.path}: /index/{name} is damaged: {exc}") from None
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

    def _alias_tables(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """normalised symbol -> hall_numbers, exact and case-folded (built on first use)."""
        col = {name: self._strs[:, i] for i, name in enumerate(INDEX_STRINGS)}
        exact: dict[str, list[int]] = {}
        halls, numbers = self._ints[:, 0].tolist(), self._ints[:, 1].tolist()
        for row, hall in enumerate(halls):
            names = {col[c][row].decode("ascii", "replace") for c in ("hm_short", "hm_full", "hm_extended", "hall_symbol")}
            choice = col["choice"][row].decode("ascii", "replace")
            if choice:
                names.add(f"{numbers[row]}:{choice}")
            for name in names:
                exact.setdefault(normalize_symbol(name), []).append(hall)
        folded: dict[str, list[int]] = {}
        for key, halls in exact.items():
            lst = folded.setdefault(key.lower(), [])
            lst.extend(h for h in halls if h not in lst)
        return exact, folded

    def settings(self) -> list[Setting]:
        """All settings in the artifact, ascending hall_number."""
        return list(self._settings)

    def __len__(self) -> int:
        return len(self._ints)

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings)

    # --------------------------------------------------------------- lookup
    def find_setting(self, group=None, *, hall: int | None = None) -> Setting | None:
        """Like ``get_setting`` but returns None when nothing matches (bad input still raises)."""
        try:
            return self.get_setting(group, hall=hall)
        except SettingNotFoundError:
            return None

    def get_setting(self, group=None, *, hall: int | None = None) -> Setting:
        """Resolve a space-group number, a symbol or ``hall=`` to a Setting.

        group: int 1..230 (spglib's default setting of that number), or a str:
        an H-M symbol (short 'Fd-3m', full, or setting-specific 'F d -3 m:2',
        'P 1 21/c 1', 'R -3 c:R'), a Hall symbol ('-F 4vw 2vw 3'), 'number:choice'
        ('227:2') or a number as text.  A symbol naming several settings resolves
        to spglib's default one when it is among them, else to the first in
        hall_number order.  Raises SettingNotFoundError / ValueError / TypeError.
        """
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
            if 1 <= int(hall) <= 530:
                raise SettingNotFoundError(f"hall_number {int(hall)} is not in {self.path}; rebuild it with that setting")
            raise SettingNotFoundError(f"hall_number must be in 1..530, got {int(hall)}")
        return self._setting_at(self._row[int(hall)])

    def _by_number(self, number: int) -> Setting:
        if not 1 <= number <= 230:
            raise SettingNotFoundError(f"space-group number must be in 1..230, got {number}")
        matches = [self._setting_at(i) for i in np.flatnonzero(self._ints[:, 1] == number)]
        if not matches:
            raise SettingNotFoundError(f"space group {number} is not in {self.path}")
        for s in matches:
            if s.is_default:
                return s
        return matches[0]

    def _by_symbol(self, text: str) -> Setting:
        if self._aliases is None:
            self._aliases = self._alias_tables()
        exact, folded = self._aliases
        key = normalize_symbol(text)
        halls = exact.get(key) or folded.get(key.lower())
        if not halls:
            raise SettingNotFoundError(f"unknown space-group symbol {text!r}")
        found = [self._setting_at(self._row[h]) for h in sorted(set(halls))]
        numbers = {s.number for s in found}
        if len(numbers) > 1:
            listing = ", ".join(f"{s.hm_extended} (hall {s.hall_number})" for s in found)
            raise SettingNotFoundError(f"ambiguous space-group symbol {text!r}: matches {listing}")
        for s in found:
            if s.is_default:
                return s
        return found[0]

    def get(self, group=None, *, hall: int | None = None, kmax: int | None = None) -> Basis:
        """The Basis of a setting (see ``get_setting`` for ``group``/``hall``) at ``kmax`` (default: the artifact's)."""
        setting = self.get_setting(group, hall=hall)
        kmax = self._check_kmax(kmax)
        key = (setting.hall_number, kmax)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        full_key = (setting.hall_number, self.kmax)
        with self._lock:
            full = self._cache.get(full_key)
        if full is None:
            full = self._read_basis(setting)
        basis = full.restrict(kmax)
        with self._lock:
            self._cache.setdefault(full_key, full)
            self._cache.setdefault(key, basis)
            return self._cache[key]

    def find(self, group=None, *, hall: int | None = None, kmax: int | None = None) -> Basis | None:
        """Like ``get`` but returns None when no setting matches."""
        try:
            return self.get(group, hall=hall, kmax=kmax)
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

    def _read_payload(self, hall_number: int) -> dict[str, np.ndarray]:
        name = setting_group_name(hall_number)
        f = self._h5()
        with self._lock:
            group = f.get(name)
            if not isinstance(group, h5py.Group):
                raise ArtifactError(f"{self.path}: setting {hall_number} is listed but {name} is missing")
            out = {}
            for field, (dtype, tail) in PAYLOAD_FIELDS.items():
                ds = group.get(field)
                if not isinstance(ds, h5py.Dataset):
                    raise ArtifactError(f"{self.path}: {name}/{field} is missing")
                if ds.dtype != np.dtype(dtype) or ds.shape[1:] != tail or ds.ndim != 1 + len(tail):
                    raise ArtifactError(f"{self.path}: {name}/{field} has shape {ds.shape} dtype {ds.dtype}")
                if ds.shape[0] > (2 * _MAX_KMAX + 1) ** 3:
                    raise ArtifactError(f"{self.path}: {name}/{field} has an absurd length {ds.shape[0]}")
                try:
                    out[field] = ds[()]
                except OSError as exc:
                    raise ArtifactError(f"{self.path}: {name}/{field} is damaged: {exc}") from None
        return out

    def _read_basis(self, setting: Setting) -> Basis:
        payload = self._read_payload(setting.hall_number)
        expected = self._strs[self._row[setting.hall_number], INDEX_STRINGS.index("sha256")].decode("ascii", "replace")
        if payload_sha256(payload) != expected:
            raise ArtifactError(f"{self.path}: setting {setting.hall_number} fails its SHA-256 check (damaged file)")
        ptr = payload["orbit_ptr"]
        n = len(payload["frequencies"])
        if (
            len(ptr) != setting.n_orbits + 1
            or len(ptr) == 0
            or ptr[0] != 0
            or ptr[-1] != n
            or np.any(np.diff(ptr) <= 0)
            or len(payload["phases"]) != n
            or np.any(np.abs(payload["frequencies"]) > self.kmax)
            or np.any(payload["phases"] >= self.denominator)
            or len(payload["rotations"]) != setting.order
        ):
            raise ArtifactError(f"{self.path}: setting {setting.hall_number} has inconsistent arrays")
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
        rng = np.random.default_rng(seed)
        worst = 0.0
        for s in self._settings:
            basis = self._read_basis(s)
            x = rng.random((invariance_points, 3))
            rots, trans = basis.operations()
            images = (np.einsum("gij,nj->gni", rots, x) + trans[:, None, :]).reshape(-1, 3)
            values = basis.evaluate(np.concatenate([x, images]))
            ref = np.tile(values[: len(x)], (len(rots), 1))
            err = float(np.max(np.abs(values[len(x) :] - ref), initial=0.0))
            worst = max(worst, err)
            if err > tol:
                raise ArtifactError(
                    f"{self.path}: setting {s.hall_number} is not invariant under its operations (error {err:.2e})"
                )
        return {"path": str(self.path), "settings": len(self), "kmax": self.kmax, "max_invariance_error": worst}
