"""basisdb: exact symmetry-adapted Fourier bases for all 530 space-group settings.

>>> import basisdb
>>> db = basisdb.open()                 # the shipped artifact (or $BASISDB_PATH)
>>> b = db.get("Fd-3m:2")              # or db.get(227), db.get(hall=526)
>>> p = db.get(plane="p4gm")            # one of the 17 plane groups (2-D), or db.get(plane=12)
>>> m = db.get(magnetic="136.498")      # a magnetic group (UNI, BNS or OG number): m.time_even, m.time_odd
>>> feats = b.evaluate(x)               # (N, n_basis) invariant features
>>> r = basisdb.featurize("NaCl.cif")    # a crystal: detected setting, canonical coordinates, features

Importing basisdb loads numpy and h5py only: scipy is imported when a sparse matrix is first built,
and the builder (``basisdb.builder``, the ``build`` extra: spglib, networkx) on demand by
``basis_from_operations`` and ``basisdb build``.
"""

from ._basis import Basis, PlaneGroup, Setting
from ._boxindex import box_frequencies, box_index
from ._custom import basis_from_operations
from ._database import Database, default_path, open
from ._database import default_database as _default_database
from ._errors import (
    ArtifactError,
    CartesianPositionsWarning,
    CIFError,
    CIFWarning,
    NotAGroupError,
    SettingNotFoundError,
    SnappedTranslationWarning,
    SymmetryMismatchError,
    SymmetryMismatchWarning,
    SymmetryNotFoundError,
)
from ._magnetic import MagneticBasis, MagneticGroup
from ._ops import DEN, check_group, format_triplet, parse_triplets
from ._plot import plot_basis  # matplotlib itself is imported only when a picture is drawn
from ._routing import shared_encoding
from ._subgroups import subgroup_settings
from ._vector import VectorBasis
from ._version import __version__
from .dataset import (  # pyarrow/dask imported on use
    featurize_dataset,
    featurize_many,
    read_failures,
    read_features,
)
from .structures import (  # spglib is imported only when featurize runs
    Featurized,
    LowSymmetryWarning,
    featurize,
    read_cif,
)

__all__ = [
    "ArtifactError",
    "Basis",
    "CIFError",
    "CIFWarning",
    "CartesianPositionsWarning",
    "DEN",
    "Database",
    "Featurized",
    "LowSymmetryWarning",
    "MagneticBasis",
    "MagneticGroup",
    "NotAGroupError",
    "PlaneGroup",
    "Setting",
    "SettingNotFoundError",
    "SnappedTranslationWarning",
    "SymmetryMismatchError",
    "SymmetryMismatchWarning",
    "SymmetryNotFoundError",
    "VectorBasis",
    "__version__",
    "basis_from_operations",
    "box_frequencies",
    "box_index",
    "check_group",
    "default_path",
    "featurize",
    "featurize_dataset",
    "featurize_many",
    "format_triplet",
    "get_basis",
    "open",
    "parse_triplets",
    "plot_basis",
    "read_cif",
    "read_failures",
    "read_features",
    "shared_encoding",
    "subgroup_settings",
]


def get_basis(group=None, *, hall=None, kmax=None, path=None, plane=None, hall_number=None) -> Basis:
    """Shortcut for ``basisdb.open(path).get(group, hall=hall, kmax=kmax, plane=plane)`` (without ``path``:
    the package's one default database, opened once); ``hall_number=`` is spglib's name for ``hall=``."""
    db = open(path) if path is not None else _default_database()
    return db.get(group, hall=hall, kmax=kmax, plane=plane, hall_number=hall_number)
