"""Publication style for rgflow figures: no LaTeX needed, atomic PNG/PDF output."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .._io import save_bytes  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
    "mathtext.fontset": "cm",
    "axes.prop_cycle": matplotlib.cycler(
        color=["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97"]
    ),
}

NET_LABELS = {"erf": "Erf-net", "relu": "ReLU-net", "gauss": "Gauss-net"}


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 3.4, height: float = 2.8):
    """A figure in the house style: `ncols` panels of `width` × `height` inches each."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
            constrained_layout=True,
        )
    return fig, axes


def save_figure(fig, path_stem, *, formats=("png", "pdf")) -> list[Path]:
    """Save `fig` as `path_stem.<fmt>` for each format, each file atomically; close it."""
    out = []
    with plt.rc_context(STYLE):
        for fmt in formats:
            buf = io.BytesIO()
            # no creation date: the same data give byte-identical files
            meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
            fig.savefig(buf, format=fmt, bbox_inches="tight", metadata=meta)
            path = Path(f"{path_stem}.{fmt}")
            save_bytes(path, buf.getvalue())
            out.append(path)
    plt.close(fig)
    return out
