"""basisdb's offline builder (needs spglib and networkx; the reader never imports it).

It lives in the repository's ``build/`` folder but is installed as the package
``basisdb_build`` (see setup.cfg), so ``basisdb build`` works from an installed
package and nothing named ``build`` shadows PyPA's ``build``.

The contract with the reader is explicit: from ``basisdb`` the builder imports only
``_constants`` (DEN, MAX_KMAX, N_SETTINGS, ...), ``_format`` (dataset names, dtypes,
the content hash), ``_ops`` (exact operations), ``_boxindex`` (the shared box index),
``_symbols`` (crystal systems) and ``_version``; tests/repo/test_repo.py checks this.
"""

from .builder import (
    build_database,
    check_build_request,
    check_output_path,
    estimate_peak_memory,
    parse_selection,
)
from .orbits import OrbitSolution, solve_orbits

__all__ = [
    "build_database",
    "check_build_request",
    "check_output_path",
    "parse_selection",
    "estimate_peak_memory",
    "OrbitSolution",
    "solve_orbits",
]
