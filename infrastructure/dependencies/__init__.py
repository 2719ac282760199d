"""Turning poetry.lock into what pip understands, so installs honour the lock without Poetry."""
