"""sources room of the knowledge layer."""
