"""The worker side of `rgflow reproduce --jobs N`: one study task per forked process.

`rgflow reproduce` starts a fork server that imports `rgflow.app._preload` once (this module,
jax, rgflow, every study, matplotlib: ~5 s), then forks one short-lived process per task from it. A task therefore starts
in milliseconds, and the memory of a finished task (its compiled XLA programs, its arrays) goes
back to the system when its process ends, instead of accumulating in one long-lived process
(a single process running the quick profile peaked at 3.0 GB, measured). The fork server never
initialises a JAX backend, so forking it is safe; each task initialises its own.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import jax

from .reproduce import _run_study


def run_task(queue, task_id: int, name: str, config: dict, out: str, x64: bool) -> None:
    """Run one task (study `name` with `config`) and report to the parent through `queue`:
    `("progress", id, desc, done, total)` per finished step, then `("done", id, info)` or
    `("error", id, exception type name, message, traceback)`."""
    jax.config.update("jax_enable_x64", bool(x64))

    def report(desc: str, done: int, total: int) -> None:
        queue.put(("progress", task_id, desc, int(done), int(total)))

    try:
        info = _run_study(name, config, Path(out), report)
    except BaseException as e:  # noqa: BLE001  (reported to the parent, which raises)
        queue.put(("error", task_id, type(e).__name__, str(e), traceback.format_exc()))
    else:
        queue.put(("done", task_id, info))
