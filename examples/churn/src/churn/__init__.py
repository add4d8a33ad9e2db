"""Customer-churn example pipeline for sluice.

Each stage is a script in this package (``python src/churn/<stage>.py``); the
shared pieces (column names, tier settings, I/O) live in :mod:`churn.common`.
"""
