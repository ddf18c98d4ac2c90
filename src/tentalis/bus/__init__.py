"""tentalis.bus."""
