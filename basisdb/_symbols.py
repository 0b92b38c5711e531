"""Space-group symbols: crystal systems and the normal form used for symbol lookup."""
from __future__ import annotations

__all__ = ["crystal_system_of", "normalize_symbol", "CRYSTAL_SYSTEMS"]

CRYSTAL_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")
_SYSTEM_LAST_NUMBER = (2, 15, 74, 142, 167, 194, 230)


def crystal_system_of(number: int) -> str:
    """Crystal system of a space-group number 1..230."""
    for name, last in zip(CRYSTAL_SYSTEMS, _SYSTEM_LAST_NUMBER):
        if 1 <= number <= last:
            return name
    raise ValueError(f"space-group number must be in 1..230, got {number}")


def normalize_symbol(symbol: str) -> str:
    """Normal form of an H-M or Hall symbol for matching.

    Whitespace and underscores are removed (``'P 1 2_1/c 1'`` -> ``'P121/c1'``),
    a trailing setting qualifier is written ``:X`` with X upper-case
    (``'R -3 c :h'`` -> ``'R-3c:H'``), and the characters are kept in their case:
    callers fall back to a case-insensitive match themselves.
    """
    s = "".join(symbol.split()).replace("_", "")
    if ":" in s:
        head, _, tail = s.partition(":")
        s = f"{head}:{tail.upper()}"
    return s
