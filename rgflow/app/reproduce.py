"""`rgflow reproduce`: every figure of the paper (and ours beyond it) from one TOML configuration.

The studies are discovered from the registry `rgflow.studies.STUDIES`; each brings its
configuration schema and two profiles of defaults, `quick` (exact correlators plus small Monte
Carlo ensembles, minutes on a 2-core CPU) and `full` (the paper's 10⁶ networks per width).
A user TOML file overrides any key of the chosen profile. Every value is validated, naming the
key, before any computation starts. Each stage's results are cached under
`<out>/.cache/<stage>-<hash>.json` (hash of the stage's configuration and the rgflow version), so
an interrupted run resumes at the first unfinished stage and a second run reuses everything.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .._io import save_bytes, save_json
from ..studies import STUDIES
from ..studies._config import choice_list, fail, validate

# ------------------------------------------------------------------------------ config ---


def default_config(profile: str) -> dict:
    """The defaults of every study for `profile` ("quick" or "full")."""
    if profile not in ("quick", "full"):
        raise ValueError(f"`profile` must be 'quick' or 'full', got {profile!r}.")
    return {name: copy.deepcopy(study.DEFAULTS[profile]) for name, study in STUDIES.items()}


def load_config(path: str | Path | None, profile: str = "quick") -> dict:
    """The validated configuration: the profile's defaults overridden by the TOML file `path`.

    The file may contain `[<study>]` tables (overriding the chosen profile) and a top-level
    `stages = [...]` list selecting which studies run. Every value of every selected study is
    validated (type and range, naming the key) before anything runs; raises `ValueError`.
    """
    cfg = default_config(profile)
    stages = list(STUDIES)
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"cannot read configuration file {path}: {e}") from e
        if "stages" in user:
            stages = choice_list(*STUDIES)("stages", user.pop("stages"))
            if len(set(stages)) != len(stages):
                fail("stages", f"lists a study twice: {stages}")
        for name, table in user.items():
            if name not in STUDIES:
                fail(name, f"unknown stage; known stages are {list(STUDIES)}")
            if not isinstance(table, dict):
                fail(name, "must be a table of settings")
            for k, v in table.items():
                if k not in STUDIES[name].SCHEMA:
                    fail(f"{name}.{k}", f"unknown key; known keys are {list(STUDIES[name].SCHEMA)}")
                cfg[name][k] = v
    for name in stages:
        cfg[name] = validate(STUDIES[name].SCHEMA, cfg[name], prefix=f"{name}.")
    cfg["stages"] = stages
    return cfg


def stage_hash(name: str, stage_cfg: dict) -> str:
    from .._version import __version__

    blob = json.dumps({"stage": name, "config": stage_cfg, "version": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- running ---


def _run_study(name: str, config: dict, out: Path, progress, *, write: bool = True) -> dict:
    """Run one study, write `<stem>.json` and its figure for every result; returns
    `{"files": [...], "stems": [...]}`. `write=False` (processes other than 0 of a
    distributed run): compute only."""
    study = STUDIES[name]
    results = study.run(config, progress=progress)
    if not write:
        return {"files": [], "stems": list(results)}
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for stem, result in results.items():
        save_json(out / f"{stem}.json", result)
        files.append(str(out / f"{stem}.json"))
        files += [str(f) for f in study.plot(result, out / stem)]
    return {"files": files, "stems": list(results)}


def _release_memory() -> None:
    """Drop the compiled programs of a finished study before the next one starts: each study
    compiles its own programs, and a run that kept all of them alive peaked at 4.4 GB (quick
    profile, one process, measured)."""
    import gc

    import jax

    from .._ensemble import _round_fn
    from .._variance import _conditional_round_fn

    _round_fn.cache_clear()
    _conditional_round_fn.cache_clear()
    jax.clear_caches()
    gc.collect()


# Measured quick-profile seconds of each study (its tasks summed; two workers on an idle 2-core
# CPU, figures/.cache/timings.log), used only to start the longest tasks first; a study missing
# here counts as 30 s.
_COST_HINT = {"relevance": 100, "width_scaling": 63, "rg_lambda": 52, "wilsonian_rg": 48,
              "connected_six_pt": 46, "local_vs_nonlocal": 44, "free_theory": 29,
              "six_pt_prediction": 25, "layer_flow": 23, "frg_flow": 20, "edgeworth": 16,
              "training": 45,
              "shell_flow": 20,
              "phi4_network": 20,
              "wilsonian_shell": 30, "network_shell": 20}


def default_jobs() -> int:
    """Worker processes of `reproduce` by default: one per CPU core, at most 2 (each task's
    process needs up to ~1.2 GB in the quick profile)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover (not Linux)
        n = os.cpu_count() or 1
    return max(1, min(2, n))


def _tasks(name: str, cfg: dict) -> list[tuple[str, dict, str]]:
    """The tasks of one stage: `(stage, task configuration, label)`. A study that declares
    `SPLIT = "nets"` (its networks are independent: own seeds, own output files) runs one task
    per network, which balances the workers and bounds each process's memory."""
    study = STUDIES[name]
    nets = cfg.get("nets")
    if getattr(study, "SPLIT", None) == "nets" and isinstance(nets, list) and len(nets) > 1:
        return [(name, {**copy.deepcopy(cfg), "nets": [n]}, n) for n in nets]
    return [(name, cfg, "")]


class _Throttle:
    """Progress lines of one task at most every `every` seconds (and always the last step)."""

    def __init__(self, log, prefix: str, every: float = 5.0):
        self.log, self.prefix, self.every, self.last = log, prefix, every, -1e9

    def __call__(self, desc: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done >= total or now - self.last >= self.every:
            self.last = now
            self.log(f"    {self.prefix}{desc}: {done}/{total}")


def reproduce(config: dict, out: str | Path, *, force: bool = False, log=print,
              progress: bool | None = None, jobs: int | None = None) -> dict:
    """Run every selected study, reusing cached results; write `<out>/summary.md`.

    **Arguments:**

    - `config`: from `load_config`.
    - `out`: output folder for figures (PNG, PDF) and their JSON data.
    - `force`: ignore the cache.
    - `log`: where progress lines go.
    - `progress`: with `jobs=0` only: `True` for tqdm bars, `False` for one line per step
      (default: bars on a terminal).
    - `jobs`: worker processes (default `default_jobs()`). Each task (a study, or one network of
      a study with independent networks) runs in its own process forked from a preloaded fork
      server, so memory is returned after every task; up to `jobs` run at once, longest first.
      `jobs=0` runs everything in this process, one stage after the other. The results do not
      depend on `jobs` (every study seeds its own ensembles).

    Under `jax.distributed` (`rgflow reproduce --processes K`, physics.md §15) every process
    calls this with the same arguments and `jobs=0` (else `ValueError`): process 0 reads the
    cache and hands the list of missing stages to the others, all run them in order (their
    `measure`-family Monte Carlo shared), and only process 0 logs and writes.

    **Returns:** a dict study → {"cached": bool, "seconds": float, "files": [...]}.
    """
    out = Path(out)
    cache = out / ".cache"
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise ValueError(f"`jobs` must be an integer >= 0, got {jobs!r}.")
    multi = _is_distributed()
    if multi and jobs != 0:
        raise ValueError(f"`jobs` must be 0 under jax.distributed (got {jobs}): the processes "
                         "share every stage's Monte Carlo, so each runs the stages in itself, "
                         "one after the other.")
    main = not multi or _process_index() == 0
    if not main:  # one voice: process 0 logs, the others compute
        log = _silent
    if multi:  # the same configuration in every process (a checksum through the coordinator)
        from .._distributed import check_same_run

        check_same_run(kind="reproduce", config=config, force=force)
    report, pending = {}, []
    n = len(config["stages"])
    for i, name in enumerate(config["stages"], 1):
        if not main:  # process 0 alone reads (and writes) the cache: see below
            continue
        study, scfg = STUDIES[name], config[name]
        marker = cache / f"{name}-{stage_hash(name, scfg)}.json"
        if not force and marker.exists():
            info = json.loads(marker.read_text())
            if all(Path(f).exists() for f in info["files"]):
                log(f"[{i}/{n}] {study.TITLE}: cached")
                report[name] = {"cached": True, "seconds": 0.0, **info}
                continue
        pending.append((i, name, marker))
    if multi:  # every process runs the stages process 0 found missing, in its order
        pending = _pending_of_process_0(pending, cache, config)
    if jobs == 0:
        bars = main and (sys.stderr.isatty() if progress is None else progress)
        for i, name, marker in pending:
            log(f"[{i}/{n}] {STUDIES[name].TITLE} ...")
            t0 = time.perf_counter()
            shared = _shared_runs()
            info = _run_study(name, config[name], out, True if bars else _Throttle(log, ""),
                              write=main)
            _release_memory()
            if multi:  # what the processes divided among themselves (the rest each computed)
                log(f"    {_shared_runs() - shared} Monte Carlo runs shared by "
                    f"{_process_count()} processes")
            if main:
                report[name] = _finish_stage(name, config[name], marker, info,
                                             time.perf_counter() - t0, cache, log)
    elif pending:
        _run_parallel(config, pending, n, out, cache, jobs, log, report)
    if main:
        write_summary(config, out, report)
    return report


def _silent(*args, **kwargs) -> None:
    return None


def _is_distributed() -> bool:
    from .._distributed import is_distributed

    return is_distributed()


def _process_index() -> int:
    import jax

    return jax.process_index()


def _process_count() -> int:
    import jax

    return jax.process_count()


def _shared_runs() -> int:
    from .._distributed import SHARED

    return SHARED["runs"]


def _pending_of_process_0(pending, cache: Path, config: dict):
    """Under jax.distributed: process 0's list of stages to run, in every process.

    Only process 0 reads the stage cache (the others may not even see its file system); it
    publishes the names through the coordination service, and the others wait for them (at
    most `wait_timeout`). Every process then runs the same stages in the same order, so their
    Monte Carlo calls (and their reductions) pair up.
    """
    from .._distributed import from_process_0

    names = [name for _, name, _ in pending]
    got = json.loads(from_process_0(json.dumps(names), "reproduce-stages"))
    index = {name: i for i, name in enumerate(config["stages"], 1)}
    return [(index[name], name, cache / f"{name}-{stage_hash(name, config[name])}.json")
            for name in got]


def _finish_stage(name, scfg, marker, info, seconds, cache, log) -> dict:
    save_json(marker, {"stage": name, "config": scfg, **info, "seconds": seconds})
    _append_timing(cache, name, seconds)
    log(f"    {STUDIES[name].TITLE.split(' (')[0]}: done in {seconds:.1f} s: "
        f"{', '.join(Path(f).name for f in info['files'])}")
    return {"cached": False, "seconds": seconds, **info}


def _process_context(mp):
    """Where task processes come from. The command line's process never starts a JAX backend,
    so it imports `rgflow.app._preload` and forks the tasks from itself: they share its imports
    (~200 MB less, measured, than a separate fork server beside it). A caller that has already
    run JAX computations (a notebook, the tests) must not fork itself: its tasks come from a
    fork server that imports `_preload` and never starts a backend."""
    try:
        from jax._src.xla_bridge import backends_are_initialized

        clean = not backends_are_initialized()
    except Exception:  # noqa: BLE001  (private JAX API moved: take the safe route)
        clean = False
    if clean and "fork" in mp.get_all_start_methods():
        import importlib

        importlib.import_module("rgflow.app._preload")
        return mp.get_context("fork")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["rgflow.app._preload"])
    return ctx


def _run_parallel(config, pending, n, out, cache, jobs, log, report) -> None:
    """Run the pending stages' tasks in forked worker processes (see `reproduce`)."""
    # Two or more tasks at once: each runs XLA's kernels on one thread (measured, quick profile,
    # 2 cores: 213 s instead of 245 s; the tasks already keep every core busy, and each process
    # would otherwise start a thread per core). The tasks inherit the variable when forked.
    flags = os.environ.get("XLA_FLAGS")
    if jobs > 1 and "xla_cpu_multi_thread_eigen" not in (flags or ""):
        os.environ["XLA_FLAGS"] = f"{flags or ''} --xla_cpu_multi_thread_eigen=false".strip()
    try:
        _run_tasks(config, pending, n, out, cache, jobs, log, report)
    finally:
        if flags is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = flags


def _run_tasks(config, pending, n, out, cache, jobs, log, report) -> None:
    import multiprocessing as mp
    import queue as queue_mod

    import jax

    out.mkdir(parents=True, exist_ok=True)
    tasks = []  # (task id, stage, config, label)
    for _, name, _ in pending:
        tasks += [(len(tasks) + k, *t) for k, t in enumerate(_tasks(name, config[name]))]
    ctx = _process_context(mp)
    from . import _worker  # noqa: PLC0415  (light: `_preload` imported the studies)

    q = ctx.Queue()
    x64 = bool(jax.config.jax_enable_x64)
    xla_cache = jax.config.jax_compilation_cache_dir  # the workers share this process's cache
    index = {name: i for i, name, _ in pending}
    markers = {name: m for _, name, m in pending}
    remaining = {name: sum(t[1] == name for t in tasks) for _, name, _ in pending}
    # longest tasks first (a split stage's hint is shared by its tasks)
    order = sorted(tasks, key=lambda t: -_COST_HINT.get(t[1], 30) / remaining[t[1]])
    results = {name: {} for _, name, _ in pending}
    started, running, throttles, task_start = {}, {}, {}, {}
    failure = None

    def start(task):
        tid, name, cfg, label = task
        if name not in started:
            started[name] = time.perf_counter()
            log(f"[{index[name]}/{n}] {STUDIES[name].TITLE} ...")
        prefix = f"{name}[{label}] " if label else f"{name} "
        throttles[tid] = _Throttle(log, prefix)
        proc = ctx.Process(target=_worker.run_task,
                           args=(q, tid, name, cfg, str(out), x64, xla_cache),
                           name=f"rgflow-{name}-{label or 'all'}")
        proc.start()
        running[tid] = (proc, task)
        task_start[tid] = time.perf_counter()

    def handle(msg):
        nonlocal failure
        kind, tid = msg[0], msg[1]
        if kind == "progress":
            throttles[tid](*msg[2:])
            return
        proc, (_, name, _, label) = running.pop(tid)
        proc.join()
        if kind == "error":
            failure = failure or (name, msg[2], msg[3], msg[4])
            return
        results[name][tid] = msg[2]
        if remaining[name] > 1 or len(results[name]) > 1:  # one task of a split stage
            _append_timing(cache, f"{name}[{label}]", time.perf_counter() - task_start[tid])
        remaining[name] -= 1
        if remaining[name] == 0:
            parts = [results[name][k] for k in sorted(results[name])]
            info = {"files": [f for p in parts for f in p["files"]],
                    "stems": [s for p in parts for s in p["stems"]]}
            report[name] = _finish_stage(name, config[name], markers[name], info,
                                         time.perf_counter() - started[name], cache, log)

    queue_ = list(order)
    try:
        while queue_ or running:
            while queue_ and len(running) < jobs:
                start(queue_.pop(0))
            try:
                handle(q.get(timeout=1.0))
                if failure is not None:
                    break
                continue
            except queue_mod.Empty:
                pass
            for tid, (proc, task) in list(running.items()):
                if proc.exitcode is not None:  # died without reporting (killed, out of memory)
                    try:
                        while True:
                            handle(q.get(timeout=0.5))
                    except queue_mod.Empty:
                        pass
                    if tid in running:
                        running.pop(tid)
                        failure = failure or (task[1], "RuntimeError",
                                              f"the worker process exited with code "
                                              f"{proc.exitcode} without a result (killed, or out "
                                              f"of memory?)", "")
            if failure is not None:
                break
    finally:  # after a failure the other running tasks are stopped (their stages rerun later)
        for proc, _ in running.values():
            proc.terminate()
            proc.join()
    if failure is not None:
        name, kind, message, tb = failure
        if tb and os.environ.get("RGFLOW_DEBUG"):
            log(tb.rstrip())
        exc = {"ValueError": ValueError, "TypeError": TypeError, "OSError": OSError,
               "KeyboardInterrupt": KeyboardInterrupt}.get(kind, RuntimeError)
        raise exc(f"stage `{name}` failed: {message}")


def _append_timing(cache: Path, name: str, seconds: float) -> None:
    """Wall times go to the untracked `<out>/.cache/timings.log`, never into the committed JSON
    or summary (so a rerun on a clean checkout leaves `git status` clean)."""
    import datetime

    cache.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(cache / "timings.log", "a") as fh:
        fh.write(f"{stamp} {name} {seconds:.1f} s\n")


def summary_status(row) -> str:
    """The status cell of one summary row (the study's 4th element, see `write_summary`)."""
    if len(row) == 3:
        # rows without a status of their own whose value reports a failed check (e.g. the
        # exponent studies write "FAILED (...)" or "no exponent: ..." per coupling)
        value = str(row[1])
        if "FAILED" in value or "no exponent" in value:
            return "**FAILED** (see value)"
        return "—"
    if len(row) not in (4, 5):
        raise ValueError(f"a summary row must have 3, 4 or 5 elements, got {row!r}")
    status = str(row[3])
    if status == "—":
        return "—"
    if status == "ok":
        return "ok"
    if not status.startswith("FAILED"):
        raise ValueError(f"a summary status must be 'ok' or 'FAILED: <reason>', got {status!r}")
    return f"**{status}**"


def write_summary(config: dict, out: Path, report: dict) -> Path:
    """`<out>/summary.md`: our numbers against what the paper and power counting predict, read
    from the JSON files the studies wrote.

    A study's `summary` returns rows `(quantity, rgflow value, expectation)` or
    `(quantity, rgflow value, expectation, status)` or `(..., status, check)` with `check` the
    rule the row was tested by (what, and its threshold; "none: ..." for rows that test nothing)
    and `status` either `"—"` (no check), `"ok"` (the fit or flow behind the number passed its
    own check) or `"FAILED: <reason with the number>"` (a fit that
    does not describe its data, a flow that departed from its check, a Monte Carlo value more
    than 4σ from the exact one, ...). The status column shows `ok`, the failure in bold, or `—`
    for rows without a status (3-tuples: numbers that are not the outcome of a check), and
    `**FAILED** (see value)` for a 3-tuple whose value reports a failed check.
    """
    rows = []
    for name in config["stages"]:
        study = STUDIES[name]
        try:
            results = {stem: json.loads((out / f"{stem}.json").read_text())
                       for stem in report[name]["stems"]}
            rows += [(*r[:3], summary_status(r), r[4] if len(r) > 4 else
                      ("not stated" if summary_status(r) == "ok" else "—"))
                     for r in study.summary(config[name], results)]
        except (OSError, KeyError, ValueError, TypeError) as e:
            rows.append((f"{study.TITLE}: summary unavailable", f"{type(e).__name__}: {e}", "",
                         "**FAILED: summary unavailable**", "—"))
    n_failed = sum(r[3].startswith("**FAILED") for r in rows)
    lines = ["# rgflow reproduction summary", "",
             "Generated by `rgflow reproduce`; every number is read from the JSON beside its "
             "figure. Status: `ok` = the check in the last column can fail and passed, "
             "**FAILED** = it did not (reason and number given), `—` = not the outcome of a "
             f"check. Failed rows: {n_failed}.", "",
             "| quantity | rgflow | paper / power counting | status | check (rule, threshold) |",
             "|---|---|---|---|---|"]
    cell = lambda x: str(x).replace("|", "\\|")  # noqa: E731  (a literal | would end the cell)
    lines += [f"| {cell(q)} | {cell(v)} | {cell(e)} | {cell(s)} | {cell(c)} |"
              for q, v, e, s, c in rows]
    path = out / "summary.md"
    save_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
