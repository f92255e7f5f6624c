"""Checkpoints of running block sums, so a long measurement resumes where it stopped."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from ._io import save_npz


def fingerprint(**config) -> str:
    """A stable hash of a run's configuration (network, inputs, sizes, key, orders)."""
    h = hashlib.sha256()
    for name in sorted(config):
        value = config[name]
        if name == "key":
            value = np.asarray(jax.random.key_data(value))
        if isinstance(value, np.ndarray):
            h.update(name.encode() + value.tobytes() + str(value.shape).encode())
        else:
            h.update(name.encode() + json.dumps(repr(value)).encode())
    return h.hexdigest()


class BlockCheckpoint:
    """Saves `(blocks_done, sums, squares)` atomically after each block; restores them."""

    def __init__(self, path: Path, digest: str):
        self.path, self.digest = path, digest

    @classmethod
    def open(cls, path, **config) -> BlockCheckpoint | None:
        if path is None:
            return None
        return cls(Path(path), fingerprint(**config))

    def restore(self, sums: dict, squares: dict) -> int:
        """Fill `sums`/`squares` from the file if it exists; return the number of blocks done."""
        if not self.path.exists():
            return 0
        with np.load(self.path) as data:
            if str(data["digest"]) != self.digest:
                raise ValueError(
                    f"`checkpoint` {self.path} belongs to a different configuration "
                    "(network, inputs, n_nets, n_blocks, key or orders); remove it or pick another path."
                )
            for n in sums:
                sums[n][...] = data[f"sums_{n}"]
                squares[n][...] = data[f"squares_{n}"]
            return int(data["done"])

    def save(self, done: int, sums: dict, squares: dict) -> None:
        arrays = {f"sums_{n}": v for n, v in sums.items()}
        arrays |= {f"squares_{n}": v for n, v in squares.items()}
        save_npz(self.path, digest=np.asarray(self.digest), done=np.asarray(done), **arrays)
