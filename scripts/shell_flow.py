"""Momentum-shell RG: λ̃(ℓ) in d = 1..4, Gaussian eigenvalues, Wilson–Fisher in d = 3.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.shell_flow`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("shell_flow")
