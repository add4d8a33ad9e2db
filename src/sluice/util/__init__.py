"""Level 0: mechanisms every layer uses: atomic writes, hashing, the stat cache, credential
masking, YAML with locations, git plumbing, globs, paths.
"""
