"""training/export.py: the ONNX copy served answers like the Keras source of truth."""

from __future__ import annotations

from serving.served_model import ALIAS, MODEL_NAME


def test_shipped_onnx_agrees_with_keras_on_the_val_set(shipped_model, val_set, monkeypatch):
    import keras
    from helpers import ROOT

    import training.model  # noqa: F401 - registers the Standardize layer
    from serving.served_model import model_path, resolve
    from training.export import keras_outputs
    from training.registry_folder import tracking_uri

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(ROOT / "mlflow"))
    folder = model_path(MODEL_NAME, resolve(MODEL_NAME, ALIAS)) / "artifacts"
    ensemble = keras.models.load_model(folder / "ensemble.keras")
    reference = keras_outputs(ensemble, val_set.images)
    served = shipped_model.run(val_set.images)
    for name in ("logits", "features"):
        assert abs(reference[name] - served[name]).max() < 1e-4, name
    # the CAM is shown scaled to [0, 1]: compare relative to each map's peak
    peak = abs(reference["cam"]).max(axis=(1, 2), keepdims=True)
    assert (abs(reference["cam"] - served["cam"]) / peak).max() < 1e-4
