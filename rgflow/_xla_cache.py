"""The persistent XLA compilation cache used by rgflow's commands.

A first run of an rgflow command spends most of its time compiling XLA programs: the quick
`rgflow reproduce` compiles ~4000 of them, most of them small and shared between its
worker processes. The commands (`rgflow ...`, `scripts/*.py`) therefore switch on JAX's
persistent compilation cache in a user cache folder, for every program however quick to
compile; importing the library changes nothing (call `enable_compilation_cache` yourself).

The folder is `$RGFLOW_XLA_CACHE` if set (`0`, `off`, `no` or `false` switch the cache off),
else `$XDG_CACHE_HOME/rgflow/xla`, else `~/.cache/rgflow/xla`. A cached program is the very
executable a fresh compilation would give (JAX keys entries by the program, the compiler
options, the jax/jaxlib version and the device), so results do not depend on the cache.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

ENV = "RGFLOW_XLA_CACHE"
#: the folder is trimmed (oldest entries first) to this size whenever the cache is enabled
MAX_BYTES = 2 * 2**30
_OFF = ("0", "off", "no", "false")


def compilation_cache_dir() -> Path | None:
    """The cache folder the commands use, or None if `$RGFLOW_XLA_CACHE` switches it off."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "rgflow" / "xla"


def _trim(path: Path, max_bytes: int) -> None:
    """Delete the least recently written entries until the folder holds at most `max_bytes`."""
    entries = []
    for f in path.iterdir():
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries)
    for _, size, f in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        try:
            f.unlink()
            total -= size
        except OSError:
            pass


def enable_compilation_cache(path: str | os.PathLike | None = None, *,
                             max_bytes: int = MAX_BYTES) -> Path | None:
    """Switch on JAX's persistent compilation cache in `path` for every compiled program.

    Must be called before the process compiles anything (JAX reads the setting once).
    An unusable folder (not creatable or not writable) leaves the cache off: caching only ever
    saves time, so it never stops a run.

    **Arguments:** `path` (default: `compilation_cache_dir()`), `max_bytes` (the folder is
    trimmed to this size now, oldest entries first).

    **Returns:** the folder in use, or None if the cache stays off.
    """
    import jax

    folder = compilation_cache_dir() if path is None else Path(path).expanduser()
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            return None
        _trim(folder, int(max_bytes))
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # two processes may write the same entry at once; a reader that meets a half-written file
    # recompiles the program (JAX warns), which costs only that program's compilation time
    warnings.filterwarnings("ignore", message="Error reading persistent compilation cache entry")
    return folder
