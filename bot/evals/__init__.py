"""Golden sets, comparators, the judge and `tierwise eval`."""
