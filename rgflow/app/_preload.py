"""Imported once before `rgflow reproduce --jobs N` forks its task processes (by the command's own
process, or by a fork server when the caller has already started JAX; see
`reproduce._process_context`): the worker and every study module (matplotlib through them), so
that each forked task starts without importing anything (`rgflow.app._worker`)."""

from __future__ import annotations

import importlib

from ..studies import STUDIES
from . import _worker  # noqa: F401

for _name in STUDIES:
    importlib.import_module(f"rgflow.studies.{_name}")
