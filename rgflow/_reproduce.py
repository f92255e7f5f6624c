"""`rgflow reproduce`: every figure of the paper (and ours beyond it) from one TOML configuration.

The embedded default configuration has two profiles: `quick` (exact correlators plus small Monte
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ._io import save_json

DEFAULT_TOML = """
# rgflow reproduce: embedded default configuration.
# [quick.<stage>] and [full.<stage>] hold the settings of each stage for the two profiles.

[quick.free_theory]
nets = ["erf", "relu", "gauss"]
d_in = 1
widths = [2, 3, 4, 5, 10, 20, 50, 100, 500, 1000]
n_nets = 50000
seed = 0

[full.free_theory]
nets = ["erf", "relu", "gauss"]
d_in = 1
widths = [2, 3, 4, 5, 10, 20, 50, 100, 500, 1000]
n_nets = 1000000
seed = 0

[quick.six_pt_prediction]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "exact"
n_nets = 100000

[full.six_pt_prediction]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "mc"
n_nets = 1000000

[quick.rg_lambda]
nets = ["erf", "relu", "gauss"]
d_ins = [1, 2, 3]
source = "exact"
n_nets = 200000

[full.rg_lambda]
nets = ["erf", "relu", "gauss"]
d_ins = [1, 2, 3]
source = "mc"
n_nets = 1000000

[quick.relevance]
nets = ["erf", "relu", "gauss"]
source = "exact"
n_nets = 200000

[full.relevance]
nets = ["erf", "relu", "gauss"]
source = "mc"
n_nets = 1000000

[quick.connected_six_pt]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "exact"
n_nets = 50000

[full.connected_six_pt]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "mc"
n_nets = 1000000

[quick.width_scaling]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "exact"
n_nets = 50000

[full.width_scaling]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "mc"
n_nets = 1000000

[quick.local_vs_nonlocal]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "exact"
n_nets = 100000

[full.local_vs_nonlocal]
nets = ["erf", "relu", "gauss"]
d_in = 1
source = "mc"
n_nets = 1000000

[quick.frg_flow]
width = 10000
d_in = 3
sigma_ws = [0.5, 1.0, 1.5, 2.0]
max_order = 8

[full.frg_flow]
width = 10000
d_in = 3
sigma_ws = [0.5, 1.0, 1.5, 2.0]
max_order = 12
"""

NETS = ("erf", "relu", "gauss")


# --------------------------------------------------------------------------- validation ---


def _fail(key: str, message: str):
    raise ValueError(f"configuration key `{key}`: {message}")


def _int(key, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(key, f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        _fail(key, f"must be >= {minimum}, got {value}")
    return value


def _int_list(key, value, minimum=None):
    if not isinstance(value, list) or not value:
        _fail(key, f"must be a non-empty list of integers, got {value!r}")
    return [_int(f"{key}[{i}]", v, minimum) for i, v in enumerate(value)]


def _choice_list(key, value, allowed):
    if not isinstance(value, list) or not value:
        _fail(key, f"must be a non-empty list drawn from {list(allowed)}, got {value!r}")
    for v in value:
        if v not in allowed:
            _fail(key, f"must contain only {list(allowed)}, got {v!r}")
    return value


def _choice(key, value, allowed):
    if value not in allowed:
        _fail(key, f"must be one of {list(allowed)}, got {value!r}")
    return value


def _float_list(key, value, positive=False):
    if not isinstance(value, list) or not value:
        _fail(key, f"must be a non-empty list of numbers, got {value!r}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            _fail(f"{key}[{i}]", f"must be a number, got {v!r}")
        if positive and not v > 0:
            _fail(f"{key}[{i}]", f"must be > 0, got {v!r}")
        out.append(float(v))
    return out


# ------------------------------------------------------------------------------- stages ---


@dataclass(frozen=True)
class Stage:
    """One figure of the pipeline: its configuration schema, runner and summary rows."""

    name: str
    title: str
    schema: dict[str, Callable]  # key -> validator(full_key, value) -> value
    run: Callable[[dict, Path], list[str]]  # (config, out_dir) -> files written
    summary: Callable[[dict, Path], list[tuple]] | None = None  # rows for summary.md


def _run_free_theory(cfg: dict, out: Path) -> list[str]:
    from ._free_theory import free_theory, plot_free_theory

    res = free_theory(cfg["nets"], d_in=cfg["d_in"], widths=cfg["widths"], n_nets=cfg["n_nets"],
                      seed=cfg["seed"], progress=True)
    stem = out / f"free_theory_d{cfg['d_in']}"
    save_json(f"{stem}.json", res)
    files = plot_free_theory(res, stem)
    return [f"{stem}.json"] + [str(f) for f in files]


def _summary_free_theory(cfg: dict, out: Path) -> list[tuple]:
    data = json.loads((out / f"free_theory_d{cfg['d_in']}.json").read_text())
    rows = []
    for name, d in data["nets"].items():
        for n, expect in (("4", "−1"), ("6", "−1 (→ −2 connected)")):
            mc, ex = d["slopes"][n], d["exact_slopes"][n]
            rows.append((f"free theory: log m_{n} vs log N slope, {name}",
                         _fmt(mc) + f" (MC), {_fmt(ex)} (exact)", expect))
        rows.append((f"free theory: m_2 at background, {name}",
                     str(d["m2_consistent_with_background"]), "True"))
    return rows


def _run_frg(cfg: dict, out: Path) -> list[str]:
    from ._frg_study import frg_study, plot_frg

    res = frg_study(width=cfg["width"], d_in=cfg["d_in"], sigma_ws=cfg["sigma_ws"],
                    max_order=cfg["max_order"])
    stem = out / "frg_flow"
    save_json(f"{stem}.json", res)
    return [f"{stem}.json"] + [str(f) for f in plot_frg(res, stem)]


def _summary_frg(cfg: dict, out: Path) -> list[tuple]:
    data = json.loads((out / "frg_flow.json").read_text())
    if "nu" not in data:
        return []
    top = str(max(int(k) for k in data["nu"]))
    lit = data.get("literature", {})
    first_regular = next((w["width"] for w in data["width_scan"] if w["flow_regular"]), None)
    return [
        (f"LPA Wilson–Fisher ν, minimum expansion order {top}", _fmt(data["nu"][top], 6),
         _fmt(lit.get("nu"), 6)),
        (f"LPA Wilson–Fisher ω, minimum expansion order {top}", _fmt(data["omega"][top], 6),
         _fmt(lit.get("omega"), 6)),
        ("LPA ν, ω on a 64-point Chebyshev grid",
         f"{data['grid']['nu']:.10f}, {data['grid']['omega']:.10f}",
         f"{_fmt(lit.get('nu'), 10)}, {_fmt(lit.get('omega'), 10)}"),
        ("Gauss-net (σ_W = 1): smallest width with a regular LPA flow", str(first_regular),
         "(beyond the paper)"),
    ]


def _run_six_pt(cfg: dict, out: Path) -> list[str]:
    from ._six_pt import run_six_pt_prediction

    files = []
    for name in cfg["nets"]:
        run_six_pt_prediction(name, d_in=cfg["d_in"], source=cfg["source"], n_nets=cfg["n_nets"],
                              out=out)
        files += [str(out / f"six_pt_prediction_{name}.{ext}") for ext in ("json", "png", "pdf")]
    return files


def _summary_six_pt(cfg: dict, out: Path) -> list[tuple]:
    rows = []
    for name in cfg["nets"]:
        d = json.loads((out / f"six_pt_prediction_{name}.json").read_text())
        rows.append((f"6-pt prediction ({cfg['source']}), {name} N={d['width']}: G6_GP/G6 → "
                     "(G6_GP + O(λ))/G6 at Λ = 7 … 1e5",
                     f"{d['gp_ratio'][0]:.4f} → {d['lambda_ratio'][0]:.4f} … "
                     f"{d['lambda_ratio'][-1]:.4f} (Λ-spread {d['prediction_spread']:.1e})",
                     "closer to 1, Λ-independent where one local λ describes ΔG4"))
    return rows


def _run_rg_lambda(cfg: dict, out: Path) -> list[str]:
    from ._rg_lambda import plot_rg_lambda, rg_lambda

    files = []
    for name in cfg["nets"]:
        for d in cfg["d_ins"]:
            res = rg_lambda(name, d, source=cfg["source"], n_nets=cfg["n_nets"])
            stem = out / f"rg_lambda_{name}_d{d}"
            save_json(f"{stem}.json", res)
            files += [f"{stem}.json"] + [str(f) for f in
                                         plot_rg_lambda(res, stem, formats=("png", "pdf"))]
    return files


def _summary_rg_lambda(cfg: dict, out: Path) -> list[tuple]:
    rows = []
    for name in cfg["nets"]:
        for d in cfg["d_ins"]:
            r = json.loads((out / f"rg_lambda_{name}_d{d}.json").read_text())
            rows.append((f"λ(Λ) log–log slope ({cfg['source']}), {name} d_in={d}: element mean "
                         "over all 21 cutoffs / over Λ ≥ 10⁴ / least-squares λ over Λ ≥ 10⁴; "
                         "max relative gap flow vs refits",
                         f"{_fmt(r['slope'], 4)} (R² {_fmt(r['r2'], 4)}) / "
                         f"{_fmt(r['slope_window'], 4)} / {_fmt(r['slope_ls_window'], 4)}; "
                         f"{r['flow_max_rel_dev']:.1e}",
                         f"{_fmt(r['predicted_slope'], 0)} (power counting, asymptotic)"))
    return rows


def _run_relevance(cfg: dict, out: Path) -> list[str]:
    from ._relevance_study import plot_relevance, relevance_study

    files = []
    for name in cfg["nets"]:
        res = relevance_study(name, source=cfg["source"], n_nets=cfg["n_nets"])
        stem = out / f"relevance_{name}_d{res['d_in']}"
        save_json(f"{stem}.json", res)
        files += [f"{stem}.json"] + [str(f) for f in
                                     plot_relevance(res, stem, formats=("png", "pdf"))]
    return files


def _summary_relevance(cfg: dict, out: Path) -> list[tuple]:
    rows = []
    for f in sorted(out.glob("relevance_*_d*.json")):
        r = json.loads(f.read_text())
        if r.get("net") not in cfg["nets"] or r.get("error"):
            continue
        ex = ", ".join(f"{k} {v:+.3f} ({c})" for (k, v), c in
                       zip(r["scaling_exponents"].items(), r["classification"]))
        rows.append((f"scaling exponents θ (g ∝ Λ^θ), {r['net']} d_in={r['d_in']}", ex,
                     "higher operators less relevant than λ"))
    return rows


def _run_connected_six(cfg: dict, out: Path) -> list[str]:
    from ._connected_six import connected_six_scaling, plot_connected_six

    files = []
    for name in cfg["nets"]:
        res = connected_six_scaling(name, d_in=cfg["d_in"], source=cfg["source"],
                                    n_nets=cfg["n_nets"], progress=True)
        stem = out / f"connected_six_pt_{name}_d{cfg['d_in']}"
        save_json(f"{stem}.json", res)
        files += [f"{stem}.json"] + [str(f) for f in plot_connected_six(res, stem)]
    return files


def _summary_connected_six(cfg: dict, out: Path) -> list[tuple]:
    rows = []
    for name in cfg["nets"]:
        d = json.loads((out / f"connected_six_pt_{name}_d{cfg['d_in']}.json").read_text())
        rows.append((f"connected 6-pt slope in log N ({cfg['source']}), {name}",
                     f"{_fmt(d['slope'])} ± {_fmt(d['slope_err'])}", "−2"))
    return rows


def _run_width_scaling(cfg: dict, out: Path) -> list[str]:
    from ._width_scaling import plot_width_scaling, width_scaling

    files = []
    for name in cfg["nets"]:
        res = width_scaling(name, d_in=cfg["d_in"], source=cfg["source"], n_nets=cfg["n_nets"],
                            progress=cfg["source"] == "mc")
        stem = out / f"width_scaling_{name}_d{cfg['d_in']}"
        save_json(f"{stem}.json", res)
        files += [f"{stem}.json"] + [str(f) for f in plot_width_scaling(res, stem)]
    return files


def _summary_width_scaling(cfg: dict, out: Path) -> list[tuple]:
    rows = []
    for name in cfg["nets"]:
        d = json.loads((out / f"width_scaling_{name}_d{cfg['d_in']}.json").read_text())
        for k, e in (("lambda", "−1"), ("kappa", "−2")):
            rows.append((f"{k}(N) exponent ({cfg['source']}), {name}",
                         f"{_fmt(d[f'{k}_exponent'], 6)} ± {_fmt(d[f'{k}_exponent_err'], 2)}", e))
    return rows


def _run_local_vs_nonlocal(cfg: dict, out: Path) -> list[str]:
    from ._operator_choice import compare_operators, plot_operator_choice, translation_breaking

    res = {"d_in": cfg["d_in"], "source": cfg["source"], "nets": {}, "breaking": {}}
    for name in cfg["nets"]:
        res["nets"][name] = compare_operators(name, d_in=cfg["d_in"], source=cfg["source"],
                                              n_nets=cfg["n_nets"])
        res["breaking"][name] = translation_breaking(name, d_in=cfg["d_in"])
    stem = out / f"local_vs_nonlocal_d{cfg['d_in']}"
    save_json(f"{stem}.json", res)
    return [f"{stem}.json"] + [str(f) for f in plot_operator_choice(res, stem)]


def _summary_local_vs_nonlocal(cfg: dict, out: Path) -> list[tuple]:
    d = json.loads((out / f"local_vs_nonlocal_d{cfg['d_in']}.json").read_text())
    rows = []
    for name, r in d["nets"].items():
        cells = "; ".join(f"{t['operators']}: χ²/dof {t['chi2_dof']:.3g}, held-out err "
                          f"{t['test_error']:.2g}" for t in r["table"])
        rows.append((f"operator choice, {name} N={r['width']}", cells,
                     "constant λ suffices for Gauss-net; Erf/ReLU need functions"))
    return rows


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}f}"


_NETS_SOURCE_SCHEMA = {
    "nets": lambda k, v: _choice_list(k, v, NETS),
    "d_in": lambda k, v: _choice(k, v, (1, 2, 3)),
    "source": lambda k, v: _choice(k, v, ("exact", "mc")),
    "n_nets": lambda k, v: _int(k, v, 100),
}

STAGES: dict[str, Stage] = {
    "free_theory": Stage(
        "free_theory", "Free-theory check (HMS fig. 1)",
        {"nets": lambda k, v: _choice_list(k, v, NETS),
         "d_in": lambda k, v: _choice(k, v, (1, 2, 3)),
         "widths": lambda k, v: _int_list(k, v, 1),
         "n_nets": lambda k, v: _int(k, v, 100),
         "seed": lambda k, v: _int(k, v, 0)},
        _run_free_theory, _summary_free_theory,
    ),
    "six_pt_prediction": Stage(
        "six_pt_prediction", "The 6-pt prediction from λ(Λ) (HMS eq. 3.37)",
        _NETS_SOURCE_SCHEMA,
        _run_six_pt, _summary_six_pt,
    ),
    "rg_lambda": Stage(
        "rg_lambda", "λ(Λ): refits, power counting and the diffrax flow (HMS fig. 3)",
        {"nets": lambda k, v: _choice_list(k, v, NETS), "d_ins": lambda k, v: _choice_list(k, v, (1, 2, 3)),
         "source": lambda k, v: _choice(k, v, ("exact", "mc")), "n_nets": lambda k, v: _int(k, v, 100)},
        _run_rg_lambda, _summary_rg_lambda,
    ),
    "relevance": Stage(
        "relevance", "Relevance of λ, λ2, κ, λ_NL (beyond the paper)",
        {"nets": lambda k, v: _choice_list(k, v, NETS),
         "source": lambda k, v: _choice(k, v, ("exact", "mc")), "n_nets": lambda k, v: _int(k, v, 100)},
        _run_relevance, _summary_relevance,
    ),
    "connected_six_pt": Stage(
        "connected_six_pt", "Connected 6-pt function against width (HMS fig. 2)",
        _NETS_SOURCE_SCHEMA,
        _run_connected_six, _summary_connected_six,
    ),
    "width_scaling": Stage(
        "width_scaling", "Fitted couplings against width: the 1/N story",
        _NETS_SOURCE_SCHEMA,
        _run_width_scaling, _summary_width_scaling,
    ),
    "local_vs_nonlocal": Stage(
        "local_vs_nonlocal", "Operator choice: constants vs functions (HMS §3.4)",
        _NETS_SOURCE_SCHEMA,
        _run_local_vs_nonlocal, _summary_local_vs_nonlocal,
    ),
    "frg_flow": Stage(
        "frg_flow", "Non-perturbative LPA flow (beyond the paper)",
        {"width": lambda k, v: _int(k, v, 1),
         "d_in": lambda k, v: _choice(k, v, (3,)),
         "sigma_ws": lambda k, v: _float_list(k, v, positive=True),
         "max_order": lambda k, v: _int(k, v, 3)},
        _run_frg, _summary_frg,
    ),
}


def register_stage(stage: Stage, defaults: dict[str, dict]) -> None:
    """Add a stage with its default settings per profile (`{"quick": {...}, "full": {...}}`)."""
    STAGES[stage.name] = stage
    _EXTRA_DEFAULTS[stage.name] = defaults


_EXTRA_DEFAULTS: dict[str, dict] = {}


# ------------------------------------------------------------------------------ config ---


def default_config(profile: str) -> dict:
    """The embedded configuration of `profile` ("quick" or "full")."""
    _choice("profile", profile, ("quick", "full"))
    base = tomllib.loads(DEFAULT_TOML)[profile]
    for name, defaults in _EXTRA_DEFAULTS.items():
        base.setdefault(name, copy.deepcopy(defaults[profile]))
    return base


def load_config(path: str | Path | None, profile: str = "quick") -> dict:
    """The validated configuration: the profile's defaults overridden by the TOML file `path`.

    The file may contain `[<stage>]` tables (overriding the chosen profile) and a top-level
    `stages = [...]` list selecting which stages run. Raises `ValueError` naming the bad key.
    """
    cfg = default_config(profile)
    stages = list(STAGES)
    if path is not None:
        try:
            user = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"cannot read configuration file {path}: {e}") from e
        if "stages" in user:
            stages = _choice_list("stages", user.pop("stages"), list(STAGES))
        for name, table in user.items():
            if name not in STAGES:
                _fail(name, f"unknown stage; known stages are {list(STAGES)}")
            if not isinstance(table, dict):
                _fail(name, "must be a table of settings")
            for k, v in table.items():
                if k not in STAGES[name].schema:
                    _fail(f"{name}.{k}", f"unknown key; known keys are {list(STAGES[name].schema)}")
                cfg[name][k] = v
    for name in stages:
        for k, check in STAGES[name].schema.items():
            if k not in cfg[name]:
                _fail(f"{name}.{k}", "missing")
            cfg[name][k] = check(f"{name}.{k}", cfg[name][k])
    cfg["stages"] = stages
    return cfg


def stage_hash(name: str, stage_cfg: dict) -> str:
    from . import __version__

    blob = json.dumps({"stage": name, "config": stage_cfg, "version": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- running ---


def reproduce(config: dict, out: str | Path, *, force: bool = False, log=print) -> dict:
    """Run every selected stage, reusing cached results; write `<out>/summary.md`.

    **Arguments:**

    - `config`: from `load_config`.
    - `out`: output folder for figures (PNG, PDF) and their JSON data.
    - `force`: ignore the cache.

    **Returns:** a dict stage → {"cached": bool, "seconds": float, "files": [...]}.
    """
    out = Path(out)
    cache = out / ".cache"
    report = {}
    for i, name in enumerate(config["stages"], 1):
        stage, scfg = STAGES[name], config[name]
        marker = cache / f"{name}-{stage_hash(name, scfg)}.json"
        if not force and marker.exists():
            files = json.loads(marker.read_text())["files"]
            if all(Path(f).exists() for f in files):
                log(f"[{i}/{len(config['stages'])}] {stage.title}: cached")
                report[name] = {"cached": True, "seconds": 0.0, "files": files}
                continue
        log(f"[{i}/{len(config['stages'])}] {stage.title} ...")
        t0 = time.perf_counter()
        files = stage.run(scfg, out)
        dt = time.perf_counter() - t0
        save_json(marker, {"stage": name, "config": scfg, "files": files, "seconds": dt})
        log(f"    done in {dt:.1f} s: {', '.join(Path(f).name for f in files)}")
        report[name] = {"cached": False, "seconds": dt, "files": files}
    write_summary(config, out)
    return report


def write_summary(config: dict, out: Path) -> Path:
    """`<out>/summary.md`: our numbers against what the paper and power counting predict."""
    rows = []
    for name in config["stages"]:
        stage = STAGES[name]
        if stage.summary is not None:
            try:
                rows += stage.summary(config[name], out)
            except (OSError, KeyError, ValueError) as e:
                rows.append((f"{stage.title}: summary unavailable", str(e), ""))
    lines = ["# rgflow reproduction summary", "",
             "Generated by `rgflow reproduce`; every number is read from the JSON beside its "
             "figure.", "", "| quantity | rgflow | paper / power counting |", "|---|---|---|"]
    lines += [f"| {q} | {v} | {e} |" for q, v, e in rows]
    path = out / "summary.md"
    from ._io import save_bytes

    save_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
