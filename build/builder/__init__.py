"""basisdb's offline builder, ``basisdb.builder`` (the reader never imports it).

Its sources live in the repository's ``build/builder/`` folder and are installed inside the
package as ``basisdb.builder`` (setup.cfg: ``package_dir``), as ``data/`` is installed as
``basisdb.data``.  It needs spglib and networkx, the ``build`` extra
(``pip install 'basisdb[build]'``); importing it without them raises ImportError with that
command (one line, which ``basisdb build`` prints as its error).

The contract with the reader is one module, ``basisdb._format``: the format name and
version, root attributes, layout and dataset names, the content hash, the operation encoding
(``DEN``, ``MAX_KMAX``) and the box index.  Besides it the builder imports from ``basisdb``
only shared code and numbers: ``_ops`` (exact operations), ``_symbols`` (crystal systems),
``_constants`` (the counts N_SETTINGS, N_PLANE_GROUPS, N_MAGNETIC_TYPES) and ``_version``;
tests/repo/test_repo.py checks this.
"""

#: the command that installs the builder's dependencies (named by every "missing" error)
INSTALL_HINT = "pip install 'basisdb[build]'"


def _require(*modules: str) -> None:
    """Import ``modules``; ImportError naming the missing one and ``INSTALL_HINT`` otherwise."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing = isinstance(exc, ModuleNotFoundError) and exc.name == name
            why = "which is not installed" if missing else f"which cannot be imported ({exc})"
            raise ImportError(
                f"the basisdb builder needs {name}, {why}; install it with: {INSTALL_HINT}"
            ) from None


_require("networkx", "spglib")

from .builder import (  # noqa: E402  (after the dependency check, for its one-line error)
    build_database,
    check_build_request,
    check_output_path,
    estimate_peak_memory,
    parse_selection,
)
from .orbits import OrbitSolution, solve_orbits  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "build_database",
    "check_build_request",
    "check_output_path",
    "parse_selection",
    "estimate_peak_memory",
    "OrbitSolution",
    "solve_orbits",
]
