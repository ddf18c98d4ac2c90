"""tentalis.agents."""
