"""Quick reproduction of the paper's key figures on the embedded default configuration.

Runs each figure script of rgflow in turn and writes PNG/PDF/JSON into --out (default figures/).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import free_theory  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="small ensembles + exact correlators")
    p.add_argument("--out", default="figures")
    a = p.parse_args(argv)
    steps = [("free theory (paper fig. 1)", free_theory.main,
              ["--out", a.out] + (["--quick"] if a.quick else []))]
    for name, fn, args in steps:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        fn(args)
        print(f"   done in {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
