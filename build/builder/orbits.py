"""The dual frequency graph of one space group and its exact orbit solution.

Nodes are the frequencies of the box ``|h|,|k|,|l| <= K`` in box-index order;
for every generator g = (R, t) there is a directed edge ``k -> R^T k`` carrying
the exact phase ``k.t`` (numerator over ``DEN``).  Orbits are the connected
components (networkx); phases are propagated along a BFS spanning tree rooted at
the orbit's canonical representative, and every edge is then re-checked: an
orbit with an inconsistent cycle (equivalently, a stabiliser element with a
non-integer ``k.t``) is extinct.  Orbits that leave the box are dropped, so the
kept frequencies form a set closed under the group.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from basisdb._format import DEN, box_frequencies, box_index, canonical_rank
from basisdb._ops import group_generators


@dataclass(frozen=True)
class OrbitSolution:
    """Exact basis of one group at cut-off ``kmax`` (see docs/FORMAT.md).

    frequencies: (n, 3) int8, non-extinct frequencies, orbit by orbit in canonical order.
    orbit_ptr:   (n_orbits + 1,) int32, orbit j is rows ``orbit_ptr[j]:orbit_ptr[j+1]``.
    phases:      (n,) uint8, numerators p with coefficient ``exp(2 pi i p / DEN)``.
    extinct:     (m, 3) int8, extinct frequencies of orbits wholly inside the box.
    """

    kmax: int
    frequencies: np.ndarray
    orbit_ptr: np.ndarray
    phases: np.ndarray
    extinct: np.ndarray


def solve_orbits(
    rotations: np.ndarray,
    translations: np.ndarray,
    kmax: int,
    *,
    phase_offsets: np.ndarray | None = None,
    generators: list[int] | None = None,
) -> OrbitSolution:
    """Solve the dual frequency graph of the group ``(rotations, translations)`` at cut-off ``kmax``.

    ``rotations``: (n, 3, 3) ints; ``translations``: (n, 3) ints over ``DEN``.  The
    operations must already form a group (see ``basisdb._ops.check_group``).
    ``phase_offsets`` (n,) ints over ``DEN``, optional: a constant added to the phase of
    every edge of an operation, e.g. ``DEN // 2`` for the primed (time-reversing)
    operations of a magnetic group acting on a time-odd field (basisdb.builder.magnetic);
    ``generators`` then names a generating set of the operations *with* that extra label.
    """
    freqs = box_frequencies(kmax)  # (nbox, 3) int64, box-index order
    nbox = len(freqs)
    gens = group_generators(rotations, translations) if generators is None else list(generators)
    offsets = (
        np.zeros(len(rotations), dtype=np.int64)
        if phase_offsets is None
        else np.asarray(phase_offsets, dtype=np.int64)
    )

    graph = nx.Graph()
    graph.add_nodes_from(range(nbox))
    leaky = np.zeros(nbox, dtype=bool)
    images, edge_phases = [], []
    for g in gens:
        img = freqs @ rotations[g]  # row k^T R == (R^T k)^T
        inside = np.all(np.abs(img) <= kmax, axis=1)
        dst = np.full(nbox, -1, dtype=np.int64)
        dst[inside] = box_index(img[inside], kmax)
        leaky |= ~inside
        src = np.flatnonzero(inside)
        graph.add_edges_from(zip(src.tolist(), dst[inside].tolist()))
        images.append(dst)
        edge_phases.append((freqs @ translations[g] + offsets[g]) % DEN)

    rank = canonical_rank(kmax)
    phase = np.zeros(nbox, dtype=np.int64)
    comp_of = np.full(nbox, -1, dtype=np.int64)
    orbits: list[np.ndarray] = []
    for comp in nx.connected_components(graph):
        nodes = np.fromiter(comp, dtype=np.int64, count=len(comp))
        if leaky[nodes].any():
            continue
        root = int(nodes[np.argmin(rank[nodes])])
        phase[root] = 0
        for u, v in nx.bfs_edges(graph, root):
            phase[v] = _edge_phase(u, v, phase, images, edge_phases)
        comp_of[nodes] = len(orbits)
        orbits.append(nodes[np.argsort(rank[nodes])])

    extinct_orbit = np.zeros(len(orbits), dtype=bool)
    for dst, ph in zip(images, edge_phases):
        src = np.flatnonzero((dst >= 0) & (comp_of >= 0))
        bad = (phase[src] + ph[src] - phase[dst[src]]) % DEN != 0
        extinct_orbit[comp_of[src[bad]]] = True

    reps = np.array([rank[o[0]] for o in orbits], dtype=np.int64)
    order = np.argsort(reps)
    kept = [orbits[j] for j in order if not extinct_orbit[j]]
    dead = [orbits[j] for j in order if extinct_orbit[j]]
    members = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
    dead_nodes = np.concatenate(dead) if dead else np.zeros(0, dtype=np.int64)
    dead_nodes = dead_nodes[np.argsort(rank[dead_nodes])]
    ptr = np.zeros(len(kept) + 1, dtype=np.int32)
    ptr[1:] = np.cumsum([len(o) for o in kept])
    return OrbitSolution(
        kmax=kmax,
        frequencies=freqs[members].astype(np.int8),
        orbit_ptr=ptr,
        phases=phase[members].astype(np.uint8),
        extinct=freqs[dead_nodes].astype(np.int8).reshape(-1, 3),
    )


def _edge_phase(u: int, v: int, phase: np.ndarray, images: list, edge_phases: list) -> int:
    """Phase of ``v`` given the phase of ``u`` along one generator edge (either direction)."""
    for dst, ph in zip(images, edge_phases):
        if dst[u] == v:  # edge u -> v: p_v = p_u + u.t
            return int((phase[u] + ph[u]) % DEN)
        if dst[v] == u:  # edge v -> u: p_u = p_v + v.t
            return int((phase[u] - ph[v]) % DEN)
    raise AssertionError(f"no generator edge between {u} and {v}")
