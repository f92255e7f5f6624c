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


def _run_study(name: str, config: dict, out: Path, progress: bool) -> dict:
    """Run one study, write `<stem>.json` and its figure for every result; returns
    `{"files": [...], "stems": [...]}`."""
    study = STUDIES[name]
    out.mkdir(parents=True, exist_ok=True)
    results = study.run(config, progress=progress)
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


def reproduce(config: dict, out: str | Path, *, force: bool = False, log=print,
              progress: bool = True) -> dict:
    """Run every selected study, reusing cached results; write `<out>/summary.md`.

    **Arguments:**

    - `config`: from `load_config`.
    - `out`: output folder for figures (PNG, PDF) and their JSON data.
    - `force`: ignore the cache.
    - `log`: where progress lines go.
    - `progress`: progress bars inside the studies.

    **Returns:** a dict study → {"cached": bool, "seconds": float, "files": [...]}.
    """
    out = Path(out)
    cache = out / ".cache"
    report = {}
    n = len(config["stages"])
    for i, name in enumerate(config["stages"], 1):
        study, scfg = STUDIES[name], config[name]
        marker = cache / f"{name}-{stage_hash(name, scfg)}.json"
        if not force and marker.exists():
            info = json.loads(marker.read_text())
            if all(Path(f).exists() for f in info["files"]):
                log(f"[{i}/{n}] {study.TITLE}: cached")
                report[name] = {"cached": True, "seconds": 0.0, **info}
                continue
        log(f"[{i}/{n}] {study.TITLE} ...")
        t0 = time.perf_counter()
        info = _run_study(name, scfg, out, progress)
        _release_memory()
        dt = time.perf_counter() - t0
        save_json(marker, {"stage": name, "config": scfg, **info, "seconds": dt})
        _append_timing(cache, name, dt)
        log(f"    done in {dt:.1f} s: {', '.join(Path(f).name for f in info['files'])}")
        report[name] = {"cached": False, "seconds": dt, **info}
    write_summary(config, out, report)
    return report


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
    if len(row) != 4:
        raise ValueError(f"a summary row must have 3 or 4 elements, got {row!r}")
    status = str(row[3])
    if status == "ok":
        return "ok"
    if not status.startswith("FAILED"):
        raise ValueError(f"a summary status must be 'ok' or 'FAILED: <reason>', got {status!r}")
    return f"**{status}**"


def write_summary(config: dict, out: Path, report: dict) -> Path:
    """`<out>/summary.md`: our numbers against what the paper and power counting predict, read
    from the JSON files the studies wrote.

    A study's `summary` returns rows `(quantity, rgflow value, expectation)` or
    `(quantity, rgflow value, expectation, status)` with `status` either `"ok"` (the fit or flow
    behind the number passed its own check) or `"FAILED: <reason with the number>"` (a fit that
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
            rows += [(*r[:3], summary_status(r)) for r in study.summary(config[name], results)]
        except (OSError, KeyError, ValueError, TypeError) as e:
            rows.append((f"{study.TITLE}: summary unavailable", f"{type(e).__name__}: {e}", "",
                         "**FAILED: summary unavailable**"))
    n_failed = sum(r[3].startswith("**FAILED") for r in rows)
    lines = ["# rgflow reproduction summary", "",
             "Generated by `rgflow reproduce`; every number is read from the JSON beside its "
             "figure. Status: `ok` = the fit or flow behind the number passed its check, "
             "**FAILED** = it did not (reason and number given), `—` = not the outcome of a "
             f"check. Failed rows: {n_failed}.", "",
             "| quantity | rgflow | paper / power counting | status |", "|---|---|---|---|"]
    cell = lambda x: str(x).replace("|", "\\|")  # noqa: E731  (a literal | would end the cell)
    lines += [f"| {cell(q)} | {cell(v)} | {cell(e)} | {cell(s)} |" for q, v, e, s in rows]
    path = out / "summary.md"
    save_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
