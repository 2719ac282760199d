"""The only place that reads environment variables, YAML files and CLI options."""
