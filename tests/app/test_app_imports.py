"""The import rule of the web app: never TensorFlow, Keras, MLflow or ``training``.

The app uses only the light modules of ``serving`` (preprocessing, wire, schema), and a
worker loads pydicom (and GDCM through it) only when a DICOM arrives: at start it would cost
every worker ~30 MB that PNG and JPEG uploads never use.
"""

import subprocess
import sys

from helpers import ROOT

CHECK = """
import sys
import app.platform.wsgi
app.platform.wsgi.app.test_client().get("/openapi.json")
banned = ("tensorflow", "keras", "mlflow", "training", "pydicom", "gdcm")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in banned)
print(",".join(heavy))
"""


def test_app_never_imports_tensorflow_mlflow_or_training_nor_dicom_at_start(tmp_path):
    # A fresh interpreter: other tests in this process may have imported mlflow themselves.
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
             "RADIO_DATA_DIR": str(tmp_path), "MLFLOW_URL": "http://127.0.0.1:9"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
