"""The HMS 6-pt prediction: G6_GP + O(λ) diagrams against G6 over the cutoffs.

Writes <out>/<stem>.json and <stem>.png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.six_pt_prediction`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("six_pt_prediction")
