"""Pneumothorax segmentation: reading X-rays, training, evaluation and inference."""
