"""The layer flow of deep networks (physics.md §11): the normalised 4-pt vertex against L/n at and
away from criticality (theory against Monte Carlo), and the quartic coupling against depth and
width.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.layer_flow`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("layer_flow")
