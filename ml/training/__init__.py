"""Training: datasets, the preprocessing cache, augmentation, losses and the ``Trainer``."""
