"""The worker side of `rgflow reproduce --jobs N`: one study task per forked process.

The tasks are forked from a process that has imported `rgflow.app._preload` (jax, rgflow, every
study, matplotlib: ~5 s) and never started a JAX backend: the command's own process, or a fork
server when the caller has already run JAX (`reproduce._process_context`). A task therefore
starts in milliseconds, and the memory of a finished task (its compiled XLA programs, its
arrays) goes back to the system when its process ends, instead of accumulating in one
long-lived process (a single process running the quick profile peaked at 3.0 GB, measured).
Each task initialises its own backend; all of them share the persistent compilation cache of
the command (`rgflow._xla_cache`), so a program compiled by one task is loaded by the next."""

from __future__ import annotations

import traceback
from pathlib import Path

import jax

from .reproduce import _run_study


def run_task(queue, task_id: int, name: str, config: dict, out: str, x64: bool,
             xla_cache: str | None = None) -> None:
    """Run one task (study `name` with `config`) and report to the parent through `queue`:
    `("progress", id, desc, done, total)` per finished step, then `("done", id, info)` or
    `("error", id, exception type name, message, traceback)`. `xla_cache`: the parent's
    persistent compilation cache folder (None: off)."""
    jax.config.update("jax_enable_x64", bool(x64))
    if xla_cache:
        from .._xla_cache import enable_compilation_cache

        enable_compilation_cache(xla_cache)

    def report(desc: str, done: int, total: int) -> None:
        queue.put(("progress", task_id, desc, int(done), int(total)))

    try:
        info = _run_study(name, config, Path(out), report)
    except BaseException as e:  # noqa: BLE001  (reported to the parent, which raises)
        queue.put(("error", task_id, type(e).__name__, str(e), traceback.format_exc()))
    else:
        queue.put(("done", task_id, info))
