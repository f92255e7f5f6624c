"""Operator choice: constant vs x-dependent vs bilocal quartic couplings, on training and
held-out inputs (physics.md §8 item 5), plus the finite-N breaking of translation invariance.

Writes DIR/local_vs_nonlocal_d<d_in>.{png,pdf,json}. Logic lives in `rgflow._operator_choice`.
"""

import argparse
from pathlib import Path

import rgflow  # noqa: F401  (enables float64)
from rgflow._fit_data import DEFAULT_CUTOFF
from rgflow._io import save_json
from rgflow._operator_choice import compare_operators, plot_operator_choice, translation_breaking


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--net", default="erf,relu,gauss", help="erf, relu, gauss or a comma list")
    p.add_argument("--width", type=int, default=None,
                   help="network width (default per net: erf 5, relu 20, gauss 100)")
    p.add_argument("--d-in", type=int, default=1)
    p.add_argument("--source", choices=("exact", "mc"), default="exact")
    p.add_argument("--n-nets", type=int, default=100_000, help="networks (source=mc)")
    p.add_argument("--cutoff", type=float, default=DEFAULT_CUTOFF)
    p.add_argument("--rel-error", type=float, default=0.01,
                   help="noise model of exact inputs: σ = rel_error × rms(G4_c)")
    p.add_argument("--method", choices=("lbfgs", "adam"), default="lbfgs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-breaking", action="store_true", help="skip the translation-invariance part")
    p.add_argument("--out", default="figures")
    a = p.parse_args(argv)
    nets = [s.strip() for s in a.net.split(",") if s.strip()]
    res = {"d_in": a.d_in, "source": a.source, "nets": {}, "breaking": {}}
    for name in nets:
        res["nets"][name] = compare_operators(
            name, d_in=a.d_in, width=a.width, source=a.source, n_nets=a.n_nets, cutoff=a.cutoff,
            rel_error=a.rel_error, method=a.method, seed=a.seed,
        )
        if not a.no_breaking:
            res["breaking"][name] = translation_breaking(name, d_in=a.d_in, width=a.width,
                                                         cutoff=a.cutoff)
        print(f"{name}: N={res['nets'][name]['width']} Λ={a.cutoff:g}")
        print(f"  {'operators':28s} {'chi2/dof':>10s} {'AIC':>10s} {'train err':>10s} {'test err':>10s}")
        for r in res["nets"][name]["table"]:
            print(f"  {r['operators']:28s} {r['chi2_dof']:10.4g} {r['aic']:10.4g} "
                  f"{r['train_error']:10.3g} {r['test_error']:10.3g}")
        if name in res["breaking"]:
            b = res["breaking"][name]
            print(f"  translation breaking: GP {b['gp_change'][-1]:.3g}, G4_c {b['g4c_change'][-1]:.3g},"
                  f" λ {b['lambda_change'][-1]:.3g} (shift {b['shifts'][-1]:g}); full G4 ∝ N^"
                  f"{b['g4_change_exponent']}")
    stem = Path(a.out) / f"local_vs_nonlocal_d{a.d_in}"
    save_json(f"{stem}.json", res)
    files = plot_operator_choice(res, stem)
    print("->", *map(str, files))
    return res


if __name__ == "__main__":
    main()
