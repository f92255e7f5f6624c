"""The paper's figure studies, one module each (docs/layers.md).

Every study module exposes

- `TITLE`: one line;
- `SCHEMA`: `{key: validator}` of its configuration (`rgflow.studies._config`);
- `DEFAULTS`: `{"quick": {...}, "full": {...}}`, a value for every key;
- `run(config, *, progress=False) -> {file stem: JSON-able result}`; `progress` is `False`,
  `True` (tqdm bars) or a callable `report(desc, done, total)` (`rgflow.studies._progress`);
- `plot(result, stem) -> [paths]`: the figure of one result (PNG and PDF);
- `summary(config, results) -> [(quantity, rgflow value, expectation[, status])]`: rows of
  summary.md; the optional 4th element `status` is `"ok"` or `"FAILED: <reason with the
  number>"` (a fit that does not describe its data, a flow that left its check, a Monte Carlo
  value more than 4σ from the exact one); `rgflow.app.reproduce.write_summary` renders it in a
  status column (3-tuples show `—`: a number that is not the outcome of a check).

Optional:

- `SMALL`: a complete configuration (valid against `SCHEMA`) that runs in a few seconds;
  `tests/test_figures.py` renders every figure of the study from it and checks the PNGs are not
  empty (studies without `SMALL` are rendered from their quick profile in a slow test);
- `HELP`: `{key: help line}` for the script flags of non-common keys;
- `SPLIT = "nets"`: the networks of `config["nets"]` are independent (each seeds its own
  ensembles and writes its own files), so `run` with `nets=[n]` for every n gives exactly the
  results of one `run` with all of them; `rgflow reproduce` then runs one task per network
  (`tests/test_reproduce.py` checks the equality);
- a `"caption"` key in each result: one sentence saying what the figure tests.

`STUDIES` is the registry that `rgflow reproduce` and the scripts in `scripts/` read; studies
run in its order. Studies import the core library; the core never imports a study.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_MODULES = (
    "free_theory",
    "six_pt_prediction",
    "rg_lambda",
    "relevance",
    "connected_six_pt",
    "width_scaling",
    "local_vs_nonlocal",
    "frg_flow",
    "edgeworth",
    "layer_flow",
    "wilsonian_rg",
    "training",
    "shell_flow",
    "phi4_network",
    "wilsonian_shell",
    "network_shell",
)


class _Registry(dict):
    """name → study module, imported on first access (matplotlib loads only when needed)."""

    def __getitem__(self, name: str) -> ModuleType:
        if not dict.__contains__(self, name):
            if name not in _MODULES:
                raise KeyError(name)
            dict.__setitem__(self, name, importlib.import_module(f"{__name__}.{name}"))
        return dict.__getitem__(self, name)

    def __iter__(self):
        return iter(_MODULES)

    def __contains__(self, name) -> bool:
        return name in _MODULES

    def __len__(self) -> int:
        return len(_MODULES)

    def keys(self):
        return list(_MODULES)

    def items(self):
        return [(n, self[n]) for n in _MODULES]

    def values(self):
        return [self[n] for n in _MODULES]


STUDIES = _Registry()
