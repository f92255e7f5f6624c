"""Checkpoints of running block sums, so a long measurement resumes where it stopped.

`rgflow.measure(..., checkpoint=path)` saves, after every round of blocks, the per-block sums and
sums of squares of all completed blocks plus a fingerprint of the configuration (network, inputs,
n_nets, n_blocks, key, orders, dtype, file format). Writes are atomic (temporary file + rename),
so a run killed at any instant leaves either the previous or the new checkpoint. Resuming
recomputes only the missing blocks; since every block is a deterministic function of its network
indices and the totals are summed in block order, a resumed run returns bit-for-bit the numbers of
an uninterrupted one, on any number of devices.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import types
import zipfile
from pathlib import Path

import jax
import numpy as np

from ._io import save_npz

FORMAT = 3  # 2: per-block sums of squares; 3: callables identified by their code


def fingerprint(**config) -> str:
    """A stable hash of a run's configuration (network, inputs, sizes, key, orders).

    Values are identified by content, not by `repr`: arrays by dtype, shape and bytes; Equinox
    modules and dataclasses field by field; Python callables (a `GenericNet` activation) by
    module, qualified name and a hash of their code (bytecode, constants, names), closure
    values, defaults and the simple global values they read — so two different lambdas never
    share a checkpoint, while the same function resumes across processes.

    **Raises:** `ValueError` for a callable that cannot be identified (e.g. a callable object
    whose repr only shows a memory address).
    """
    h = hashlib.sha256(f"format={FORMAT}".encode())
    for name in sorted(config):
        value = config[name]
        if name == "key":
            value = np.asarray(jax.random.key_data(value))
        h.update(name.encode() + b"=" + _identity(value, name).encode() + b";")
    return h.hexdigest()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _identity(value, where: str, depth: int = 0) -> str:
    """A content string for `value` (see `fingerprint`); `where` names it in errors."""
    if depth > 12:
        raise ValueError(f"`{where}` is nested too deeply to identify for a checkpoint.")
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            value = jax.random.key_data(value)
        arr = np.asarray(value)
        return f"array:{arr.dtype}:{arr.shape}:{_digest(arr.tobytes())}"
    if isinstance(value, (tuple, list)):
        inner = ",".join(_identity(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        inner = ",".join(f"{k!r}:{_identity(v, f'{where}[{k!r}]', depth + 1)}" for k, v in items)
        return f"dict({inner})"
    if isinstance(value, type):
        return f"type:{value.__module__}.{value.__qualname__}"
    if dataclasses.is_dataclass(value):  # Equinox modules are dataclasses
        fields = ",".join(
            f"{f.name}={_identity(getattr(value, f.name, None), f'{where}.{f.name}', depth + 1)}"
            for f in dataclasses.fields(value)
        )
        return f"{type(value).__module__}.{type(value).__qualname__}({fields})"
    if isinstance(value, functools.partial):
        return (f"partial({_identity(value.func, where, depth + 1)},"
                f"{_identity(value.args, where, depth + 1)},"
                f"{_identity(value.keywords, where, depth + 1)})")
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if callable(value):
        return _callable_identity(value, where, depth)
    text = repr(value)
    if " at 0x" in text:
        raise ValueError(f"`{where}` ({text}) cannot be identified for a checkpoint.")
    return f"{type(value).__qualname__}:{text}"


def _code_identity(code: types.CodeType) -> str:
    consts = [(_code_identity(c) if isinstance(c, types.CodeType) else repr(c))
              for c in code.co_consts]
    return _digest(code.co_code + repr((consts, code.co_names, code.co_varnames,
                                        code.co_freevars)).encode())


def _global_names(code: types.CodeType) -> set:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _global_names(c)
    return names


def _callable_identity(fn, where: str, depth: int) -> str:
    name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    target = fn
    while not hasattr(target, "__code__") and hasattr(target, "__wrapped__"):
        target = target.__wrapped__  # jax.jit / functools.wraps wrappers
    code = getattr(target, "__code__", None)
    if code is None:
        # builtins, NumPy ufuncs, jitted library functions: identified by module + name,
        # provided their repr carries no memory address (instances of user classes do)
        text = repr(fn)
        if " at 0x" in text and not hasattr(fn, "__qualname__"):
            raise ValueError(
                f"`{where}` ({text}) cannot be identified for a checkpoint; use a plain Python "
                "function (def or lambda) or a named activation, or run without `checkpoint`."
            )
        return f"callable:{name}:{type(fn).__qualname__}"
    parts = [name, _code_identity(code)]
    cells = getattr(target, "__closure__", None) or ()
    for var, cell in zip(code.co_freevars, cells):
        try:
            contents = cell.cell_contents
        except ValueError:  # empty cell
            contents = None
        parts.append(f"{var}={_identity(contents, f'{where} (closure {var})', depth + 1)}")
    parts.append(_identity(getattr(target, "__defaults__", None), where, depth + 1))
    parts.append(_identity(getattr(target, "__kwdefaults__", None), where, depth + 1))
    glb = getattr(target, "__globals__", {})
    for g in sorted(_global_names(code)):
        if g in glb:
            v = glb[g]
            if isinstance(v, types.ModuleType):
                parts.append(f"{g}=module:{v.__name__}")
            elif callable(v):  # referenced functions: by name (their own globals not followed)
                parts.append(f"{g}=callable:{getattr(v, '__module__', None)}."
                             f"{getattr(v, '__qualname__', type(v).__qualname__)}")
            else:
                parts.append(f"{g}={_identity(v, f'{where} (global {g})', depth + 1)}")
    return "function(" + ";".join(parts) + ")"


class _Foreign(Exception):
    pass


class BlockCheckpoint:
    """Saves `(blocks_done, sums, squares)` atomically after each round; restores them.

    `sums[n]` and `squares[n]` are `(n_blocks, T_n)` arrays whose first `blocks_done` rows are
    filled.
    """

    def __init__(self, path: Path, digest: str):
        self.path, self.digest = path, digest

    @classmethod
    def open(cls, path, **config) -> BlockCheckpoint | None:
        if path is None:
            return None
        return cls(Path(path), fingerprint(**config))

    def restore(self, sums: dict, squares: dict) -> int:
        """Fill `sums`/`squares` from the file if it exists; return the number of blocks done."""
        if self.path.is_dir():
            raise ValueError(f"`checkpoint` {self.path} is a directory; give a file path.")
        if not self.path.exists():
            return 0
        try:
            with np.load(self.path, allow_pickle=False) as data:
                digest = str(data["digest"])
                if digest != self.digest:
                    raise _Foreign()
                done = int(data["done"])
                loaded = {}
                for n in sums:
                    loaded[n] = (np.asarray(data[f"sums_{n}"]), np.asarray(data[f"squares_{n}"]))
        except _Foreign:
            raise ValueError(
                f"`checkpoint` {self.path} belongs to a different configuration (network, "
                "activation code, inputs, n_nets, n_blocks, key, orders, dtype or format); remove "
                "it or pick another path."
            ) from None
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"`checkpoint` {self.path} is not a readable rgflow checkpoint (truncated or "
                f"foreign file: {type(e).__name__}: {e}); remove it or pick another path."
            ) from None
        for n, (s, q) in loaded.items():
            if s.shape != sums[n].shape or q.shape != squares[n].shape or not 0 <= done <= len(s):
                raise ValueError(f"`checkpoint` {self.path} is inconsistent (shapes or block "
                                 "count); remove it or pick another path.")
            sums[n][...] = s
            squares[n][...] = q
        return done

    def save(self, done: int, sums: dict, squares: dict) -> None:
        arrays = {f"sums_{n}": v for n, v in sums.items()}
        arrays |= {f"squares_{n}": v for n, v in squares.items()}
        save_npz(self.path, digest=np.asarray(self.digest), done=np.asarray(done), **arrays)
