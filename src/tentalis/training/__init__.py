"""tentalis.training."""
