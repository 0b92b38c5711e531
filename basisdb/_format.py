"""The contract between the builder and the reader: the HDF5 artifact's format (docs/FORMAT.md).

The one module both sides import for what the file means: the format name and version, the
root attributes, the layout (group, table and dataset names, dtypes and shapes), the content
hash, the operation encoding (integer numerators over ``DEN``, frequencies as int8 up to
``MAX_KMAX``) and the box index with its canonical order.  The builder (``basisdb.builder``)
takes all of these from here; the reader (``basisdb``) never imports the builder.  Each name
is defined once: the numbers in ``_constants``, the box index in ``_boxindex`` (both
re-exported here, so that this module alone states the contract), the rest below.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ._boxindex import box_frequencies, box_index, canonical_rank, canonical_sort
from ._constants import DEN, MAX_KMAX

__all__ = [
    "DEN",
    "MAX_KMAX",
    "box_frequencies",
    "box_index",
    "canonical_rank",
    "canonical_sort",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MIN_FORMAT_VERSION",
    "ROOT_ATTRIBUTES",
    "root_attributes",
    "SETTINGS",
    "INDEX",
    "INTEGERS",
    "STRINGS",
    "COLUMNS",
    "INDEX_INTEGERS",
    "INDEX_STRINGS",
    "PAYLOAD_FIELDS",
    "CONVENTIONS",
    "payload_sha256",
    "setting_group_name",
    "PLANE_GROUPS",
    "PLANE_INDEX",
    "PLANE_INDEX_INTEGERS",
    "PLANE_INDEX_STRINGS",
    "PLANE_PAYLOAD_FIELDS",
    "plane_group_name",
    "MAGNETIC",
    "MAGNETIC_TYPES",
    "MAGNETIC_BASES",
    "MAGNETIC_INDEX",
    "MAGNETIC_BASIS_INDEX",
    "magnetic_type_name",
    "magnetic_basis_name",
    "MAGNETIC_INDEX_INTEGERS",
    "MAGNETIC_INDEX_STRINGS",
    "MAGNETIC_OPS_FIELDS",
    "MAGNETIC_BASIS_INDEX_INTEGERS",
    "MAGNETIC_BASIS_INDEX_STRINGS",
    "MAGNETIC_BASIS_FIELDS",
]

FORMAT_NAME = "basisdb"
FORMAT_VERSION = 2
#: oldest format version a reader of this version still reads (version 1: no /magnetic section)
MIN_FORMAT_VERSION = 1

#: root attributes (FORMAT.md section 2), in the order the builder writes them
ROOT_ATTRIBUTES = (
    "format",
    "format_version",
    "kmax",
    "denominator",
    "n_settings",
    "conventions",
    "builder_version",
    "spglib_version",
)

#: group of the settings' payloads, /settings/<hall_number> (FORMAT.md section 1)
SETTINGS = "settings"
#: group of the settings' index tables (FORMAT.md section 3)
INDEX = "index"
#: the two tables of every index group (/index, /index_plane, /magnetic/index, /magnetic/basis_index)
INTEGERS = "integers"
STRINGS = "strings"
#: attribute of each index table: its column names, comma-separated
COLUMNS = "columns"

#: columns of /index/integers, an (n_settings, 7) int32 table, one row per setting, ascending hall_number
INDEX_INTEGERS = ("hall_number", "number", "order", "n_orbits", "n_frequencies", "n_extinct", "is_default")
#: columns of /index/strings, an (n_settings, 8) fixed-length ASCII table, same rows
INDEX_STRINGS = (
    "hall_symbol",
    "hm_short",
    "hm_full",
    "hm_extended",
    "choice",
    "crystal_system",
    "point_group",
    "sha256",
)

#: datasets of /settings/<hall_number>, in the order they enter the content hash: name -> (dtype, trailing shape)
PAYLOAD_FIELDS = {
    "frequencies": ("i1", (3,)),
    "orbit_ptr": ("i4", ()),
    "phases": ("u1", ()),
    "extinct": ("i1", (3,)),
    "rotations": ("i1", (3, 3)),
    "translations": ("u1", (3,)),
}

CONVENTIONS = (
    "Operation (R,t): x -> R x + t on fractional coordinates, t = translations/denominator. "
    "Plane wave e_k(x) = exp(2 pi i k.x), k = (h,k,l) integer. "
    "Invariance: c_{R^T k} = c_k exp(2 pi i k.t). "
    "Orbit j: rows orbit_ptr[j]:orbit_ptr[j+1] of frequencies; basis function "
    "phi_j(x) = |O_j|^(-1/2) sum_k exp(2 pi i phases[k]/denominator) e_k(x); first member is the "
    "representative with phase 0. Canonical order key (max|k_i|, |k|^2, -h, -k, -l) ascending. "
    "Only orbits lying wholly inside |h|,|k|,|l| <= kmax are kept; extinct = frequencies of "
    "orbits forced to zero (systematic absences). Box index ((h+K)n + (k+K))n + (l+K), n = 2K+1."
)


def root_attributes(kmax: int, n_settings: int, builder_version: str, spglib_version: str) -> dict:
    """The root attributes of an artifact, ``{name: value}`` in ``ROOT_ATTRIBUTES`` order.

    ``kmax`` and ``n_settings`` become int32 scalars; the format name, version, ``DEN`` and
    ``CONVENTIONS`` come from this module; the two versions are informative strings.
    """
    return {
        "format": FORMAT_NAME,
        "format_version": np.int32(FORMAT_VERSION),
        "kmax": np.int32(kmax),
        "denominator": np.int32(DEN),
        "n_settings": np.int32(n_settings),
        "conventions": CONVENTIONS,
        "builder_version": str(builder_version),
        "spglib_version": str(spglib_version),
    }


def setting_group_name(hall_number: int) -> str:
    """HDF5 path of a setting's payload group, e.g. ``/settings/526``."""
    return f"/{SETTINGS}/{int(hall_number)}"


def payload_sha256(arrays: dict[str, np.ndarray], fields: dict | None = None) -> str:
    """Hex SHA-256 of a setting's payload, independent of HDF5 storage details.

    For each field of ``fields`` (default ``PAYLOAD_FIELDS``) in order: the ASCII bytes of
    ``"<name>:<shape as comma-separated ints>;"`` then the array's bytes in
    C order, little-endian, with the field's dtype.
    """
    h = hashlib.sha256()
    for name, (dtype, _) in (PAYLOAD_FIELDS if fields is None else fields).items():
        arr = np.ascontiguousarray(arrays[name], dtype=np.dtype(dtype).newbyteorder("<"))
        h.update(f"{name}:{','.join(str(s) for s in arr.shape)};".encode("ascii"))
        h.update(arr.tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------ plane groups (FORMAT.md section 13)
#: groups of the 17 plane groups; optional (a file without them is a valid version-1 file)
PLANE_GROUPS = "plane_groups"
PLANE_INDEX = "index_plane"
#: columns of /index_plane/integers, a (17, 5) int32 table, one row per plane group, ascending number
PLANE_INDEX_INTEGERS = ("number", "order", "n_orbits", "n_frequencies", "n_extinct")
#: columns of /index_plane/strings, a (17, 5) fixed-length ASCII table, same rows
PLANE_INDEX_STRINGS = ("hm_short", "hm_full", "lattice", "point_group", "sha256")
#: datasets of /plane_groups/<number>: the names, dtypes, order and hash of PAYLOAD_FIELDS, with d = 2
#: (frequencies (n, 2), extinct (m, 2), rotations (order, 2, 2), translations (order, 2))
PLANE_PAYLOAD_FIELDS = {name: (dtype, (2,) * len(tail)) for name, (dtype, tail) in PAYLOAD_FIELDS.items()}


def plane_group_name(number: int) -> str:
    """HDF5 path of a plane group's payload group, e.g. ``/plane_groups/17``."""
    return f"/{PLANE_GROUPS}/{int(number)}"


# ------------------------------------------------------------------ magnetic groups (FORMAT.md section 15)
#: group of the 1,651 magnetic space-group types (format version >= 2; optional)
MAGNETIC = "magnetic"
#: its subgroups: operations per type, deduplicated bases, and the two index groups
MAGNETIC_TYPES = "types"
MAGNETIC_BASES = "bases"
MAGNETIC_INDEX = "index"
MAGNETIC_BASIS_INDEX = "basis_index"
#: columns of /magnetic/index/integers, one row per type, ascending uni_number.  The last 12 are
#: the transformation x_std = P x + p to the family group's standard setting, numerators over DEN
MAGNETIC_INDEX_INTEGERS = (
    (
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
    )
    + tuple(f"P{i}{j}" for i in range(3) for j in range(3))
    + ("p0", "p1", "p2")
)
#: columns of /magnetic/index/strings, same rows; sha256 of the type's operations (MAGNETIC_OPS_FIELDS)
MAGNETIC_INDEX_STRINGS = ("bns_number", "og_number", "sha256")
#: datasets of /magnetic/types/<uni_number>, in hash order
MAGNETIC_OPS_FIELDS = {
    "rotations": ("i1", (3, 3)),
    "translations": ("u1", (3,)),
    "time_reversals": ("u1", ()),
}
#: columns of /magnetic/basis_index/integers and /strings, one row per stored basis, ascending basis id
MAGNETIC_BASIS_INDEX_INTEGERS = ("basis", "n_orbits", "n_frequencies", "n_extinct")
MAGNETIC_BASIS_INDEX_STRINGS = ("sha256",)
#: datasets of /magnetic/bases/<basis>, in hash order (the first four of PAYLOAD_FIELDS)
MAGNETIC_BASIS_FIELDS = {
    name: PAYLOAD_FIELDS[name] for name in ("frequencies", "orbit_ptr", "phases", "extinct")
}


def magnetic_type_name(uni_number: int) -> str:
    """HDF5 path of a magnetic type's operations, e.g. ``/magnetic/types/1651``."""
    return f"/{MAGNETIC}/{MAGNETIC_TYPES}/{int(uni_number)}"


def magnetic_basis_name(basis: int) -> str:
    """HDF5 path of a stored magnetic basis, e.g. ``/magnetic/bases/0``."""
    return f"/{MAGNETIC}/{MAGNETIC_BASES}/{int(basis)}"
