"""What the product runs: the ``Predictor``. Imports ``ml.core`` only, never training or evaluation."""
