"""Reproduce every figure (thin wrapper of `rgflow reproduce`; see `rgflow reproduce --help`)."""

import sys

from rgflow._cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["reproduce"]
    main()
