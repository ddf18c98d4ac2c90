"""tentalis.models."""
