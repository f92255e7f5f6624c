"""Tree-level Feynman diagrams by enumeration of Wick contractions (physics.md §6).

With P[f] ∝ exp(−S), S = S_GP + Σ_v g_v V_v[f] and couplings written without 1/k! (physics.md §3),
the connected n-point function at order V in the couplings is

    G_n,c ⊃ (−1)^V / Π_types (multiplicity!) · Σ_{Wick contractions} Π g_v ∫ (propagators),

where a contraction pairs every external field f(x_a) and every vertex leg. A *vertex type* is a
list of *sites* (integration points) with a number of legs each: the local f^k vertex is one site
with k legs, the bilocal ∫∫ f(y)² f(z)² is two sites with two legs, the general nonlocal quartic
λ(y1..y4) f(y1)..f(y4) is four sites with one leg.

Contractions are enumerated explicitly (no hand-written per-case constants), restricted to
connected tree diagrams: no external–external pair (disconnected), no contraction within a vertex
(a loop / tadpole: those renormalise the 2-pt function, which is exactly K at every width, so they
are cancelled by counterterms and dropped), and the vertices joined by exactly V − 1 internal lines
into one connected tree. Contractions that give the same *labelled* diagram (the same site for
every external point and the same internal lines, up to relabelling identical vertices) are grouped;
the group size is the contraction count and the diagram coefficient is (−1)^V count / Π mult!.

Checks against physics.md §6 (tests/test_diagrams.py): 4-pt λ f⁴ → −24; 6-pt κ f⁶ → −720;
λ² exchange → +576 per split {abc|def} (10 splits); bilocal → −8 per channel (ab|cd), from two
orientations of −4; the x-dependent local quartic → −24.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["VertexType", "Diagram", "enumerate_diagrams", "tree_diagrams", "LOCAL4", "LOCAL6", "BILOCAL4", "NONLOCAL4"]


@dataclass(frozen=True)
class VertexType:
    """An interaction vertex: `name` and the number of legs at each of its integration sites.

    **Fields:**

    - `name`: a label; vertices with the same name are identical (interchangeable) instances.
    - `sites`: legs per site, e.g. `(4,)` local f⁴, `(2, 2)` bilocal, `(1, 1, 1, 1)` nonlocal.
    """

    name: str
    sites: tuple[int, ...]

    def __post_init__(self):
        if not self.sites or any((not isinstance(k, int)) or k < 1 for k in self.sites):
            raise ValueError(f"`sites` must be a non-empty tuple of positive ints, got {self.sites!r}.")

    @property
    def n_legs(self) -> int:
        return sum(self.sites)


LOCAL4 = VertexType("local4", (4,))
LOCAL6 = VertexType("local6", (6,))
BILOCAL4 = VertexType("bilocal4", (2, 2))
NONLOCAL4 = VertexType("nonlocal4", (1, 1, 1, 1))


@dataclass(frozen=True)
class Diagram:
    """One labelled tree diagram.

    **Fields:**

    - `vertices`: the vertex types of the instances 0..V−1.
    - `externals`: for external point a = 0..n−1, the `(instance, site)` it attaches to.
    - `lines`: internal lines, pairs `((instance, site), (instance, site))`, sorted.
    - `count`: the number of Wick contractions that produce this diagram.
    - `coefficient`: (−1)^V count / Π_types mult!, the factor multiplying Π g_v × integral.
    """

    vertices: tuple[VertexType, ...]
    externals: tuple[tuple[int, int], ...]
    lines: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    count: int
    coefficient: Fraction


def _perfect_matchings(items):
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for i in range(len(rest)):
        for sub in _perfect_matchings(rest[:i] + rest[i + 1 :]):
            yield ((first, rest[i]),) + sub


def _is_connected_tree(n_vertices, vertex_edges):
    if len(vertex_edges) != n_vertices - 1:
        return False
    parent = list(range(n_vertices))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in vertex_edges:
        ra, rb = find(a), find(b)
        if ra == rb:
            return False
        parent[ra] = rb
    return len({find(v) for v in range(n_vertices)}) == 1


def _canonical(vertices, externals, lines):
    """Smallest key over relabellings of identical vertex instances."""
    groups = {}
    for i, v in enumerate(vertices):
        groups.setdefault(v, []).append(i)
    best = None
    for perms in itertools.product(*[itertools.permutations(ix) for ix in groups.values()]):
        relabel = {}
        for ix, p in zip(groups.values(), perms):
            for old, new in zip(ix, p):
                relabel[old] = new
        ext = tuple((relabel[v], s) for v, s in externals)
        ln = tuple(sorted(tuple(sorted(((relabel[a[0]], a[1]), (relabel[b[0]], b[1])))) for a, b in lines))
        key = (ext, ln)
        if best is None or key < best:
            best = key
    return best


@functools.cache
def enumerate_diagrams(n_external: int, vertices: tuple[VertexType, ...]) -> tuple[Diagram, ...]:
    """All connected tree diagrams of `n_external` points with exactly the given vertices.

    Enumerates every Wick contraction of the external fields f(x_1..x_n) with the legs of the
    vertex instances (physics.md §6), keeps the connected trees, and groups them into labelled
    diagrams with their contraction counts.

    **Arguments:**

    - `n_external`: the number n of external points.
    - `vertices`: the vertex instances (a tuple of `VertexType`, repeats allowed), sorted or not.

    **Returns:** a tuple of `Diagram` (empty if no connected tree exists), in a canonical order.
    """
    if n_external < 1:
        raise ValueError(f"`n_external` must be >= 1, got {n_external!r}.")
    vertices = tuple(sorted(vertices, key=lambda v: (v.name, v.sites)))
    n_v = len(vertices)
    legs = [(i, s, leg) for i, v in enumerate(vertices) for s, k in enumerate(v.sites) for leg in range(k)]
    n_legs = len(legs)
    if n_legs < n_external or (n_legs - n_external) % 2:
        return ()
    if (n_legs - n_external) // 2 != n_v - 1:
        return ()  # a tree with V vertices has V − 1 internal lines
    counts: Counter = Counter()
    for chosen in itertools.permutations(range(n_legs), n_external):
        rest = [i for i in range(n_legs) if i not in chosen]
        for matching in _perfect_matchings(rest):
            vedges = []
            ok = True
            for a, b in matching:
                if legs[a][0] == legs[b][0]:
                    ok = False  # contraction within one vertex: a loop
                    break
                vedges.append((legs[a][0], legs[b][0]))
            if not ok or not _is_connected_tree(n_v, vedges):
                continue
            externals = tuple((legs[c][0], legs[c][1]) for c in chosen)
            lines = tuple((legs[a][:2], legs[b][:2]) for a, b in matching)
            counts[_canonical(vertices, externals, lines)] += 1
    mult = Counter(vertices)
    denom = 1
    for m in mult.values():
        for j in range(2, m + 1):
            denom *= j
    sign = (-1) ** n_v
    out = []
    for (ext, ln), c in sorted(counts.items()):
        out.append(Diagram(vertices, ext, ln, c, Fraction(sign * c, denom)))
    return tuple(out)


def tree_diagrams(
    n_external: int, vertex_types: tuple[VertexType, ...], *, max_order: int = 2
) -> dict[tuple[VertexType, ...], tuple[Diagram, ...]]:
    """All connected tree diagrams of the n-point function up to `max_order` vertices.

    **Arguments:**

    - `n_external`: the number n of external points.
    - `vertex_types`: the distinct vertex types of the action.
    - `max_order`: the largest number of vertices (order in the couplings).

    **Returns:** a dict mapping each multiset of vertices (sorted tuple) with at least one
    diagram to its diagrams.
    """
    out = {}
    types = tuple(sorted(set(vertex_types), key=lambda v: (v.name, v.sites)))
    for order in range(1, max_order + 1):
        for combo in itertools.combinations_with_replacement(types, order):
            diags = enumerate_diagrams(n_external, combo)
            if diags:
                out[combo] = diags
    return out
