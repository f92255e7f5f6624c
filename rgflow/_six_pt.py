"""The HMS 6-pt prediction as a reproducible run: figure + JSON (physics.md §6, §8 item 4).

`run_six_pt_prediction` is what `scripts/six_pt_prediction.py` calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ._exact import exact_connected, exact_moment, gp_correlator
from ._io import save_json
from ._nets import hms_inputs, make_net
from ._predict import six_point_prediction

__all__ = ["HMS_CUTOFFS", "DEFAULT_WIDTHS", "run_six_pt_prediction"]

HMS_CUTOFFS = np.array([7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3, 2e3, 5e3, 7e3, 1e4,
                        2e4, 4e4, 6e4, 8e4, 1e5], dtype=np.float64)
"""The 21 cutoffs of physics.md §8."""

DEFAULT_WIDTHS = {"erf": 5, "relu": 20, "gauss": 100}
"""The non-Gaussian widths of physics.md §8."""


def run_six_pt_prediction(
    net: str,
    *,
    width: int | None = None,
    d_in: int = 1,
    source: str = "exact",
    n_nets: int = 100_000,
    out: str | Path = "figures",
    seed: int = 0,
    cutoffs=None,
) -> dict:
    """Match λ(Λ) to ΔG4 and compare G6_GP + O(λ) diagrams with G6 (HMS eq. 3.37, physics.md §6).

    Writes `out/six_pt_prediction_<net>.png` and `out/six_pt_prediction_<net>.json`.

    **Arguments:**

    - `net`: `"erf"`, `"relu"` or `"gauss"`.
    - `width`: the width N (default: Erf 5, ReLU 20, Gauss 100, physics.md §8).
    - `d_in`: input dimension 1, 2 or 3 (inputs `rgflow.hms_inputs(net, d_in)`).
    - `source`: `"exact"` (exact finite-width correlators, physics.md §4) or `"mc"` (Monte Carlo,
      `rgflow.measure`, with λ matched by inverse-variance weighted least squares).
    - `n_nets`: networks for `source="mc"`.
    - `out`: output directory.
    - `seed`: PRNG seed for `source="mc"`.
    - `cutoffs`: the cutoffs (default: the 21 of physics.md §8).

    **Returns:** the JSON content as a dict: `cutoffs`, `gp_ratio` (element mean of G6_GP/G6,
    repeated per cutoff), `lambda_ratio` (element mean of G6_pred/G6 per cutoff), `lambda`,
    `g4_fit_residual` (|ΔG4 − G4_pred|/|ΔG4| per cutoff), `prediction_spread` (max relative change
    of G6_pred over the cutoffs), and for `source="exact"` `remainder_over_connected`
    (|G6 − G6_pred|/|G6_c| per cutoff) and `remainder_minus_connected` (|G6 − G6_pred − G6_c|/|G6_c|).
    """
    if net not in DEFAULT_WIDTHS:
        raise ValueError(f"`net` must be one of {tuple(DEFAULT_WIDTHS)}, got {net!r}.")
    if source not in ("exact", "mc"):
        raise ValueError(f"`source` must be 'exact' or 'mc', got {source!r}.")
    width = DEFAULT_WIDTHS[net] if width is None else int(width)
    model = make_net(net, width=width, d_in=d_in)
    xs = hms_inputs(net, d_in)
    cuts = jnp.asarray(HMS_CUTOFFS if cutoffs is None else cutoffs, dtype=jnp.float64)
    t0 = time.perf_counter()
    g6c = None
    weights = None
    if source == "exact":
        g4 = exact_moment(model, xs, 4, full=False)
        g6 = exact_moment(model, xs, 6, full=False)
        g6c = exact_connected(model, xs, 6, full=False)
    else:
        from ._ensemble import measure  # noqa: PLC0415

        m = measure(model, xs, int(n_nets), key=jax.random.key(seed), orders=(2, 4, 6))
        g4 = m.moment(4, full=False)
        g6 = m.moment(6, full=False)
        weights = 1.0 / jnp.asarray(m.moment_stderr(4, full=False)) ** 2
    r = six_point_prediction(model, xs, cuts, g4=g4, g6=g6, weights=weights, g6_connected=g6c)
    dg4 = g4 - gp_correlator(model, xs, 4, full=False)
    pred = np.asarray(r["g6_pred"])
    res = {
        "net": net,
        "width": width,
        "d_in": d_in,
        "source": source,
        "n_nets": int(n_nets) if source == "mc" else None,
        "n_tuples_4": int(dg4.shape[0]),
        "n_tuples_6": int(g6.shape[0]),
        "cutoffs": np.asarray(cuts).tolist(),
        "gp_ratio": [float(r["gp_ratio"])] * len(cuts),
        "lambda_ratio": np.asarray(r["lambda_ratio"]).tolist(),
        "lambda": np.asarray(r["lambda"]).tolist(),
        "g4_fit_residual": (np.linalg.norm(np.asarray(r["g4c_residual"]), axis=1)
                            / np.linalg.norm(np.asarray(dg4))).tolist(),
        "prediction_spread": float(np.max(np.abs(pred - pred[0]) / np.abs(pred[0]))),
        "seconds": time.perf_counter() - t0,
    }
    if g6c is not None:
        nc = float(np.linalg.norm(np.asarray(g6c)))
        res["remainder_over_connected"] = (np.linalg.norm(np.asarray(r["remainder"]), axis=1) / nc).tolist()
        res["remainder_minus_connected"] = (
            np.linalg.norm(np.asarray(r["remainder_minus_connected"]), axis=1) / nc).tolist()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_json(out / f"six_pt_prediction_{net}.json", res)
    _plot(res, out / f"six_pt_prediction_{net}")
    return res


def _plot(res: dict, stem: Path) -> None:
    from ._plotting import NET_LABELS, figure, save_figure  # noqa: PLC0415

    fig, axes = figure(1, 1, width=4.0, height=3.0)
    ax = axes[0, 0]
    c = np.asarray(res["cutoffs"])
    ax.semilogx(c, res["gp_ratio"], "--", label=r"$G_6^{GP}/G_6$")
    ax.semilogx(c, res["lambda_ratio"], "o-", label=r"$(G_6^{GP}+O(\lambda))/G_6$")
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set_xlabel(r"cutoff $\Lambda$")
    ax.set_ylabel("element mean of ratio")
    src = "exact" if res["source"] == "exact" else f"MC, {res['n_nets']} nets"
    ax.set_title(f"{NET_LABELS.get(res['net'], res['net'])}, N={res['width']}, "
                 f"d_in={res['d_in']} ({src})")
    ax.legend()
    save_figure(fig, stem)
