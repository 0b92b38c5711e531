"""Exceptions raised by basisdb.  All derive from built-in exception types."""
from __future__ import annotations

__all__ = ["ArtifactError", "NotAGroupError", "SettingNotFoundError"]


class ArtifactError(OSError):
    """The HDF5 artifact is missing, damaged, of an unknown format or inconsistent."""


class NotAGroupError(ValueError):
    """A user-supplied set of operations is not a space group (mod lattice translations)."""


class SettingNotFoundError(LookupError):
    """No setting matches a group number, symbol or hall_number (or the match is ambiguous)."""

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
