"""Fitted couplings against width: λ ∝ 1/N, κ ∝ 1/N².

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.width_scaling`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("width_scaling")
