"""Level 4: model versions, aliases moved by policy (promotion, approvals, rollback), and pulling
artifacts out of the store.
"""
