"""Radio's monitoring computations: data drift, model drift, their reports and jobs.

NumPy only at import time; MLflow and ONNX Runtime are imported by the functions that need
them (the jobs), so the web app can read reports without either. The web app never
imports this package (it reads the reports' files; ``app/admin/monitoring.py``).
"""
