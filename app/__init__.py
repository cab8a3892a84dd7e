"""Radio clinician web app: upload a chest X-ray, get decision support from the model server.

The app never loads a model itself: it validates and preprocesses the upload
(``serving.preprocessing``), sends it to the MLflow model server (``serving.wire``) and
renders the answer. It must never import TensorFlow or mlflow, so it stays small and starts
in a second.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``app.create_app`` (:mod:`app.platform.factory`), imported on first use (PEP 562).

    Importing the package must not load Flask: domain modules (``app.intake``,
    ``app.store``...) are used by command lines and jobs that serve no page.
    """
    if name == "create_app":
        from app.platform.factory import create_app

        return create_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
