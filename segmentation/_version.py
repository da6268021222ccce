"""The version of the toolkit (a module of its own, so that any module may read it without
importing the whole package)."""

__version__ = "0.1.0"
