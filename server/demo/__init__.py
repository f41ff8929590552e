"""The demo shop generator: written for the project, outside the serving path."""
