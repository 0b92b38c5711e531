"""The symmetry-adapted basis of one setting: exact data plus numeric views."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ._boxindex import box_index, canonical_rank
from ._evaluate import EvaluationPlan, evaluate_plan

__all__ = ["Setting", "PlaneGroup", "Basis"]

if typing.TYPE_CHECKING:  # scipy.sparse is imported on first use: `import basisdb` stays light
    import scipy.sparse as sp

    from ._vector import VectorBasis


def _sparse():
    import scipy.sparse

    return scipy.sparse


@dataclass(frozen=True)
class Setting:
    """Metadata of one spglib Hall setting (one row of ``Database.settings()``).

    Fields:
        hall_number: 1..530, spglib / International Tables order (the key).
        number: space-group number 1..230.
        hall_symbol, hm_short, hm_full, hm_extended: the Hall symbol and the Hermann-Mauguin symbols,
          short ('P2_1/c'), full ('P 1 2_1/c 1') and setting-specific (with a ':1'/':2'/':H'/':R'
          qualifier, e.g. 'F d -3 m:2').
        choice: spglib's setting choice ('', 'b1', '2', 'H', ...).
        crystal_system, point_group: names ('cubic', 'm-3m').
        order: number of operations modulo lattice translations (centring included).
        n_orbits, n_frequencies, n_extinct: sizes at the artifact's kmax.
        is_default: spglib's standard setting for this number (what ``get(number)`` returns).
    """

    hall_number: int
    number: int
    hall_symbol: str
    hm_short: str
    hm_full: str
    hm_extended: str
    choice: str
    crystal_system: str
    point_group: str
    order: int
    n_orbits: int
    n_frequencies: int
    n_extinct: int
    is_default: bool


@dataclass(frozen=True)
class PlaneGroup:
    """Metadata of one of the 17 plane (wallpaper) groups (one row of ``Database.plane_groups()``).

    Fields:
        number: 1..17, International Tables Vol. A order (the key; ``db.get(plane=number)``).
        hm_short, hm_full: Hermann-Mauguin symbols ('p4g', 'p4gm').
        lattice: 'oblique', 'rectangular', 'square' or 'hexagonal'.
        point_group: '4mm', ...
        order: number of operations modulo lattice translations (centring included).
        n_orbits, n_frequencies, n_extinct: sizes at the artifact's kmax.

    The operations are those of ITA's standard description (cm and cmm c-centred).
    """

    number: int
    hm_short: str
    hm_full: str
    lattice: str
    point_group: str
    order: int
    n_orbits: int
    n_frequencies: int
    n_extinct: int

    @property
    def hall_number(self) -> int:
        """Always 0, since a plane group has no spglib Hall setting (as for ``basis_from_operations``)."""
        return 0

    @property
    def hm_extended(self) -> str:
        """The full symbol (there is one setting per plane group)."""
        return self.hm_full


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def readonly_copy(a) -> np.ndarray:
    """A read-only copy of ``a``: what result objects hand out, so callers cannot change them."""
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _concat(parts: list[np.ndarray], shape, dtype) -> np.ndarray:
    """``np.concatenate(parts)``, or an empty array of ``shape`` and ``dtype`` when there are no parts."""
    return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)


@dataclass(frozen=True, eq=False)
class Basis:
    """Exact symmetry-adapted Fourier basis of one setting at cut-off ``kmax``.

    Space groups have d = 3; plane groups (``setting`` a PlaneGroup) have d = 2,
    frequencies (h, k), 2 x 2 rotations and coordinates (x, y).  Everything
    below holds in both, with (n, 3) read as (n, d).

    Basis function j (one per orbit O_j of non-extinct frequencies)::

        phi_j(x) = |O_j|**-0.5 * sum_{k in O_j} exp(2 pi i phases[k] / denominator) exp(2 pi i k.x)

    Arrays: the fields below and the cached properties (``orbit_sizes``, ``box_indices``,
    ``coefficients``, ...) are read-only views, shared with the ``Database``'s cache so
    that no caller can corrupt it; ``orbit(j)`` returns read-only slices of them.  Copy
    before writing (``np.array(b.frequencies)``); ``torch.from_numpy`` warns on any
    read-only array, so hand them to torch with ``torch.tensor(b.frequencies)`` or use
    ``basisdb.torch.to_torch(b)``, which copies.  What a method computes (``evaluate``,
    ``operations``, the sparse matrices) is a new, writeable array.

    Fields:
      setting:      Setting metadata.
      kmax:         cut-off K; every orbit lies wholly in the box ``|h|, |k|, |l| <= K``.
      denominator:  phase denominator (``basisdb.DEN`` = 24).
      frequencies:  (n, 3) int64, non-extinct frequencies in canonical orbit order.
      orbit_ptr:    (n_orbits + 1,) int64; orbit j is rows orbit_ptr[j]:orbit_ptr[j+1].
      phases:       (n,) int64 exact numerators in [0, denominator); first member of an orbit has 0.
      extinct:      (m, 3) int64, extinct frequencies (systematic absences) inside the box.
      rotations:    (order, 3, 3) int64, R of each operation x -> R x + t.
      translations: (order, 3) int64 numerators of t over ``denominator``.
    """

    setting: Setting | PlaneGroup
    kmax: int
    denominator: int
    frequencies: np.ndarray
    orbit_ptr: np.ndarray
    phases: np.ndarray
    extinct: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("frequencies", "orbit_ptr", "phases", "extinct", "rotations", "translations"):
            object.__setattr__(self, name, _readonly(np.asarray(getattr(self, name), dtype=np.int64)))

    def __repr__(self) -> str:
        s = self.setting
        if self.is_plane:
            return (
                f"Basis(plane={s.number}, symbol={s.hm_full!r}, kmax={self.kmax}, n_basis={self.n_basis}, "
                f"n_frequencies={len(self.frequencies)}, n_extinct={len(self.extinct)})"
            )
        return (
            f"Basis(hall_number={s.hall_number}, number={s.number}, symbol={s.hm_extended!r}, "
            f"kmax={self.kmax}, n_basis={self.n_basis}, n_frequencies={len(self.frequencies)}, "
            f"n_extinct={len(self.extinct)})"
        )

    # ------------------------------------------------------------------ sizes
    @property
    def hall_number(self) -> int:
        return self.setting.hall_number

    @property
    def number(self) -> int:
        return self.setting.number

    @property
    def dim(self) -> int:
        """The dimension d, 3 for space groups and 2 for plane groups."""
        return self.rotations.shape[-1]

    @property
    def is_plane(self) -> bool:
        """True for a plane group (``setting`` is a PlaneGroup)."""
        return isinstance(self.setting, PlaneGroup)

    @property
    def n_orbits(self) -> int:
        return len(self.orbit_ptr) - 1

    @property
    def n_basis(self) -> int:
        """Number of basis functions (the same for the complex and the real basis)."""
        return self.n_orbits

    @property
    def n_box(self) -> int:
        """Size of the common box index space, (2 kmax + 1)**dim."""
        return (2 * self.kmax + 1) ** self.dim

    @cached_property
    def orbit_sizes(self) -> np.ndarray:
        """(n_orbits,) int64 number of frequencies in each orbit."""
        return _readonly(np.diff(self.orbit_ptr))

    @cached_property
    def orbit_of(self) -> np.ndarray:
        """(n,) int64 orbit index of each row of ``frequencies``."""
        return _readonly(np.repeat(np.arange(self.n_orbits), self.orbit_sizes))

    @cached_property
    def box_indices(self) -> np.ndarray:
        """(n,) int64 box index of each frequency (see docs/FORMAT.md)."""
        return _readonly(box_index(self.frequencies, self.kmax))

    @cached_property
    def conjugate(self) -> np.ndarray:
        """(n_orbits,) int64: index of the orbit -O_j (== j when the orbit is self-conjugate)."""
        lookup = np.full(self.n_box, -1, dtype=np.int64)
        lookup[self.box_indices] = self.orbit_of
        reps = self.frequencies[self.orbit_ptr[:-1]]
        conj = lookup[box_index(-reps, self.kmax)]
        if np.any(conj < 0):
            raise AssertionError("a conjugate orbit is missing: damaged data")
        return _readonly(conj)

    @cached_property
    def coefficients(self) -> np.ndarray:
        """(n,) complex128 Fourier coefficient of each frequency in its orbit's function."""
        size = self.orbit_sizes[self.orbit_of].astype(float)
        return _readonly(np.exp(2j * np.pi * self.phases / self.denominator) / np.sqrt(size))

    def orbit(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Frequencies ``(|O|, 3)`` and exact phase numerators ``(|O|,)`` of orbit ``j``."""
        if not -self.n_orbits <= j < self.n_orbits:
            raise IndexError(f"orbit index {j} out of range for {self.n_orbits} orbits")
        j %= self.n_orbits
        sl = slice(self.orbit_ptr[j], self.orbit_ptr[j + 1])
        return self.frequencies[sl], self.phases[sl]

    # ----------------------------------------------------------- real basis
    @cached_property
    def real_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Which complex function each real column comes from.

        Returns ``(orbit, kind)``, both (n_basis,) int64.  kind 0: the real
        function ``exp(i theta) phi_j`` of a self-conjugate orbit (-O = O);
        kind 1 / 2: ``sqrt(2) Re phi_j`` / ``sqrt(2) Im phi_j`` of the first
        orbit of a pair O != -O (the pair's second orbit gives no column).
        Columns follow the canonical orbit order.
        """
        orbit, kind = [], []
        for j, c in enumerate(self.conjugate):
            if c == j:
                orbit.append(j)
                kind.append(0)
            elif j < c:
                orbit += [j, j]
                kind += [1, 2]
        return _readonly(np.array(orbit, dtype=np.int64)), _readonly(np.array(kind, dtype=np.int64))

    @cached_property
    def real_phase_shift(self) -> np.ndarray:
        """(n_orbits,) int64 numerator m over ``2 * denominator``: exp(-2 pi i m/(2 den)) phi_j is real.

        For a self-conjugate orbit with representative k0, m = phases[-k0]
        (0 for other orbits).  Exact: the real function's coefficient at k is
        ``exp(2 pi i (2 phases[k] - m) / (2 den)) / sqrt(|O|)``.
        """
        m = np.zeros(self.n_orbits, dtype=np.int64)
        lookup = np.full(self.n_box, -1, dtype=np.int64)
        lookup[self.box_indices] = np.arange(len(self.frequencies))
        selfc = np.flatnonzero(self.conjugate == np.arange(self.n_orbits))
        reps = self.frequencies[self.orbit_ptr[selfc]]
        m[selfc] = self.phases[lookup[box_index(-reps, self.kmax)]]
        return _readonly(m)

    def _real_coefficients(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """COO triplets (box row, column, value) of the real basis."""
        orbit, kind = self.real_layout
        rows, cols, vals = [], [], []
        den2 = 2 * self.denominator
        for col, (j, t) in enumerate(zip(orbit, kind)):
            sl = slice(self.orbit_ptr[j], self.orbit_ptr[j + 1])
            f = self.frequencies[sl]
            size = len(f)
            if t == 0:
                num = 2 * self.phases[sl] - self.real_phase_shift[j]
                rows.append(box_index(f, self.kmax))
                vals.append(np.exp(2j * np.pi * num / den2) / np.sqrt(size))
                cols.append(np.full(size, col))
            else:
                c = self.coefficients[sl] * np.sqrt(2.0)
                c = c if t == 1 else -1j * c
                rows += [box_index(f, self.kmax), box_index(-f, self.kmax)]
                # sqrt(2) Re phi: (c, conj c)/2 ; sqrt(2) Im phi: (c/i, -conj(c)/i)/2 == (-ic, conj(-ic))/2
                vals += [c / 2, np.conj(c) / 2]
                cols += [np.full(size, col), np.full(size, col)]
        return _concat(rows, 0, np.int64), _concat(cols, 0, np.int64), _concat(vals, 0, np.complex128)

    # ------------------------------------------------------- sparse matrices
    def complex_basis(self) -> sp.csc_array:
        """Orthonormal complex basis B: (n_box, n_basis) complex128 CSC; column j = phi_j's coefficients."""
        return _sparse().csc_array(
            (self.coefficients, (self.box_indices, self.orbit_of)), shape=(self.n_box, self.n_basis)
        )

    def real_basis(self) -> sp.csc_array:
        """Orthonormal real basis: (n_box, n_basis) complex128 CSC of Fourier coefficients.

        Column c holds the coefficients of a real-valued function (so the
        column at -k is the conjugate of the column at k); see ``real_layout``.
        """
        rows, cols, vals = self._real_coefficients()
        return _sparse().csc_array((vals, (rows, cols)), shape=(self.n_box, self.n_basis))

    def projector(self) -> sp.csr_array:
        """Routing matrix P_G = B B^H: (n_box, n_box) complex128 CSR, Hermitian and idempotent.

        Block-diagonal by orbit.  With e(x) the plane-wave vector of the box
        (e_k(x) = exp(2 pi i k.x)), the G-invariant encoding of a point in the
        index space every setting shares is ``P_G.T @ e(x) = conj(B) @ phi(x)``
        (equivalently P_G applied to conj(e(x)), then conjugated); note that
        P_G @ e(x) itself is *not* invariant unless the group is centrosymmetric.
        """
        b = self.complex_basis()
        return _sparse().csr_array(b @ b.conj().T)

    # ------------------------------------------------------------ evaluation
    def _plan(self, real: bool) -> EvaluationPlan:
        key = ("plan", real)
        if key not in self._cache:
            plan = self._real_plan() if real else self._complex_plan()
            if self.dim < 3:  # the evaluator is 3-D: embed (h, k) as (h, k, 0), x as (x, y, 0)
                plan = replace(plan, freqs=np.pad(plan.freqs, ((0, 0), (0, 3 - self.dim))))
            self._cache[key] = plan
        return self._cache[key]

    def _complex_plan(self) -> EvaluationPlan:
        n = self.n_orbits
        return EvaluationPlan(
            freqs=self.frequencies,
            weights=self.coefficients,
            acc_ptr=self.orbit_ptr,
            col_acc=np.arange(n),
            col_part=np.full(n, 2, dtype=np.int8),
            col_scale=np.ones(n),
            kmax=self.kmax,
        )

    def _real_plan(self) -> EvaluationPlan:
        """Sum over half of each self-conjugate orbit (k and -k give a cosine) and over
        the first orbit of each pair (its real and imaginary parts are two columns)."""
        orbit, kind = self.real_layout
        rank = canonical_rank(self.kmax, self.dim)
        freqs, weights, col_acc, col_part, col_scale = [], [], [], [], []
        sizes: list[int] = []
        den2 = 2 * self.denominator
        for j, t in zip(orbit, kind):
            if t == 2:  # shares the accumulator of the preceding kind-1 column
                col_acc.append(len(sizes) - 1)
                col_part.append(1)
                col_scale.append(np.sqrt(2.0))
                continue
            sl = slice(self.orbit_ptr[j], self.orbit_ptr[j + 1])
            f = self.frequencies[sl]
            if t == 0:
                bi, bneg = box_index(f, self.kmax), box_index(-f, self.kmax)
                half = rank[bi] <= rank[bneg]  # k itself when k == -k (only k = 0)
                num = 2 * self.phases[sl][half] - self.real_phase_shift[j]
                w = np.exp(2j * np.pi * num / den2) / np.sqrt(len(f))
                w = np.where(bi[half] == bneg[half], w, 2 * w)
                freqs.append(f[half])
                weights.append(w)
                sizes.append(int(half.sum()))
                col_scale.append(1.0)
            else:
                freqs.append(f)
                weights.append(self.coefficients[sl])
                sizes.append(len(f))
                col_scale.append(np.sqrt(2.0))
            col_acc.append(len(sizes) - 1)
            col_part.append(0)
        ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(sizes)
        return EvaluationPlan(
            freqs=_concat(freqs, (0, self.dim), np.int64),
            weights=_concat(weights, (0,), np.complex128),
            acc_ptr=ptr,
            col_acc=np.array(col_acc, dtype=np.int64),
            col_part=np.array(col_part, dtype=np.int8),
            col_scale=np.array(col_scale, dtype=np.float64),
            kmax=self.kmax,
        )

    def evaluate(self, x, real: bool = True, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
        """Invariant features at fractional coordinates ``x``.

        x: (N, d) or (d,) real array (d = ``dim``: 3, or 2 for a plane group),
        coordinates in *this setting* (see docs).
        real=True: (N, n_basis) real functions (``real_layout`` order);
        real=False: (N, n_basis) complex phi_j.  ``dtype``: the precision, float64 or
        float32 (a numpy dtype or its name, ``"float32"``); with real=False the result is
        complex128 or complex64, and those names are accepted too.  ``out``: optional
        preallocated C-contiguous result array to fill (for repeated large evaluations).
        """
        arr = np.asarray(x)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
        ):
            raise TypeError(f"coordinates must be a real numeric array, got dtype {arr.dtype}")
        single = arr.ndim == 1
        arr = np.atleast_2d(arr).astype(np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"coordinates must have shape (N, {self.dim}), got {np.shape(x)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("coordinates contain NaN or inf")
        dtype = np.dtype(dtype)
        if not real:  # the complex result's own dtype names the same precision
            dtype = {
                np.dtype(np.complex64): np.dtype(np.float32),
                np.dtype(np.complex128): np.dtype(np.float64),
            }.get(dtype, dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        if self.dim < 3:
            arr = np.pad(arr, ((0, 0), (0, 3 - self.dim)))
        result = evaluate_plan(self._plan(bool(real)), arr, dtype=dtype, out=out)
        return result[0] if single else result

    # ------------------------------------------------------------ restriction
    def restrict(self, kmax: int) -> Basis:
        """The basis at a smaller cut-off ``kmax`` <= self.kmax (orbits wholly inside the smaller box).

        Equal to what the builder produces at that cut-off, in the same canonical order.
        """
        if isinstance(kmax, bool) or not isinstance(kmax, (int, np.integer)):
            raise ValueError(f"kmax must be an integer, got {kmax!r}")
        if not 1 <= kmax <= self.kmax:
            raise ValueError(f"kmax must be in 1..{self.kmax} to restrict this basis, got {kmax}")
        if kmax == self.kmax:
            return self
        shell = np.abs(self.frequencies).max(axis=1)
        orbit_shell = np.maximum.reduceat(shell, self.orbit_ptr[:-1]) if self.n_orbits else shell
        keep = orbit_shell <= kmax
        rows = np.repeat(keep, self.orbit_sizes)
        sizes = self.orbit_sizes[keep]
        ptr = np.zeros(len(sizes) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum(sizes)
        # an extinct frequency stays extinct only if its whole orbit fits in the smaller box
        ext = self.extinct
        if len(ext):
            images = np.einsum(
                "mi,gij->mgj", ext, np.unique(self.rotations, axis=0)
            )  # magnetic groups repeat R
            ext = ext[np.abs(images).max(axis=(1, 2)) <= kmax]
        return Basis(
            setting=self.setting,
            kmax=int(kmax),
            denominator=self.denominator,
            frequencies=self.frequencies[rows],
            orbit_ptr=ptr,
            phases=self.phases[rows],
            extinct=ext,
            rotations=self.rotations,
            translations=self.translations,
        )

    # ------------------------------------------------------------ frameworks
    def to_torch(self, dtype=None, device=None):
        """Copy into PyTorch tensors with differentiable evaluation: ``basisdb.torch.to_torch``."""
        from .torch import to_torch  # torch is imported only here

        return to_torch(self, dtype=dtype, device=device)

    def to_jax(self, dtype=None, jit: bool = True):
        """Copy into JAX arrays with differentiable evaluation: ``basisdb.jax.to_jax``."""
        from .jax import to_jax  # jax is imported only here

        return to_jax(self, dtype=dtype, jit=jit)

    # ------------------------------------------------------------ vector fields
    def vector(self, kind: str = "polar") -> VectorBasis:
        """Equivariant vector-field basis: ``kind`` 'polar' (f(gx) = R f(x)) or 'axial' (det R R f(x)).

        Contravariant components along a, b, c; derived exactly from this basis's operations
        and orbits (scalar-extinct orbits included), computed once and cached
        (``basisdb._vector``, docs/CONVENTIONS.md section 13).
        """
        from ._vector import KINDS, vector_basis

        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        key = ("vector", kind)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache.setdefault(key, vector_basis(self, kind))
        return hit

    # ------------------------------------------------------------ operations
    def operations(self) -> tuple[np.ndarray, np.ndarray]:
        """(rotations (order,3,3) int64, fractional translations (order,3) float64): new, writeable arrays."""
        return self.rotations.copy(), self.translations / self.denominator
