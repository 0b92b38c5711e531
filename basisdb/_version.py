"""Package version (single source for setup.cfg and the artifact's builder_version)."""

__version__ = "0.1.0"
