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


def check_seed(value, name: str = "seed") -> int:
    """Return `value` as an `int` if it is a valid seed for `jax.random.key` (an integer with
    0 <= seed < 2**63), or raise naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer with 0 <= seed < 2**63, got {value!r}.")
    if not 0 <= value < 2**63:
        raise ValueError(f"`{name}` must be an integer with 0 <= seed < 2**63, got {value}.")
    return int(value)


def check_sigma(name: str, value) -> float:
    """Return `value` as a finite non-negative `float`, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a finite real number >= 0, got {value!r}.")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite real number >= 0, got {value}.")
    if value > 1e150:
        raise ValueError(f"`{name}` = {value:g} is too large: its square overflows float64 "
                         "(use a value <= 1e150).")
    return value


def check_inputs(xs, d_in: int, *, name: str = "xs") -> np.ndarray:
    """Return the input points as a float64 array of shape `(P, d_in)`, or raise.

    A 1-d array is accepted only when `d_in == 1` (it is read as `P` scalar inputs). Complex
    arrays are refused (not silently truncated to their real part).
    """
    if np.iscomplexobj(xs):
        raise TypeError(f"`{name}` must be real, got a complex array; pass the real part explicitly.")
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


def check_finite_output(value, what: str, hint: str = ""):
    """Raise a `ValueError` if the concrete result `value` contains NaN or inf. Traced values
    (inside `jax.jit`/`jax.grad`/`jax.vmap`) pass unchecked: internal quadratures mask
    out-of-range nodes after the fact, so an in-graph `eqx.error_if` would fire on values that
    are never used; the public entry points check their concrete results instead.
    **Returns:** `value`."""
    message = f"{what} is not finite (NaN or inf){'; ' + hint if hint else ''}."
    if is_traced(value):
        return value
    if not np.all(np.isfinite(np.asarray(value))):
        raise ValueError(message)
    return value


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


def check_key(key, name: str = "key"):
    """Return `key` if it is a single JAX PRNG key, or raise a `TypeError` naming `name`.

    Accepted: a typed key (`jax.random.key(seed)`, shape `()`) or a legacy raw key
    (`jax.random.PRNGKey(seed)`, uint32 of shape `(2,)`). Refused: ints, strings, None, float
    arrays and batches of keys (`jax.random.split(key, n)`: pick one, e.g. `keys[0]`).
    """
    import jax

    how = "make one with jax.random.key(seed)"
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    if dtype is None or shape is None:
        raise TypeError(f"`{name}` must be a JAX PRNG key ({how}), got {key!r}.")
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if shape != ():
            raise TypeError(
                f"`{name}` must be a single JAX PRNG key, got a batch of keys of shape {shape}; "
                f"pass one of them (e.g. `{name}[0]`) or {how}."
            )
        return key
    if np.dtype(dtype) == np.uint32 and tuple(shape) == (2,):
        return key  # legacy raw key from jax.random.PRNGKey(seed)
    raise TypeError(
        f"`{name}` must be a JAX PRNG key ({how}), got an array of dtype {dtype} and shape "
        f"{tuple(shape)}."
    )


def key_identity(key) -> str:
    """A short hex digest identifying a (concrete) PRNG key: its implementation and key data."""
    import hashlib

    import jax

    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        impl, data = str(jax.random.key_impl(key)), np.asarray(jax.random.key_data(key))
    else:
        impl, data = "raw", np.asarray(key)
    return hashlib.sha256(impl.encode() + data.tobytes()).hexdigest()[:16]


def is_traced(x) -> bool:
    """True if `x` is a JAX tracer (inside jit/grad/vmap), where values cannot be inspected."""
    import jax

    return isinstance(x, jax.core.Tracer)


def check_points(name: str, x, d_in: int):
    """Validate input points for the low-level methods (`kernel`, `covariance`, `sample`).

    Concrete values must be a real, finite array of shape `(P, d_in)` (1-d accepted for
    `d_in == 1`) and are returned as a float64 JAX array. Traced values (inside `jax.jit`,
    `jax.grad`, `jax.vmap`) are checked for dtype and shape only.
    """
    import jax.numpy as jnp

    if is_traced(x):
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise TypeError(f"`{name}` must be real, got a complex array.")
        if x.ndim != 2 or x.shape[-1] != d_in:
            raise ValueError(
                f"`{name}` must have shape (P, d_in) = (P, {d_in}), got shape {x.shape}."
            )
        # no value check on tracers: internal quadratures legitimately pass masked (inf) nodes
        return x.astype(jnp.float64) if not jnp.issubdtype(x.dtype, jnp.floating) else x
    if np.iscomplexobj(x) or (hasattr(x, "dtype") and np.issubdtype(np.dtype(x.dtype), np.complexfloating)):
        raise TypeError(f"`{name}` must be real, got a complex array; pass the real part explicitly.")
    return jnp.asarray(check_inputs(x, d_in, name=name))


def check_real_array(name: str, value, *, shape=None, ndim: int | None = None,
                     finite: bool = True):
    """Return `value` as a float64 NumPy array, refusing complex, non-numeric, (when `finite`)
    NaN/inf, and (when `shape` or `ndim` is given) the wrong shape."""
    if np.iscomplexobj(value):
        raise TypeError(f"`{name}` must be real, got a complex array.")
    if isinstance(value, (str, bytes)) or np.asarray(value).dtype.kind in "USV":
        raise TypeError(f"`{name}` must be a real array, got {value!r}.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be a real array, got {value!r}.") from e
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}, got shape {arr.shape}.")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"`{name}` must be {ndim}-d, got shape {arr.shape}.")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or inf; all entries must be finite.")
    return arr


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def available_memory_bytes(devices=None) -> int | None:
    """The memory one array may use: the smallest of the physical RAM and the accelerator
    memory limit of `devices` (default: the first JAX device), or None if unknown."""
    import os

    import jax

    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for dev in (devices or jax.devices()[:1]):
        try:
            stats = dev.memory_stats()
        except Exception:  # noqa: BLE001  (CPU devices have no stats)
            stats = None
        if stats and stats.get("bytes_limit"):
            limits.append(int(stats["bytes_limit"]))
    return min(limits) if limits else None


def check_memory(nbytes: float, what: str, *, devices=None, hint: str = "") -> None:
    """Raise a `ValueError` if `nbytes` (an estimate of the working set of `what`) exceeds the
    memory available (see `available_memory_bytes`), saying how much would be needed."""
    limit = available_memory_bytes(devices)
    if limit is not None and nbytes > limit:
        raise ValueError(
            f"{what} would need about {_format_bytes(nbytes)} of memory, more than the "
            f"{_format_bytes(limit)} available{'; ' + hint if hint else ''}."
        )
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


# ------------------------------------------------------------ shared checks (issue 29) ---


def check_real(name: str, value, *, positive: bool = False, minimum: float | None = None,
               maximum: float | None = None) -> float:
    """Return `value` as a finite Python `float`, or raise naming `name`.

    Accepted: Python and NumPy real scalars (`np.float32(1e-8)` as well as `1e-8`) and 0-d real
    arrays. Refused with a `TypeError`: bools, complex numbers, strings and other objects; with a
    `ValueError`: NaN, ±inf (a non-finite tolerance or limit would switch its check off), and
    values `<= 0` (`positive`) or outside `[minimum, maximum]`.
    """
    what = "a finite real number" + (" > 0" if positive else "")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if hasattr(value, "dtype") and getattr(value, "shape", None) == () and not isinstance(
            value, np.generic):
        value = np.asarray(value)[()]  # a 0-d JAX array
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be {what}, got {value!r}.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be {what}, got {value}.")
    if positive and not value > 0:
        raise ValueError(f"`{name}` must be {what}, got {value}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be {what} >= {minimum:g}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be {what} <= {maximum:g}, got {value}.")
    return value


def check_bool(name: str, value) -> bool:
    """Return `value` as a `bool` if it is one (Python or NumPy), else raise a `TypeError`."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_symmetric(name: str, value, n: int, p: int | None = None, *,
                    rtol: float = 1e-9) -> np.ndarray:
    """Return `value` as a real, finite, fully symmetric float64 array of order `n` (shape
    `(p,)*n`; any `p >= 1` when `p` is None), or raise naming `name`.

    Symmetry is checked under every transposition of adjacent axes (they generate all index
    permutations), to `rtol` × the largest entry: a non-symmetric tensor contracted with
    symmetric fields would silently give the result of its symmetrised part.
    """
    arr = check_real_array(name, value)
    if p is None:
        p = arr.shape[0] if arr.ndim >= 1 else 0
    if arr.shape != (p,) * n or p < 1:
        raise ValueError(f"`{name}` must be a full symmetric array of shape {(p,) * n}, "
                         f"got shape {arr.shape}.")
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    for axis in range(n - 1):
        perm = list(range(n))
        perm[axis], perm[axis + 1] = perm[axis + 1], perm[axis]
        gap = float(np.max(np.abs(arr - np.transpose(arr, perm))))
        if gap > rtol * scale:
            raise ValueError(
                f"`{name}` must be symmetric under every permutation of its indices (axes "
                f"{axis} and {axis + 1} differ by {gap:.3g}, relative {gap / scale:.3g}).")
    return arr


def check_solver(name: str, solver, *, default=None):
    """Validate a diffrax solver for an adaptive-step integration: an instance (not a class or a
    string) of an explicit adaptive solver. Implicit solvers are refused with the reason (each
    step solves a nonlinear system whose Jacobian has (number of state entries)² elements: the
    flows here are not stiff, and an implicit step costs minutes where an explicit one costs
    milliseconds); fixed-step solvers have no error estimate for the step-size controller.
    **Returns:** the solver (`default` for None)."""
    import diffrax

    if solver is None:
        return default
    if isinstance(solver, type) or not isinstance(solver, diffrax.AbstractSolver):
        raise TypeError(f"`{name}` must be a diffrax solver instance such as diffrax.Tsit5(), "
                        f"got {solver!r}.")
    if isinstance(solver, diffrax.AbstractImplicitSolver):
        raise ValueError(
            f"`{name}` = {type(solver).__name__} is an implicit solver, refused: each step "
            "solves a nonlinear system with a dense Jacobian of (number of state entries)² "
            "elements (minutes per flow, unbounded with the tensor size), and the flow is not "
            "stiff; use an explicit adaptive solver (diffrax.Tsit5(), diffrax.Dopri5(), "
            "diffrax.Dopri8()).")
    if not isinstance(solver, diffrax.AbstractAdaptiveSolver):
        raise ValueError(
            f"`{name}` = {type(solver).__name__} is a fixed-step solver without an error "
            "estimate, so the adaptive step-size control (rtol, atol) cannot work; use an "
            "explicit adaptive solver (diffrax.Tsit5(), diffrax.Dopri5()).")
    return solver


def find_non_finite(obj, path: str = "") -> str | None:
    """The path (e.g. `"a.b[3]"`) of the first NaN/inf float in a JSON-like `obj` (dicts, lists,
    tuples, floats, NumPy scalars and arrays), or None if every number is finite."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            hit = find_non_finite(v, f"{path}.{k}" if path else str(k))
            if hit is not None:
                return hit
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            hit = find_non_finite(v, f"{path}[{i}]")
            if hit is not None:
                return hit
        return None
    if isinstance(obj, (np.ndarray, np.generic)) and np.asarray(obj).dtype.kind in "fc":
        arr = np.asarray(obj)
        if arr.ndim == 0:
            return None if np.isfinite(arr) else f"{path} = {arr}"
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            index = "".join(f"[{int(i)}]" for i in bad[0])
            return f"{path}{index} = {arr[tuple(bad[0])]}"
        return None
    if isinstance(obj, float) and not np.isfinite(obj):
        return f"{path} = {obj}"
    return None
