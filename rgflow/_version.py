"""The rgflow version (one place; `rgflow.__version__` re-exports it)."""

__version__ = "0.1.0"
