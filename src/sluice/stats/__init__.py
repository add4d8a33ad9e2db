"""Level 1: numpy-only statistics behind gates and drift: metrics and their kernels, the bootstrap,
McNemar, DeLong, Holm, drift sketches. No file I/O.
"""
