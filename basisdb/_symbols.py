"""Space-group numbers and crystal systems (symbol lookup is in ``_symbol_resolver``)."""

from __future__ import annotations

from ._constants import N_SPACE_GROUPS

__all__ = ["crystal_system_of", "CRYSTAL_SYSTEMS"]

CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")
_SYSTEM_LAST_NUMBER = (2, 15, 74, 142, 167, 194, N_SPACE_GROUPS)


def crystal_system_of(number: int) -> str:
    """Crystal system of a space-group number 1..N_SPACE_GROUPS (230)."""
    for name, last in zip(CRYSTAL_SYSTEMS, _SYSTEM_LAST_NUMBER):
        if 1 <= number <= last:
            return name
    raise ValueError(f"space-group number must be in 1..{N_SPACE_GROUPS}, got {number}")
