"""The network's own action (Edgeworth, physics.md §9) and the fraction of it each HMS quartic
operator basis holds, with a Monte Carlo check of the mode quartic.

Writes <out>/edgeworth_d<d_in>.json and .png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.edgeworth`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("edgeworth")
