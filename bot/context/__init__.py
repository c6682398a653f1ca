"""Context packs: load, chunk, index and select curated documents; the packs' data (ATT&CK, Sigma samples)."""
