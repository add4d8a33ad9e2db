"""Level 4: data versioning (pins, add/status/checkout/push/pull), the pinned-data check,
references, sampling for smoke runs, validation and drift.
"""
