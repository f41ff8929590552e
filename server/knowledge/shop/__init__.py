"""shop room of the knowledge layer."""
