"""Training adapters: scikit-learn pipelines and transformers fine-tuning."""
