"""The package's version, in a module of its own: the server's pages and the standalone
viewer name it without importing the package's entry points (and what they import)."""

__version__ = "0.1.0"
