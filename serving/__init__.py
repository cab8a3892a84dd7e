"""What runs when Radio answers: preprocessing, the wire format, the answer schema, the
decision (temperature, thresholds, review flag), the "not a chest X-ray" check, heatmaps
and the MLflow pyfunc.

Importable without TensorFlow (a test checks it in a fresh interpreter) and without
``training``: the registry stores this package itself with every model version
(``code_paths``), so what a model version serves is exactly this code as it was then.
The web app imports the light modules (preprocessing, wire, schema); only ``pyfunc``
needs MLflow and ONNX Runtime.
"""
