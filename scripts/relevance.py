"""Scaling exponents of λ, λ2, κ, λ_NL under the cutoff flow (beyond the paper).

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.relevance`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("relevance")
