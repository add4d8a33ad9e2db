"""Level 4: fingerprints, plans, change detection, the scheduler, tiers, budgets, costs and the
ledger.
"""
