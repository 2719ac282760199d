"""Text classification with transformers (fine-tuning, LoRA) on torch."""
