"""tentalis.gateway."""
