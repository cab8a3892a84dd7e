"""Radio's training package: data, model, evaluation and the MLflow registry.

Importing this package is cheap and TensorFlow-free; only ``training.model``,
``training.fit`` and ``training.export`` import TensorFlow, and only when used.
"""
