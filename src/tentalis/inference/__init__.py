"""tentalis.inference."""
