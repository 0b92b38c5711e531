"""The shipped artifact, installed as ``basisdb/data/basisdb.h5`` (see setup.cfg)."""
