"""BentoML model store adapter."""
