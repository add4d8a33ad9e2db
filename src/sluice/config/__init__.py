"""Level 2: ``sluice.yaml``: its schema, loading, messages, checks, interpolation, the cache of the
validated file and the lock files.
"""
