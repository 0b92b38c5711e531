"""Exceptions raised by basisdb.  All derive from built-in exception types."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "CIFError",
    "CIFWarning",
    "CartesianPositionsWarning",
    "NotAGroupError",
    "SettingNotFoundError",
    "SnappedTranslationWarning",
    "SymmetryMismatchError",
    "SymmetryMismatchWarning",
    "SymmetryNotFoundError",
]


class ArtifactError(OSError):
    """The HDF5 artifact is missing, damaged, of an unknown format or inconsistent."""


class NotAGroupError(ValueError):
    """A user-supplied set of operations is not a space group (mod lattice translations)."""


class SettingNotFoundError(LookupError):
    """No setting matches a group number, symbol or hall_number (or the match is ambiguous)."""

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class CIFError(ValueError):
    """A CIF that cannot be turned into an ordered crystal structure (names the tag and value at fault)."""


class CIFWarning(UserWarning):
    """A CIF was read, but something in it was repaired or looks doubtful (the message says what)."""


class SnappedTranslationWarning(CIFWarning):
    """Operation translations written as decimals (0.333, 0.6667) were read as the nearest multiple of 1/24."""


class SymmetryMismatchWarning(UserWarning):
    """The space group a structure declares differs from the one detected (or the declared forms disagree)."""


class SymmetryMismatchError(ValueError):
    """``featurize(..., on_mismatch="raise")``: the declared and the detected space groups differ."""


class SymmetryNotFoundError(ValueError):
    """The symmetry detector (spglib or moyopy) could not determine the space group of the structure.

    A ``ValueError`` subclass, so ``except ValueError`` keeps catching it.  Usually the
    structure is badly distorted for the tolerance, or has overlapping / nearly coincident
    atoms: try another ``symprec``.
    """


class CartesianPositionsWarning(UserWarning):
    """Positions passed as fractional coordinates look like Cartesian ones (Angstrom)."""


def warn(warning: Warning) -> None:
    """``warnings.warn`` attributed to the first caller outside the basisdb package."""
    import os
    import sys
    import types
    import warnings

    package = os.path.dirname(os.path.abspath(__file__))
    level = 2
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(warning, stacklevel=level)
