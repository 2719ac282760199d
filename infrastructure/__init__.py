"""Adapters, services, settings, CLI and the composition root. May import anything."""
