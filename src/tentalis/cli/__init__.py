"""tentalis.cli."""
