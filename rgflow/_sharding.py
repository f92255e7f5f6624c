"""Spreading jackknife blocks of a Monte Carlo run over devices (issue 7, item 1).

`rgflow.measure` cuts an ensemble into `n_blocks` contiguous blocks of networks. Each block is an
independent, deterministic computation (network g draws from `fold_in(key, g)`), so blocks are the
natural unit of parallelism: a *round* runs D·K blocks in one dispatch, K consecutive blocks per
device, through `jax.shard_map` over a one-axis mesh (K = 1 when the caller checkpoints between
rounds, else all blocks in one round). A block's sums do not depend on which device computed it or
on how many devices there are, so a run on D devices gives the same numbers as a run on one.

**Single host, several devices.** Nothing to do: all `jax.devices()` are used. On CPU, several
host devices can be forced (one per core is sensible) with

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python ...   # before jax is imported

**Several hosts.** Under `jax.distributed` the mesh holds the devices of this process only:
each process runs its own share of the blocks and `rgflow._distributed` gathers the block sums
once at the end (physics.md §15).
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "blocks"


def resolve_devices(devices=None) -> list:
    """The devices to use: all visible devices by default, or an explicit list / count."""
    # this process's devices: under jax.distributed each process computes its own blocks
    # (rgflow._distributed), so a mesh never spans processes
    all_devices = jax.local_devices()
    if devices is None:
        return list(all_devices)
    if isinstance(devices, int) and not isinstance(devices, bool):
        if not 1 <= devices <= len(all_devices):
            raise ValueError(
                f"`devices` must be between 1 and the {len(all_devices)} visible devices, "
                f"got {devices}."
            )
        return list(all_devices[:devices])
    devices = list(devices)
    if not devices:
        raise ValueError("`devices` must not be empty.")
    foreign = [d for d in devices if getattr(d, "process_index", 0) != jax.process_index()]
    if foreign:
        raise ValueError(f"`devices` must be devices of this process, got {foreign}; under "
                         "jax.distributed every process uses its own devices.")
    return devices


@functools.lru_cache(maxsize=8)
def _mesh(devices: tuple) -> Mesh:
    # Auto axis type: the program below is written per device (shard_map), and jax >= 0.10
    # would otherwise default `make_mesh` to Explicit axes.
    return Mesh(np.asarray(devices), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def shard_blocks(block_fn, devices, compiler_options: dict | None = None) -> callable:
    """Wrap `block_fn(xs, key, start, count) -> pytree of arrays` to run blocks on devices.

    The returned function takes `xs`, `key` and host arrays `starts`, `counts` of shape `(D·K,)`
    (K >= 1 blocks per device; device j runs entries jK … jK + K − 1 one after the other inside a
    single dispatch) and returns the pytree with a leading `(D·K,)` axis, as host NumPy arrays,
    in that order. Every block runs the same per-block program, so a block's numbers depend
    neither on D nor on K. `compiler_options`: XLA options for the compiled program.
    """
    mesh = _mesh(tuple(devices))
    spec = P(AXIS)

    sharding = NamedSharding(mesh, spec)
    replicated = NamedSharding(mesh, P())

    @functools.cache
    def mapped(impl):
        def per_device(xs, key_data, starts, counts):
            key = jax.random.wrap_key_data(key_data, impl=impl)
            return jax.lax.map(lambda sc: block_fn(xs, key, sc[0], sc[1]), (starts, counts))

        return jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P(), spec, spec),
                                     out_specs=spec, check_vma=False),
                       compiler_options=compiler_options)

    def run(xs, key, starts, counts):
        # every process passes the same xs, key, starts, counts: place them as global arrays
        # (the key as its raw data: a typed key cannot be built from host callbacks)
        xs = jax.tree.map(lambda a: _global(np.asarray(a), replicated), xs)
        key_data = _global(np.asarray(jax.random.key_data(key)), replicated)
        starts = _global(np.asarray(starts, np.uint32), sharding)
        counts = _global(np.asarray(counts, np.uint32), sharding)
        out = mapped(str(jax.random.key_impl(key)))(xs, key_data, starts, counts)
        return jax.tree.map(_to_host, out)

    return run


def blocks_per_device(n_blocks: int, n_dev: int, incremental: bool) -> int:
    """Blocks each device runs per dispatch (a *round*): one when the caller wants to act
    between blocks (checkpointing, a progress bar), otherwise all of them in a single dispatch
    (the per-dispatch overhead, ~1 ms, otherwise dominates small runs)."""
    return 1 if incremental else -(-n_blocks // n_dev)


def padded(values: np.ndarray, size: int) -> np.ndarray:
    """`values` followed by zeros up to `size` (idle block slots: count 0, no work)."""
    out = np.zeros(size, dtype=np.int64)
    out[: values.size] = values
    return out


def _global(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array every process holds in full."""
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _to_host(a: jax.Array) -> np.ndarray:
    return np.asarray(a)  # the mesh holds this process's devices only
