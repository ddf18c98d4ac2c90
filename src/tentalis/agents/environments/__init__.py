"""tentalis.agents.environments."""
