"""graph room of the knowledge layer."""
