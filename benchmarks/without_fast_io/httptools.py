"""Shadows the real httptools for one benchmark run: uvicorn's "auto" then falls back."""

raise ImportError("httptools is switched off for this benchmark run")
