"""The command line shared by every figure script (`scripts/<study>.py`): one flag vocabulary.

Every key of a study's configuration is a flag of the same name (`n_nets` → `--n-nets`), with a
help line; lists are comma-separated. The common keys keep one meaning everywhere:
`--net/--nets`, `--width/--widths`, `--d-in` (also for a list of input dimensions), `--source
{exact,mc}`, `--n-nets`, `--seed`, `--depth`; and every script takes `--profile {quick,full}`
(whose defaults it starts from) and `--out DIR` (where the JSON and the figures go).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .._io import save_json
from .._validate import find_non_finite
from . import STUDIES
from ._config import COMMON_HELP, validate

# a list key also answers to its singular form, and vice versa
_ALIASES = {"nets": "--net", "net": "--nets", "widths": "--width", "width": "--widths",
            "d_ins": "--d-in", "d_in": "--d-ins"}


class _Parser(argparse.ArgumentParser):
    """argparse with the one-line `error: ...` (exit 2) of every other failure of `main`."""

    def error(self, message):
        _fail(message)


def build_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of the study `name` (see the module docstring)."""
    study = STUDIES[name]
    doc = (study.__doc__ or study.TITLE).strip()
    p = _Parser(
        prog=f"scripts/{name}.py", description=f"{study.TITLE}.\n\n{doc}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="start from this profile's defaults (default: quick)")
    help_of = {**COMMON_HELP, **getattr(study, "HELP", {})}
    taken = {k.replace("_", "-") for k in study.SCHEMA}
    for key, validator in study.SCHEMA.items():
        flags = ["--" + key.replace("_", "-")]
        alias = _ALIASES.get(key)
        if alias and alias[2:] not in taken:
            flags = [alias] + flags if key == "d_ins" else flags + [alias]
        default = study.DEFAULTS["quick"][key]
        text = help_of.get(key, key.replace("_", " "))
        p.add_argument(*flags, dest=key, default=None, metavar=validator.metavar,
                       help=f"{text} (quick default: {_show(default)})")
    p.add_argument("--out", default="figures",
                   help="output folder for the JSON data and the figures (default: figures)")
    return p


def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "per net" if value is None else str(value)


def _fail(message: str):
    """A one-line usage error on stderr and exit code 2 (no traceback, nothing written)."""
    text = " ".join(str(message).split())
    print(f"error: {text}", file=sys.stderr)
    raise SystemExit(2)


# the errors a study reports as a bad configuration or a failed computation: library failures
# (a singular kernel, a degenerate eigenspace split, an overflow) are raised as ValueError by the
# library; LinAlgError, OverflowError and FloatingPointError are mapped here as a last resort
_USER_ERRORS = (ValueError, TypeError, np.linalg.LinAlgError, OverflowError, FloatingPointError,
                ZeroDivisionError)


def main(name: str, argv=None) -> dict:
    """Parse the flags, validate the configuration, run the study, write JSON + figures.

    Every bad flag, configuration value or library failure (ValueError, TypeError, LinAlgError,
    overflow) ends the script with a one-line `error: ...` on stderr and exit code 2; no result
    with NaN or inf is written (`rgflow._io.save_json` refuses it)."""
    study = STUDIES[name]
    p = build_parser(name)
    a = p.parse_args(argv)
    config = dict(study.DEFAULTS[a.profile])
    try:
        for key, validator in study.SCHEMA.items():
            text = getattr(a, key)
            if text is not None:
                value = validator.parse(text)
                if not validator.is_list and isinstance(value, list):
                    value = value[0]
                config[key] = value
        config = validate(study.SCHEMA, config)
    except _USER_ERRORS as e:
        _fail(e)
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _fail(f"--out {out}: {e.strerror}")
    from .._xla_cache import enable_compilation_cache

    enable_compilation_cache()
    t0 = time.perf_counter()
    try:
        results = study.run(config, progress=sys.stderr.isatty())
        # check every result before writing any of them (all or nothing)
        for stem, result in results.items():
            where = find_non_finite(result)
            if where is not None:
                raise ValueError(f"the result {stem}: {where} is not finite (NaN or inf)")
        for stem, result in results.items():
            save_json(out / f"{stem}.json", result)
            files = study.plot(result, out / stem)
            print(f"wrote {out / stem}.json, " + ", ".join(str(f) for f in files))
    except _USER_ERRORS as e:
        _fail(e)
    for row in study.summary(config, results):
        quantity, value, expected = row[:3]
        status = f"   {row[3]}" if len(row) > 3 and row[3] != "ok" else ""
        print(f"  {quantity}: {value}   [expected: {expected}]{status}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return results
