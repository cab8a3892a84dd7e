"""app/__init__.py: importing the web app never pulls in TensorFlow, Keras or mlflow."""

import subprocess
import sys

from helpers import ROOT

CHECK = """
import sys
import app.wsgi
app.wsgi.app.test_client().get("/openapi.json")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "mlflow"))
print(",".join(heavy))
"""


def test_app_never_imports_tensorflow_or_mlflow(tmp_path):
    # A fresh interpreter: other tests in this process may have imported mlflow themselves.
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "RADIO_DATA_DIR": str(tmp_path), "MLFLOW_URL": "http://127.0.0.1:9"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
