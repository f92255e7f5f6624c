"""Monte Carlo runs over many processes: JAX's multi-controller runtime (issue 27, physics.md §15).

The ensemble is embarrassingly parallel: network g is drawn from `fold_in(key, g)` whatever
process draws it, and a jackknife block's sums are a deterministic function of its networks
(`rgflow._ensemble`). So a run over K processes gives every process a contiguous share of the
blocks (`process_share`), each process reduces its own blocks on its own devices (no collective
inside the computation, no lock-step), and one reduction at the end gathers the per-block float64
sums to every process (`gather_blocks`, an all-gather through `jax.distributed`; gloo collectives
on CPU). The totals are then summed in block order by the same code as a single-process run, so
1, 2, ... K processes return bit-for-bit the numbers of today's single-process `rgflow.measure`.

**Starting.** Every process calls `initialize_distributed()` first (before any JAX computation):
it reads `RGFLOW_COORDINATOR_ADDRESS`, `RGFLOW_NUM_PROCESSES`, `RGFLOW_PROCESS_ID` (set by
`rgflow measure --processes K`), or lets `jax.distributed.initialize` discover the cluster
(SLURM `srun`, Open MPI `mpirun`, Kubernetes, Cloud TPU). Then `rgflow.measure` (and
`measure_widths`, `measure_neurons`, `measure_conditional`) are called with the same arguments in
every process and return the same result in every process; write outputs from process 0 only.

**Failure modes.** Every run starts with an agreement step through the coordination service's
key-value store: each process publishes a checksum of its run spec (network, inputs, ensemble
size, blocks, key, orders, dtype, batch size, process count), and all of them refuse with a
`ValueError` when the checksums differ. The same step (and the one before the final gather)
waits at most `wait_timeout` seconds for the others, so a process that never arrives gives a
`TimeoutError` naming it instead of a hang; before that, joining the run is bounded by
`timeout` in every process (`_bounded_join`: JAX's own deadline would end process 0 with
SIGABRT). A process that dies is noticed by the coordination
service's heartbeats (`heartbeat_timeout`), which terminates the survivors; the local launcher
(`rgflow.app._launch`) stops the survivors at once and says which process died. Checkpoints are
per process (`process_checkpoint_path`): a rerun with the same process count resumes every
process from its own file.

**Other Monte Carlo loops** (e.g. ensemble training) fit the same pattern: `check_same_run` with
their configuration, compute the blocks `process_share(n_blocks)` on local devices, then
`gather_blocks` their per-block statistics and reduce them in block order.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import threading
import time
from pathlib import Path

import jax
import numpy as np

ENV_ADDRESS = "RGFLOW_COORDINATOR_ADDRESS"
ENV_COUNT = "RGFLOW_NUM_PROCESSES"
ENV_ID = "RGFLOW_PROCESS_ID"
ENV_WAIT = "RGFLOW_WAIT_TIMEOUT"
ENV_HEARTBEAT = "RGFLOW_HEARTBEAT_TIMEOUT"
ENV_INIT = "RGFLOW_INIT_TIMEOUT"

_STATE = {"wait_timeout": 3600.0}
# seconds of the last run in this process: its own blocks, the wait for the others before the
# reduction, the all-gather itself (benchmarks/bench_processes.py)
STATS: dict = {}
# Monte Carlo runs this process has shared with the others (one per `check_same_run`)
SHARED = {"runs": 0}
_CALLS = itertools.count()  # every process makes the same sequence of runs and gathers
_GATHERS = itertools.count()


def _env_int(name: str, value):
    if value is not None:
        return value
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be an integer, got {text!r}.") from None


def _env_float(name: str, value, default):
    if value is not None:
        return float(value)
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"the environment variable {name} must be a number, got {text!r}.") from None


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = str(address).rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"`coordinator_address` must look like 'host:port', got {address!r}.")
    return host.strip("[]"), int(port)


def _wait_for_coordinator(address: str, timeout: float) -> None:
    """Poll a TCP connection to the coordinator until it answers or `timeout` seconds pass."""
    host, port = _split_address(address)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the coordinator at {address} did not answer within {timeout:g} s ({e}); "
                    "start process 0 (the coordinator) first or together with the others, and "
                    "give every process the same coordinator address and port."
                ) from None
            time.sleep(0.2)


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None, *,
                           local_device_ids=None,
                           timeout: float | None = None,
                           heartbeat_timeout: float | None = None,
                           wait_timeout: float | None = None) -> tuple[int, int]:
    """Join a multi-process run (`jax.distributed.initialize`, gloo collectives on CPU).

    Must run before any JAX computation in the process.

    **Arguments:**

    - `coordinator_address`, `num_processes`, `process_id`: as `jax.distributed.initialize`;
      each defaults to `RGFLOW_COORDINATOR_ADDRESS`, `RGFLOW_NUM_PROCESSES`, `RGFLOW_PROCESS_ID`,
      and else to JAX's cluster discovery (SLURM, Open MPI, ...).
    - `local_device_ids`: the accelerators this process uses (e.g. one GPU per process).
    - `timeout`: seconds to wait for the coordinator and the other processes to join
      (default 300; env `RGFLOW_INIT_TIMEOUT`); then a `TimeoutError` naming the coordinator
      address and the timeout, in every process (process 0 included), instead of a hang or
      JAX's abort.
    - `heartbeat_timeout`: seconds after which a silent (dead) process fails the run (JAX's
      default 100 s; env `RGFLOW_HEARTBEAT_TIMEOUT`).
    - `wait_timeout`: seconds a process waits for the others at the start and at the end of a
      Monte Carlo run before a `TimeoutError` (default 3600; env `RGFLOW_WAIT_TIMEOUT`).

    **Returns:** `(process_index, process_count)`.
    """
    from jax._src import xla_bridge

    timeout = _env_float(ENV_INIT, timeout, 300.0)
    if not timeout > 0:
        raise ValueError(f"`timeout` must be positive, got {timeout!r}.")
    wait = _env_float(ENV_WAIT, wait_timeout, None)
    if wait is not None:
        if not wait > 0:
            raise ValueError(f"`wait_timeout` must be positive, got {wait!r}.")
        _STATE["wait_timeout"] = wait
    if _client() is not None:  # already initialised (e.g. by the caller)
        return jax.process_index(), jax.process_count()
    if xla_bridge.backends_are_initialized():
        raise RuntimeError(
            "rgflow.initialize_distributed must run before any JAX computation in the process "
            "(the backends are already initialised); call it first, right after the imports."
        )
    address = coordinator_address or os.environ.get(ENV_ADDRESS)
    count = _env_int(ENV_COUNT, num_processes)
    index = _env_int(ENV_ID, process_id)
    if count is not None and count < 1:
        raise ValueError(f"`num_processes` must be >= 1, got {count}.")
    if count is not None and index is not None and not 0 <= index < count:
        raise ValueError(f"`process_id` must be in [0, {count}), got {index}.")
    heartbeat = _env_int(ENV_HEARTBEAT, heartbeat_timeout)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    start = time.monotonic()  # one deadline for reaching the coordinator and joining
    if address is not None and index not in (None, 0):
        _wait_for_coordinator(address, timeout)
    # JAX's own deadline is left far behind ours: when it expires, its client ends the whole
    # process from C++ (SIGABRT, "DEADLINE_EXCEEDED ... RegisterTask"), which no caller can catch
    kwargs = dict(initialization_timeout=int(math.ceil(timeout)) + _JAX_DEADLINE_MARGIN)
    if heartbeat is not None:
        kwargs["heartbeat_timeout_seconds"] = max(1, int(heartbeat))
    _bounded_join(lambda: jax.distributed.initialize(address, count, index,
                                                     local_device_ids=local_device_ids,
                                                     **kwargs),
                  timeout, address, count, index, start)
    return jax.process_index(), jax.process_count()


# seconds by which JAX's initialization deadline trails ours (initialize_distributed)
_JAX_DEADLINE_MARGIN = 3600


def _bounded_join(join, timeout: float, address, count, index, start=None) -> None:
    """Run `join()` (`jax.distributed.initialize`) for at most `timeout` seconds.

    The join blocks in C++ (with the GIL released) until every process has registered with
    the coordinator; it runs in a daemon thread, and if it has not returned `timeout` seconds
    after `start` (a `time.monotonic()` value; default now) this raises a `TimeoutError` naming the coordinator address and the timeout. The
    abandoned join stays blocked (JAX's own deadline is an hour later): the process should
    exit, which it does normally (a few seconds for the coordination service to stop).
    """
    done = threading.Event()
    failure = []

    def target():
        try:
            join()
        except BaseException as e:  # noqa: BLE001  (re-raised in the caller's thread)
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=target, name="rgflow-distributed-join", daemon=True).start()
    start = time.monotonic() if start is None else start
    if not done.wait(max(0.0, start + timeout - time.monotonic())):
        who = "process ?" if index is None else f"process {index}"
        of = "" if count is None else f" of {count}"
        where = address or "the address found by JAX's cluster discovery"
        raise TimeoutError(
            f"{who}{of}: not every process joined the coordinator at {where} within "
            f"{timeout:g} s (`timeout`, env {ENV_INIT}); check that all {count or 'the'} "
            "processes were started with the same coordinator address, process count and "
            "distinct process ids, or give them more time."
        )
    if failure:
        raise failure[0]


def _client():
    from jax._src import distributed

    return distributed.global_state.client


def is_distributed() -> bool:
    """Whether this process is one of several (`jax.process_count() > 1`)."""
    return _client() is not None and jax.process_count() > 1


def process_share(n_blocks: int, index: int | None = None, count: int | None = None):
    """Blocks `[lo, hi)` of process `index` of `count` (default: this one): contiguous shares
    whose sizes differ by at most one. **Raises:** `ValueError` if `n_blocks < count`."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    if n_blocks < count:
        raise ValueError(f"`n_blocks` ({n_blocks}) must be at least the number of processes "
                         f"({count}): a block is the unit of work of one process.")
    return index * n_blocks // count, (index + 1) * n_blocks // count


def process_checkpoint_path(path, index: int | None = None, count: int | None = None):
    """The checkpoint file of one process: `run.npz` → `run.process1-of-4.npz` (unchanged for a
    single process)."""
    if path is None:
        return None
    count = jax.process_count() if count is None else count
    if count == 1:
        return path
    index = jax.process_index() if index is None else index
    path = Path(path)
    return path.with_name(f"{path.stem}.process{index}-of-{count}{path.suffix or '.npz'}")


def _agree(tag: str, value: str) -> list[str]:
    """Publish `value` under `tag` and wait (at most `wait_timeout`) for every process's value."""
    client = _client()
    me, count = jax.process_index(), jax.process_count()
    timeout = _STATE["wait_timeout"]
    client.key_value_set(f"rgflow/{tag}/{me}", value)
    deadline = time.monotonic() + timeout
    values = []
    for q in range(count):
        left_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            values.append(client.blocking_key_value_get(f"rgflow/{tag}/{q}", left_ms))
        except Exception as e:  # JaxRuntimeError: DEADLINE_EXCEEDED, or the service is gone
            if "DEADLINE_EXCEEDED" in str(e):
                raise TimeoutError(
                    f"process {q} of {count} did not reach '{tag.split('/')[-1]}' within "
                    f"{timeout:g} s (it died, hangs, or runs a different sequence of "
                    f"calls); this is process {me}."
                ) from None
            raise
    return values


def from_process_0(value: str, what: str) -> str:
    """Process 0's `value` (a string) in every process; the others' own values are ignored.
    Also a barrier: every process waits (at most `wait_timeout`) until all have arrived.
    `what` names the step in a timeout message. A no-op in a single process."""
    if not is_distributed():
        return value
    return _agree(f"share{next(_CALLS)}/{what}", value)[0]


def check_same_run(**spec) -> str:
    """Refuse (`ValueError`) a run whose spec differs between processes; wait for all of them.

    `spec`: the run's configuration (identified by `rgflow._checkpoint.fingerprint`).
    **Returns:** the checksum (empty in a single process, where this is a no-op).
    """
    from ._checkpoint import fingerprint

    if not is_distributed():
        return ""
    digest = fingerprint(**spec, processes=jax.process_count())
    call = next(_CALLS)
    SHARED["runs"] += 1
    values = _agree(f"run{call}/start", digest)
    if len(set(values)) > 1:
        lines = ", ".join(f"process {q}: {v[:12]}" for q, v in enumerate(values))
        raise ValueError(
            "the processes were given different arguments (run-spec checksums "
            f"{lines}); every process must call the Monte Carlo function with the same network, "
            "inputs, ensemble size, n_blocks, key, orders, dtype and batch_size."
        )
    return digest


def gather_blocks(local: dict, lo: int, hi: int, n_blocks: int) -> dict:
    """The one reduction: per-block arrays `(hi − lo, ...)` of every process → `(n_blocks, ...)`.

    An all-gather (`multihost_utils.process_allgather`) of shares padded to ⌈B/K⌉ rows, then
    the rows put back in block order: every value is copied, none is added, so the result is
    bit-identical whatever the process count. A no-op in a single process.
    """
    if not is_distributed():
        return {k: np.asarray(v) for k, v in local.items()}
    from jax.experimental import multihost_utils

    count = jax.process_count()
    size = -(-n_blocks // count)
    t0 = time.perf_counter()
    _agree(f"gather{next(_GATHERS)}/gather", "ready")
    t1 = time.perf_counter()
    padded = {}
    for k, v in local.items():
        v = np.asarray(v)
        out = np.zeros((size,) + v.shape[1:], v.dtype)
        out[: hi - lo] = v
        padded[k] = out
    gathered = multihost_utils.process_allgather(padded)  # each (count, size, ...)
    gathered = {k: np.asarray(g) for k, g in gathered.items()}
    STATS.update(wait_s=t1 - t0, allgather_s=time.perf_counter() - t1)
    result = {}
    for k, g in gathered.items():
        g = np.asarray(g)
        parts = []
        for q in range(count):
            q_lo, q_hi = process_share(n_blocks, q, count)
            parts.append(g[q, : q_hi - q_lo])
        result[k] = np.concatenate(parts)
    return result


def run_blocks(net, xs, key, n_items, n_blocks, batch_size, max_order, dtype_name, devs, kind,
               checkpoint, config, progress):
    """`rgflow._ensemble._run_blocks` over the processes: this process runs its share of the
    blocks on its own devices (checkpointing them in its own file), then one all-gather of the
    per-block sums and squares. Same return values, bit for bit."""
    from ._checkpoint import BlockCheckpoint
    from ._ensemble import _ORDERS, _auto_batch, _block_layout, _block_sums
    from ._sharding import blocks_per_device, padded
    from ._tuples import n_tuples
    from ._validate import check_positive_int

    accumulated = tuple(n for n in _ORDERS if n <= max_order)
    starts, counts = _block_layout(n_items, n_blocks)
    if batch_size is None:  # from the global layout: the same steps as a single process
        batch_size = _auto_batch(net, xs.shape[0], max_order, int(counts.max()), kind)
    batch_size = check_positive_int("batch_size", batch_size)
    check_same_run(**{**config, "batch_size": batch_size, "kind": kind})
    lo, hi = process_share(n_blocks)
    me, count = jax.process_index(), jax.process_count()
    ckpt = BlockCheckpoint.open(process_checkpoint_path(checkpoint), **config,
                                share=(me, count, lo, hi))
    p = xs.shape[0]
    sums = {n: np.zeros((hi - lo, n_tuples(p, n))) for n in accumulated}
    squares = {n: np.zeros((hi - lo, n_tuples(p, n))) for n in accumulated}
    done = ckpt.restore(sums, squares) if ckpt is not None else 0
    bar = None
    if progress and me == 0:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"{net.name} N={net.width} (process 0 of {count})", unit="block",
                   initial=done, total=hi - lo)
    n_dev = len(devs)
    size = n_dev * blocks_per_device(hi - lo - done, n_dev, ckpt is not None or progress)
    xs_j = np.asarray(xs)
    t0 = time.perf_counter()
    for first in range(lo + done, hi, max(size, 1)):
        blocks = np.arange(first, min(first + size, hi))
        s, q = _block_sums(net, xs_j, key, padded(starts[blocks], size),
                           padded(counts[blocks], size), batch_size, max_order, dtype_name,
                           devs, kind)
        for n in accumulated:
            sums[n][blocks - lo] = s[n][: blocks.size]
            squares[n][blocks - lo] = q[n][: blocks.size]
        if ckpt is not None:
            ckpt.save(int(blocks[-1]) + 1 - lo, sums, squares)
        if bar is not None:
            bar.update(blocks.size)
    if bar is not None:
        bar.close()
    STATS["compute_s"] = time.perf_counter() - t0
    local = {f"s{n}": sums[n] for n in accumulated} | {f"q{n}": squares[n] for n in accumulated}
    full = gather_blocks(local, lo, hi, n_blocks)
    return (counts, {n: full[f"s{n}"] for n in accumulated},
            {n: full[f"q{n}"] for n in accumulated})
