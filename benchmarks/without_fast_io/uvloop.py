"""Shadows the real uvloop for one benchmark run: uvicorn's "auto" then falls back."""

raise ImportError("uvloop is switched off for this benchmark run")
