"""tentalis.rewards."""
