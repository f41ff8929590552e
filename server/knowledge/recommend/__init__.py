"""recommend room of the knowledge layer."""
