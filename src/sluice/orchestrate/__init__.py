"""Level 6: one tier run from start to finish, and ``sluice init``."""
