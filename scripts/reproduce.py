"""Reproduce every figure: a thin wrapper of `rgflow reproduce` (see `--help`)."""

import sys

from rgflow.app.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["reproduce"]
    main()
