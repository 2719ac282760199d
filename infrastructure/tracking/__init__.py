"""MLflow adapters: experiment tracking and the model registry."""
