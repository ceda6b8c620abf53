"""The HTTP edge: FastAPI routes, templates, and the mapping of domain errors to responses."""
