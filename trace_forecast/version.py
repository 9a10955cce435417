"""The package version, in the foundation layer so that every layer may record it."""

__version__ = "0.1.0"
