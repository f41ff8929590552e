"""retrieval room of the knowledge layer."""
