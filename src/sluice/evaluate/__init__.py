"""Level 5: prediction files, gates against the baseline, the evidence they use, and
registration after a tier.
"""
