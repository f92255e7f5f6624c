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

import hashlib
import json
from pathlib import Path

import jax
import numpy as np

from ._io import save_npz

FORMAT = 2  # 2: per-block sums of squares


def fingerprint(**config) -> str:
    """A stable hash of a run's configuration (network, inputs, sizes, key, orders)."""
    h = hashlib.sha256(f"format={FORMAT}".encode())
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
        if not self.path.exists():
            return 0
        with np.load(self.path) as data:
            if str(data["digest"]) != self.digest:
                raise ValueError(
                    f"`checkpoint` {self.path} belongs to a different configuration "
                    "(network, inputs, n_nets, n_blocks, key, orders, dtype or format); remove it or pick another path."
                )
            for n in sums:
                sums[n][...] = data[f"sums_{n}"]
                squares[n][...] = data[f"squares_{n}"]
            return int(data["done"])

    def save(self, done: int, sums: dict, squares: dict) -> None:
        arrays = {f"sums_{n}": v for n, v in sums.items()}
        arrays |= {f"squares_{n}": v for n, v in squares.items()}
        save_npz(self.path, digest=np.asarray(self.digest), done=np.asarray(done), **arrays)
