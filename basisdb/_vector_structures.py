"""Per-atom equivariant (polar / axial vector) features of a crystal, in the input's Cartesian frame.

``Featurized.vector_features(kind)`` (docs/STRUCTURES.md, "Equivariant per-atom features"):
the vector basis of the detected setting (``Basis.vector(kind)``, contravariant components along
the canonical cell's a, b, c) evaluated at every atom's canonical coordinates and converted to
Cartesian components with the canonical cell's lattice **in the input's Cartesian frame**
(``Featurized.lattice = T^-T L_input``: built from the input lattice, never from spglib's
rotated ``std_lattice``, so no standardisation rotation enters), made exactly symmetric by a pure
strain (``ideal_lattice``).  Hence

* rotating the input by a proper rotation Q rotates every feature vector by Q;
* re-presentations (origin, cell, supercell, atom order, handedness) leave every atom's vectors
  unchanged: two canonical presentations differ by an operation g = (A, b) of the group, the
  fields obey f(g x) = M_g f(x) and the lattice rows change by A^-T, so L^T f is the same;
* an atom whose site symmetry forbids a polar (axial) vector has zero polar (axial) features.

Axial vectors are pseudovectors: in a left-handed canonical cell (the canonical choice may apply
an improper normaliser element) their Cartesian components are sign(det L) L^T f, so that the
result does not depend on the cell's handedness.
"""

from __future__ import annotations

import typing

import numpy as np

from ._routing import symmetrized_metric

if typing.TYPE_CHECKING:
    from .structures import Featurized

__all__ = ["ideal_lattice", "vector_features"]


def ideal_lattice(lattice, rotations) -> np.ndarray:
    """The lattice (rows a, b, c, Cartesian) made exactly invariant under ``rotations`` by a pure strain.

    G = L L^T is averaged over the distinct point-group matrices R (acting on fractional
    coordinates, x -> R x): G_sym = (1/|P|) sum_R R^T G R, so R^T G_sym R = G_sym exactly. The
    returned L' = L K with K = (L^-1 G_sym L^-T)^(1/2) symmetric positive definite, the Cartesian
    strain without rotation that gives L' L'^T = G_sym. K is the same Cartesian map for every basis
    of the same lattice, and it rotates with the input (L Q^T -> L' Q^T), so the idealisation keeps
    both the input's frame and presentation independence. For an exactly symmetric input, L' = L
    up to round-off.
    """
    L = np.asarray(lattice, dtype=np.float64)
    gs = symmetrized_metric(L, rotations)
    linv = np.linalg.inv(L)
    s = linv @ gs @ linv.T
    s = 0.5 * (s + s.T)
    w, u = np.linalg.eigh(s)
    if w.min() <= 0:
        raise ValueError("the symmetrised metric is not positive definite")
    k = (u * np.sqrt(w)) @ u.T
    return L @ k


def vector_features(
    r: Featurized, kind: str = "polar", real: bool = True, points=None, idealize: bool = True
) -> np.ndarray:
    """Equivariant per-atom features of a featurized crystal: (n_atoms, n_basis_vec, 3) Cartesian.

    r: a ``Featurized`` (``basisdb.featurize``).  kind: 'polar' (forces, displacements,
    polarisation) or 'axial' (magnetic moments without time reversal, rotations).
    real: the real basis (float64) or the complex one (complex128).
    points: None (the atoms, ``r.positions``) or input-frame fractional coordinates (N, 3).
    idealize: Cartesian components with ``ideal_lattice(r.lattice)`` (default; exactly symmetric,
    so equivalent atoms' vectors are exact Cartesian images of each other) or with ``r.lattice``
    as it is.  Column j of the result is the field ``r.basis.vector(kind)`` column j.
    """
    vb = r.basis.vector(kind)
    lat = np.asarray(r.lattice, dtype=np.float64)
    if idealize:
        lat = ideal_lattice(lat, r.basis.rotations)
    x = r.positions if points is None else r.to_setting(points)
    out = vb.evaluate(np.asarray(x, dtype=np.float64).reshape(-1, 3), real=bool(real), lattice=lat)
    if kind == "axial" and np.linalg.det(lat) < 0:
        out = -out
    out = np.ascontiguousarray(out)
    out.setflags(write=False)
    return out
