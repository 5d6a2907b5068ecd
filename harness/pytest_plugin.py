"""pytest plugin: resilience checks as ordinary pytest tests (fixtures and options land next)."""
