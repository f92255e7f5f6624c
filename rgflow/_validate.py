"""Input validation shared by the public entry points.

Every check raises at construction / call time with a message naming the argument and what is
allowed, so bad input never turns into a NaN or a silently wrong answer.
"""

from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(name: str, value, *, minimum: int = 1) -> int:
    """Return `value` as an `int`, or raise if it is not an integer `>= minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value}.")
    return int(value)


def check_sigma(name: str, value) -> float:
    """Return `value` as a finite non-negative `float`, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite real number >= 0, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite real number >= 0, got {value}.")
    return value


def check_inputs(xs, d_in: int, *, name: str = "xs") -> np.ndarray:
    """Return the input points as a float64 array of shape `(P, d_in)`, or raise.

    A 1-d array is accepted only when `d_in == 1` (it is read as `P` scalar inputs).
    """
    try:
        arr = np.asarray(xs, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a real array of shape (P, d_in={d_in}).") from e
    if arr.ndim == 1 and d_in == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != d_in or arr.shape[0] < 1:
        raise ValueError(
            f"`{name}` must have shape (P, d_in) = (P, {d_in}) with P >= 1, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or inf; all inputs must be finite.")
    return arr


def check_order(name: str, order, allowed) -> int:
    """Return `order` as an `int` if it is one of `allowed`, or raise."""
    allowed = tuple(allowed)
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}, got {order!r}.")
    return int(order)


def check_orders(orders, allowed) -> tuple[int, ...]:
    """Return `orders` as a sorted tuple of distinct ints drawn from `allowed`, or raise."""
    allowed = tuple(allowed)
    try:
        orders = tuple(sorted(set(int(o) for o in orders)))
    except TypeError as e:
        raise TypeError(f"`orders` must be a sequence drawn from {allowed}, got {orders!r}.") from e
    if not orders or any(o not in allowed for o in orders):
        raise ValueError(f"`orders` must be a non-empty subset of {allowed}, got {orders!r}.")
    return orders


def check_ensemble(name: str, n, n_blocks, *, minimum: int = 2, per_block: int = 1):
    """Validate an ensemble size `n` (>= `minimum`) and a jackknife block count (>= 2, each block
    holding at least `per_block` items). **Returns:** `(n, n_blocks)` as ints."""
    n = check_positive_int(name, n, minimum=minimum)
    n_blocks = check_positive_int("n_blocks", n_blocks, minimum=2)
    if n_blocks > n // per_block:
        limit = f"{name} = {n}" if per_block == 1 else f"{name} / {per_block} = {n // per_block}"
        raise ValueError(f"`n_blocks` must be <= {limit}, got {n_blocks}.")
    return n, n_blocks


def check_one_layer(net, function: str, alternative: str = "rgflow.perturbative_connected(net, xs, order)"):
    """Refuse a deep network (`rgflow.DeepNet`) in a single-hidden-layer formula (physics.md §4),
    naming the function to use instead."""
    if getattr(type(net), "is_deep", False):
        raise TypeError(
            f"`net`: {function} is the single-hidden-layer formula (physics.md §4) and does not "
            f"apply to a DeepNet (depth {net.depth}); use {alternative} (the O(1/n) layer "
            "recursion, physics.md §11), or net.one_layer() for a depth-1 DeepNet."
        )
    return net
