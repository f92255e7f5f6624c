"""Trained ensembles: mean, covariance and G4_c through gradient descent against the NTK theory
(physics.md §14).

Writes <out>/training_<net>.json (trainable = readout) and <out>/training_<net>_all.json
(trainable = all), each with .png/.pdf; `--help` lists the flags. The study itself is
`rgflow.studies.training`.
"""

from rgflow.studies._cli import main

if __name__ == "__main__":
    main("training")
