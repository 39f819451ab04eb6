"""Fine-tuning, generation and checkpoints. torch and transformers load inside functions."""
