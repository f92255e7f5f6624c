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
        dt = time.perf_counter() - t0
        save_json(marker, {"stage": name, "config": scfg, **info, "seconds": dt})
        log(f"    done in {dt:.1f} s: {', '.join(Path(f).name for f in info['files'])}")
        report[name] = {"cached": False, "seconds": dt, **info}
    write_summary(config, out, report)
    return report


def write_summary(config: dict, out: Path, report: dict) -> Path:
    """`<out>/summary.md`: our numbers against what the paper and power counting predict, read
    from the JSON files the studies wrote."""
    rows = []
    for name in config["stages"]:
        study = STUDIES[name]
        try:
            results = {stem: json.loads((out / f"{stem}.json").read_text())
                       for stem in report[name]["stems"]}
            rows += study.summary(config[name], results)
        except (OSError, KeyError, ValueError, TypeError) as e:
            rows.append((f"{study.TITLE}: summary unavailable", f"{type(e).__name__}: {e}", ""))
    lines = ["# rgflow reproduction summary", "",
             "Generated by `rgflow reproduce`; every number is read from the JSON beside its "
             "figure.", "", "| quantity | rgflow | paper / power counting |", "|---|---|---|"]
    lines += [f"| {q} | {v} | {e} |" for q, v, e in rows]
    path = out / "summary.md"
    save_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
