"""The HMS 6-pt prediction (HMS eq. 3.37; physics.md §6, §8): λ(Λ) matched to ΔG4, then
G6_GP + Σ_15 K G4_c^pred compared with G6 on all unique 6-tuples, for the 21 cutoffs.

    .venv/bin/python scripts/six_pt_prediction.py --net erf --source exact --out figures

Writes DIR/six_pt_prediction_<net>.png and DIR/six_pt_prediction_<net>.json (keys `cutoffs`,
`gp_ratio`, `lambda_ratio`, ...). The logic lives in `rgflow._six_pt.run_six_pt_prediction`.
"""

from __future__ import annotations

import argparse
import json

from rgflow._six_pt import run_six_pt_prediction


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", choices=("erf", "relu", "gauss"), required=True)
    ap.add_argument("--width", type=int, default=None, help="width N (default: erf 5, relu 20, gauss 100)")
    ap.add_argument("--d-in", type=int, default=1, choices=(1, 2, 3))
    ap.add_argument("--source", choices=("exact", "mc"), default="exact")
    ap.add_argument("--n-nets", type=int, default=100_000, help="networks for --source mc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="figures")
    args = ap.parse_args(argv)
    res = run_six_pt_prediction(args.net, width=args.width, d_in=args.d_in, source=args.source,
                                n_nets=args.n_nets, out=args.out, seed=args.seed)
    summary = {k: res[k] for k in ("net", "width", "d_in", "source", "prediction_spread")}
    summary["gp_ratio"] = res["gp_ratio"][0]
    summary["lambda_ratio[Λ=7, 1e5]"] = [res["lambda_ratio"][0], res["lambda_ratio"][-1]]
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
