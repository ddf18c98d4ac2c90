"""tentalis.store."""
