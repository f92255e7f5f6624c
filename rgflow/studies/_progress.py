"""Progress reporting of the studies: one helper for every loop that takes more than a few
seconds.

A study's `run(config, *, progress=...)` accepts

- `False`: silent;
- `True`: a `tqdm` bar on stderr (interactive use of `scripts/<study>.py`);
- a callable `report(desc, done, total)`: called after every finished step. `rgflow reproduce`
  passes one that forwards the step to the parent process, which prints one line per step (so a
  run in a log file or in parallel worker processes still shows where every stage is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


class Bar:
    """A progress counter over `total` steps named `desc` (see the module docstring for
    `progress`). `update()` after each step; `close()` at the end (also as a context manager)."""

    def __init__(self, total: int, desc: str, progress, *, unit: str = "step"):
        self.total, self.desc, self.done = int(total), desc, 0
        self._report: Callable | None = progress if callable(progress) else None
        self._tqdm = None
        if progress is True:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.total, desc=desc, unit=unit)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self._report is not None:
            self._report(self.desc, self.done, self.total)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def steps(items: Iterable, desc: str, progress, *, unit: str = "step"):
    """Iterate over `items`, reporting each finished item (module docstring)."""
    items = list(items)
    with Bar(len(items), desc, progress, unit=unit) as bar:
        for item in items:
            yield item
            bar.update()
