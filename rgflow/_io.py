"""Atomic file writes: a file is written completely or not at all."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def _atomic(path: str | os.PathLike, mode: str):
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable(path) -> Path:
    """Refuse, before any work is done, an output path that cannot be written: a directory, or
    one whose nearest existing parent is not a writable directory. **Raises:** `OSError`."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {path}: {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {path}: the file is read-only")
    return path


def save_npz(path, **arrays) -> None:
    """Write `arrays` to an `.npz` file atomically."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    with _atomic(path, "wb") as f:
        f.write(buf.getvalue())


def save_json(path, obj) -> None:
    """Write `obj` as indented JSON atomically (NumPy scalars and arrays converted).

    **Raises:** `ValueError` naming the first entry that is NaN or ±inf (JSON has no such
    numbers, and a result that contains them is a failure to report, not data); nothing is
    written then.
    """
    from ._validate import find_non_finite

    where = find_non_finite(obj)
    if where is not None:
        raise ValueError(f"refusing to write {Path(path).name}: the value {where} is not finite "
                         "(NaN or inf); report the failure instead of writing it.")

    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o)}")

    text = json.dumps(obj, indent=2, default=default, allow_nan=False)
    with _atomic(path, "w") as f:
        f.write(text + "\n")


def save_bytes(path, data: bytes) -> None:
    """Write raw bytes atomically (e.g. a rendered figure)."""
    with _atomic(path, "wb") as f:
        f.write(data)
