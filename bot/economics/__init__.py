"""Tier economics: budgets, shadow sampling, the tier review, digest and scheduler."""
