"""Index-sorted tuples and symmetric storage (physics.md §5).

An n-point function of P inputs is symmetric, so only the C(P+n−1, n) index-sorted tuples
i1 <= ... <= in are distinct (21 / 126 / 462 for P = 6 and n = 2 / 4 / 6). Everything that
accumulates or predicts correlators works on that list; `to_full` expands to the full
`(P,)*n` array only on request.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np


@functools.cache
def _sorted_tuples(n_points: int, order: int) -> np.ndarray:
    tup = list(itertools.combinations_with_replacement(range(n_points), order))
    out = np.asarray(tup, dtype=np.int64).reshape(len(tup), order)
    out.setflags(write=False)
    return out


def sorted_tuples(n_points: int, order: int) -> np.ndarray:
    """The index-sorted tuples `i1 <= ... <= in` of `order` indices in `range(n_points)`.

    **Returns:** an int array of shape `(C(P+n−1, n), n)` in lexicographic order.
    """
    n_points, order = _check_sizes(n_points, order)
    return _sorted_tuples(n_points, order)


def _check_sizes(n_points, order) -> tuple[int, int]:
    from ._validate import check_positive_int

    n_points = check_positive_int("n_points", n_points)
    order = check_positive_int("order", order)
    if math.comb(n_points + order - 1, order) > 10**8:
        raise ValueError(
            f"{math.comb(n_points + order - 1, order):.3g} sorted tuples (n_points = {n_points}, "
            f"order = {order}) are too many to hold (limit 1e8)."
        )
    return n_points, order


def n_tuples(n_points: int, order: int) -> int:
    """C(P+n−1, n), the number of distinct entries of a symmetric n-point function."""
    return math.comb(n_points + order - 1, order)


@functools.cache
def _full_index(n_points: int, order: int) -> np.ndarray:
    """For each entry of the full `(P,)*n` array, the position of its sorted tuple."""
    grid = np.indices((n_points,) * order).reshape(order, -1).T
    key = np.sort(grid, axis=1)
    tuples = sorted_tuples(n_points, order)
    codes = lambda t: t @ (n_points ** np.arange(order - 1, -1, -1))  # noqa: E731
    pos = np.searchsorted(codes(tuples), codes(key))
    out = pos.reshape((n_points,) * order)
    out.setflags(write=False)
    return out


def to_full(values, n_points: int, order: int):
    """Expand values on the sorted tuples (last axis) to the full symmetric `(..., P, ..., P)`.

    `values` must have `n_tuples(n_points, order)` entries along its last axis.
    """
    n_points, order = _check_sizes(n_points, order)
    shape = getattr(values, "shape", None)
    if shape is None:
        values = np.asarray(values)
        shape = values.shape
    expected = n_tuples(n_points, order)
    if len(shape) < 1 or shape[-1] != expected:
        raise ValueError(
            f"`values` must have n_tuples(n_points={n_points}, order={order}) = {expected} "
            f"entries along its last axis, got shape {tuple(shape)}."
        )
    if n_points**order > 10**8:
        raise ValueError(f"the full array ({n_points},)*{order} is too large to hold.")
    idx = _full_index(n_points, order)
    return values[..., idx]


def from_full(array, order: int):
    """Restrict a full symmetric array `(..., P, ..., P)` to its sorted tuples."""
    from ._validate import check_positive_int

    order = check_positive_int("order", order)
    shape = tuple(getattr(array, "shape", np.shape(array)))
    if len(shape) < order or len(set(shape[len(shape) - order:])) != 1:
        raise ValueError(
            f"`array` must end in {order} equal axes (..., P, ..., P), got shape {shape}."
        )
    array = array if hasattr(array, "reshape") else np.asarray(array)
    n_points = array.shape[-1]
    t = sorted_tuples(n_points, order)
    lead = array.shape[: array.ndim - order]
    flat = array.reshape(lead + (-1,))
    codes = t @ (n_points ** np.arange(order - 1, -1, -1))
    return flat[..., codes]


@functools.cache
def pairings(n: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """All (n−1)!! perfect matchings of `range(n)` (Wick contractions), n even."""
    if n == 0:
        return ((),)
    out = []
    first = 0
    for j in range(1, n):
        rest = [k for k in range(1, n) if k != j]
        for sub in pairings(len(rest)):
            out.append(((first, j),) + tuple((rest[a], rest[b]) for a, b in sub))
    return tuple(out)


@functools.cache
def splits(n: int, k: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """All ways to choose a k-subset of `range(n)`: pairs (subset, complement)."""
    out = []
    for sub in itertools.combinations(range(n), k):
        comp = tuple(i for i in range(n) if i not in sub)
        out.append((sub, comp))
    return tuple(out)


def wick_sum(pair_value, tuples: np.ndarray):
    """Σ over the perfect matchings of the tuple positions of Π pair_value[..., T[a], T[b]].

    `pair_value` is a symmetric `(..., P, P)` array (leading axes broadcast, e.g. jackknife
    replicates); the result has shape `(..., n_tuples)`.
    """
    total = 0.0
    for pairing in pairings(tuples.shape[1]):
        term = 1.0
        for a, b in pairing:
            term = term * pair_value[..., tuples[:, a], tuples[:, b]]
        total = total + term
    return total


def prefix_index(n_points: int, order: int) -> np.ndarray:
    """For each sorted tuple of `order`, the position of its first `order − 1` indices among
    the sorted tuples of `order − 1` (so products can be built up one factor at a time)."""
    t = sorted_tuples(n_points, order)
    prev = sorted_tuples(n_points, order - 1)
    weights = n_points ** np.arange(order - 2, -1, -1)
    return np.searchsorted(prev @ weights, t[:, :-1] @ weights)
