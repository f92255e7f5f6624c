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

# artists are created outside `figure()`'s rc context: the house style (colours "C0", "C1", ...,
# marker sizes, fonts) must hold for them and for legend handles drawn later
matplotlib.rcParams.update(STYLE)

NET_LABELS = {"erf": "Erf-net", "relu": "ReLU-net", "gauss": "Gauss-net"}


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 3.4, height: float = 2.8):
    """A figure in the house style: `ncols` panels of `width` × `height` inches each."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
            constrained_layout=True,
        )
    return fig, axes


def pm(value: float, error: float | None) -> str:
    """`value ± error` with the error to two significant digits and the value to the same
    decimal place (no false precision)."""
    import math

    if error is None or not math.isfinite(error) or error <= 0:
        return f"{value:.3g}"
    digits = max(0, 1 - int(math.floor(math.log10(error))))
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def log_axes(ax, *, x: bool = True, y: bool = True) -> None:
    """Logarithmic axes without minor-tick labels (which repeat and overlap on short ranges)."""
    from matplotlib.ticker import NullFormatter

    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    if y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())


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


def row_label(net: str, sigma_b: float) -> str:
    """The name of a network in summary rows: ReLU carries its σ_b (0: the one-dimensional HMS
    case, > 0: the non-degenerate showcase)."""
    return net if net != "relu" else f"relu σ_b={sigma_b:g}"
