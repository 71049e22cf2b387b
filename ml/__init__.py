"""Pneumothorax segmentation: reading X-rays, training, evaluation and inference.

- ``ml.core``: what every part shares: reading X-rays, the errors, the network, model files, the
  decision rule and the operating-point search, run-length encodings, the metrics;
- ``ml.serving``: the ``Predictor`` the product runs (imports ``ml.core`` only);
- ``ml.training``: datasets, the preprocessing cache, augmentation, losses and the ``Trainer``;
- ``ml.evaluation``: held-out images, the calibrated operating point, figures, plots, the report.

The commands stay at the top: ``python -m ml.cache``, ``ml.train``, ``ml.evaluate``,
``ml.predict``, ``ml.export``.
"""
