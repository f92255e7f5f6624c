"""Diagram engine: contraction counts by enumeration against physics.md §6, and against an
independent brute-force Wick expansion."""

import itertools
from fractions import Fraction

import numpy as np
import pytest

from rgflow._diagrams import (
    BILOCAL4,
    LOCAL4,
    LOCAL6,
    NONLOCAL4,
    VertexType,
    enumerate_diagrams,
    tree_diagrams,
)
from rgflow._tuples import pairings


def test_local_quartic_4pt():
    (d,) = enumerate_diagrams(4, (LOCAL4,))
    assert d.count == 24 and d.coefficient == -24  # G4_c = −24 λ I4
    assert d.externals == ((0, 0),) * 4 and d.lines == ()


def test_local_sextic_6pt():
    (d,) = enumerate_diagrams(6, (LOCAL6,))
    assert d.count == 720 and d.coefficient == -720  # −720 κ I6


def test_quartic_exchange_6pt():
    diags = enumerate_diagrams(6, (LOCAL4, LOCAL4))
    assert len(diags) == 10  # the 10 splits {abc|def}
    splits = set()
    for d in diags:
        assert d.count == 1152 and d.coefficient == 576  # +576 λ² per split (1/2! included)
        assert len(d.lines) == 1
        on0 = frozenset(a for a, (v, _) in enumerate(d.externals) if v == 0)
        assert len(on0) == 3
        splits.add(frozenset({on0, frozenset(range(6)) - on0}))
    assert len(splits) == 10


def test_distinct_quartics_exchange():
    """Two different quartic couplings: each split appears with both orientations, +576 each
    (the cross term of ½(S1 + S2)²)."""
    diags = enumerate_diagrams(6, (LOCAL4, VertexType("other4", (4,))))
    assert len(diags) == 20 and all(d.coefficient == 576 for d in diags)


def test_bilocal_channels():
    diags = enumerate_diagrams(4, (BILOCAL4,))
    assert len(diags) == 6 and all(d.coefficient == -4 for d in diags)
    per_channel = {}
    for d in diags:
        site0 = frozenset(a for a, (_, s) in enumerate(d.externals) if s == 0)
        ch = frozenset({site0, frozenset(range(4)) - site0})
        per_channel[ch] = per_channel.get(ch, 0) + d.coefficient
    assert len(per_channel) == 3 and all(v == -8 for v in per_channel.values())  # −8 λ_NL per channel


def test_nonlocal_permutations():
    diags = enumerate_diagrams(4, (NONLOCAL4,))
    assert len(diags) == 24 and all(d.coefficient == -1 for d in diags)
    perms = {tuple(s for _, s in d.externals) for d in diags}
    assert perms == set(itertools.permutations(range(4)))


def test_no_tree_diagrams():
    assert enumerate_diagrams(4, (LOCAL6,)) == ()  # would need a loop
    assert enumerate_diagrams(6, (LOCAL4,)) == ()
    assert enumerate_diagrams(4, (LOCAL4, LOCAL4)) == ()  # one-loop, dropped
    td = tree_diagrams(6, (LOCAL4, LOCAL6), max_order=2)
    assert set(td) == {(LOCAL4, LOCAL4), (LOCAL6,)}


def _brute_force(n_ext, legs_per_vertex, prop):
    """Independent check: the full Wick expansion ⟨f_1..f_n Π_v f(y_v)^k_v⟩ with a numeric
    symmetric 'propagator' on points, keeping pairings whose graph is connected and loop-free."""
    labels = list(range(n_ext))
    for v, k in enumerate(legs_per_vertex):
        labels += [n_ext + v] * k
    total = 0.0
    n_v = len(legs_per_vertex)
    for pairing in pairings(len(labels)):
        ends = [(labels[a], labels[b]) for a, b in pairing]
        if any(a < n_ext and b < n_ext for a, b in ends) or any(a == b for a, b in ends):
            continue
        internal = [(a, b) for a, b in ends if a >= n_ext and b >= n_ext]
        if len(internal) != n_v - 1:
            continue
        # connectivity of vertices through internal lines
        comp = {v: v for v in range(n_ext, n_ext + n_v)}
        for a, b in internal:
            ra, rb = comp[a], comp[b]
            for key in comp:
                if comp[key] == rb:
                    comp[key] = ra
        if len(set(comp.values())) != 1:
            continue
        total += np.prod([prop[a, b] for a, b in ends])
    return total


@pytest.mark.parametrize(
    "n_ext, vertices", [(4, (LOCAL4,)), (6, (LOCAL6,)), (6, (LOCAL4, LOCAL4))]
)
def test_against_brute_force_wick(n_ext, vertices):
    rng = np.random.default_rng(1)
    n_v = len(vertices)
    m = rng.normal(size=(n_ext + n_v, n_ext + n_v))
    prop = m + m.T
    brute = _brute_force(n_ext, [v.n_legs for v in vertices], prop)
    # the engine groups relabellings of identical vertices (here all vertices are identical), so
    # each diagram's count is spread evenly over the V! labellings of the brute force
    eng = 0.0
    perms = list(itertools.permutations(range(n_v)))
    for d in enumerate_diagrams(n_ext, vertices):
        for p in perms:
            val = float(d.count) / len(perms)
            for a, (v, _) in enumerate(d.externals):
                val *= prop[a, n_ext + p[v]]
            for (v1, _), (v2, _) in d.lines:
                val *= prop[n_ext + p[v1], n_ext + p[v2]]
            eng += val
    assert np.isclose(eng, brute, rtol=1e-12)


def test_coefficients_are_fractions():
    for d in enumerate_diagrams(6, (LOCAL4, LOCAL4)):
        assert isinstance(d.coefficient, Fraction)
    with pytest.raises(ValueError, match="sites"):
        VertexType("bad", ())
