"""tentalis.services."""
