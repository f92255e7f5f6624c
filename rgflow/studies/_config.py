"""Validators for study configurations (TOML tables and script flags share them).

Each validator is a callable `v(key, value) -> value` that raises `ValueError` naming `key`, and
has `parse(text)`, which turns a command-line string into the value it validates (lists are
comma-separated).
"""

from __future__ import annotations

import math


def fail(key: str, message: str):
    raise ValueError(f"configuration key `{key}`: {message}")


class Validator:
    """Base class: `__call__(key, value)` validates, `parse(text)` reads a command-line string."""

    is_list = False
    metavar = "VALUE"

    def __call__(self, key, value):  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, text: str):
        return text


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class integer(Validator):
    """An integer (not a bool, not a float), optionally bounded."""

    metavar = "INT"

    def __init__(self, minimum: int | None = None, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def __call__(self, key, value):
        if not _is_int(value):
            fail(key, f"must be an integer, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            fail(key, f"must be >= {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            fail(key, f"must be <= {self.maximum}, got {value}")
        return value

    def parse(self, text):
        try:
            return int(text)
        except ValueError:
            return text  # rejected with the key's name by __call__


class real(Validator):
    """A finite real number, optionally bounded below or positive."""

    metavar = "X"

    def __init__(self, minimum: float | None = None, positive: bool = False):
        self.minimum, self.positive = minimum, positive

    def __call__(self, key, value):
        if not _is_real(value) or not math.isfinite(value):
            fail(key, f"must be a finite number, got {value!r}")
        if self.positive and not value > 0:
            fail(key, f"must be > 0, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            fail(key, f"must be >= {self.minimum}, got {value!r}")
        return float(value)

    def parse(self, text):
        try:
            return float(text)
        except ValueError:
            return text


class boolean(Validator):
    """true or false."""

    metavar = "BOOL"

    def __call__(self, key, value):
        if not isinstance(value, bool):
            fail(key, f"must be true or false, got {value!r}")
        return value

    def parse(self, text):
        return {"true": True, "1": True, "yes": True, "false": False, "0": False,
                "no": False}.get(str(text).lower(), text)


class choice(Validator):
    """One of a fixed set of values."""

    def __init__(self, *allowed):
        self.allowed = allowed
        self.metavar = "{" + ",".join(map(str, allowed)) + "}"

    def __call__(self, key, value):
        if isinstance(value, bool) or value not in self.allowed:
            fail(key, f"must be one of {list(self.allowed)}, got {value!r}")
        return value

    def parse(self, text):
        for a in self.allowed:
            if str(a) == text:
                return a
        return text


class _list(Validator):
    is_list = True

    def __init__(self, item: Validator):
        self.item = item
        self.metavar = f"{item.metavar}[,...]"

    def __call__(self, key, value):
        if not isinstance(value, list) or not value:
            fail(key, f"must be a non-empty list, got {value!r}")
        return [self.item(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def parse(self, text):
        return [self.item.parse(t.strip()) for t in str(text).split(",") if t.strip()]


def choice_list(*allowed) -> Validator:
    """A non-empty list of values from `allowed`."""
    return _list(choice(*allowed))


def int_list(minimum: int | None = None) -> Validator:
    """A non-empty list of integers >= `minimum`."""
    return _list(integer(minimum))


def float_list(positive: bool = False) -> Validator:
    """A non-empty list of finite numbers (> 0 if `positive`)."""
    return _list(real(positive=positive))


NETS = ("erf", "relu", "gauss")

# The shared vocabulary: help lines of the common keys (scripts and TOML use the same names).
COMMON_HELP = {
    "nets": "networks: comma list of erf, relu, gauss",
    "net": "network: erf, relu or gauss",
    "widths": "hidden widths N (comma list)",
    "width": "hidden width N (default: the study's per-net width)",
    "d_in": "input dimension d_in",
    "d_ins": "input dimensions d_in (comma list of 1, 2, 3)",
    "source": "correlators from 'exact' finite-width theory or 'mc' (Monte Carlo)",
    "n_nets": "networks in each Monte Carlo ensemble",
    "seed": "seed of the jax.random key",
    "depth": "hidden layers L of a deep MLP (1 = the one-layer nets of HMS)",
}


def validate(schema: dict, config: dict, prefix: str = "") -> dict:
    """Validate every key of `config` against `schema` (unknown or missing keys are errors)."""
    out = {}
    for k in config:
        if k not in schema:
            fail(f"{prefix}{k}", f"unknown key; known keys are {list(schema)}")
    for k, check in schema.items():
        if k not in config:
            fail(f"{prefix}{k}", "missing")
        out[k] = check(f"{prefix}{k}", config[k])
    return out


class optional(Validator):
    """`None` (the study's default) or a value accepted by `inner`."""

    def __init__(self, inner: Validator):
        self.inner = inner
        self.is_list = inner.is_list
        self.metavar = inner.metavar

    def __call__(self, key, value):
        return None if value is None else self.inner(key, value)

    def parse(self, text):
        return self.inner.parse(text)


SEED = integer(0, 2**63 - 1)
