"""The MLflow pyfunc served on /invocations: ONNX Runtime, calibration, CAM, OOD check.

The registry keeps the Keras ensemble as the source of truth; this pyfunc serves the
ONNX copy of the same graph (checked to agree to 1e-4 at training time and in the tests),
so the model server needs neither TensorFlow nor ``keras.Model.predict``.

Artefacts (names in ``ARTIFACTS``): ``onnx`` the network, ``ood`` the detector
parameters, ``meta`` the JSON with classes, temperature, thresholds; optionally ``lungs``,
the lung segmenter: the network (and the OOD check fitted with it) then sees the lung
region cut out of the film (:mod:`serving.lungs`), and the heatmap is put back in place
on the whole film.

Each prediction (one per input image) is an object of :data:`serving.schema.PREDICTION`
(status, label, calibrated probabilities, confidence, review flag, OOD score and reason,
heatmap, model identity); the tests validate the shipped model's answers against it.
"""

from __future__ import annotations

import json
import os

import mlflow.pyfunc
import numpy as np

from serving.decision import decide, review_reasons, softmax
from serving.familiarity import Familiarity
from serving.heatmap import heatmaps
from serving.lungs import LungSegmenter, uncrop
from serving.ood import OODDetector
from serving.served_model import identity
from serving.wire import COLUMN, decode_batch

ARTIFACTS = ("onnx", "ood", "meta")


class RadioModel(mlflow.pyfunc.PythonModel):
    """Serves the calibrated ensemble with heatmaps and out-of-distribution rejection."""

    def load_context(self, context) -> None:
        """Open the ONNX session and read calibration and OOD parameters."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Measured on a 2-vCPU host (make bench): 2 threads cut the p50 from 40 to 35 ms
        # and still give 15x the reference throughput with 4 clients (1 thread: 20x).
        opts.intra_op_num_threads = int(os.environ.get("RADIO_ORT_THREADS", "2"))
        opts.inter_op_num_threads = 1
        # ONNX Runtime's idle threads spin on the CPU after each call: measured with make
        # bench's 4 clients, 48 ms of model-server CPU per answer spinning against 15 ms
        # not (the same answers; the app worker gets the cores back, and a t3 host its CPU
        # credits). RADIO_ORT_SPIN=1 restores the runtime's default.
        opts.add_session_config_entry("session.intra_op.allow_spinning",
                                      os.environ.get("RADIO_ORT_SPIN", "0"))
        self.session = ort.InferenceSession(
            context.artifacts["onnx"], opts, providers=["CPUExecutionProvider"]
        )
        self.ood = OODDetector.load(context.artifacts["ood"])
        # Optional (four-class models and later): the "unfamiliar film" review flag.
        familiar = context.artifacts.get("familiarity")
        self.familiarity = Familiarity.load(familiar) if familiar else None
        # A network may also output its whole pooled backbone features ("embedding"), which
        # the familiarity check reads; otherwise it reads the OOD features.
        self.outputs = ["logits", "cam", "features"] + (
            ["embedding"] if "embedding" in {o.name for o in self.session.get_outputs()} else [])
        lungs = context.artifacts.get("lungs")
        # One thread: the segmenter is a fraction of the classifier's work.
        self.lungs = LungSegmenter(lungs, threads=1) if lungs else None
        with open(context.artifacts["meta"]) as fh:
            self.meta = json.load(fh)
        self.classes: list[str] = self.meta["classes"]
        ident = identity(self.meta.get("name", "radio-cxr"))
        self.model = {"name": ident["name"], "version": ident["version"]}

    def view(self, images: np.ndarray) -> tuple[np.ndarray, list | None]:
        """What the network sees of uint8 ``(N, H, W)`` films, and the lung boxes cut out
        of them (``None``: the whole films, for a model without a lung segmenter)."""
        if self.lungs is None:
            return images, None
        crops, _, boxes = self.lungs.crop(images)
        return crops, boxes

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Raw network outputs for uint8 ``(N, H, W)`` network inputs (:meth:`view`)."""
        x = np.asarray(images, dtype=np.float32)[..., None]
        return dict(zip(self.outputs, self.session.run(self.outputs, {"image": x}), strict=True))

    def predict(self, context, model_input, params=None) -> list[dict]:
        """Base64 uint8 images (column ``image``) -> one prediction dict per image."""
        params = params or {}
        texts = model_input[COLUMN] if hasattr(model_input, "columns") else model_input
        images = decode_batch(list(texts))
        return self.predict_arrays(images, heatmap=bool(params.get("heatmap", True)))

    def predict_arrays(self, images: np.ndarray, heatmap: bool = True) -> list[dict]:
        """The same as :meth:`predict` for decoded uint8 arrays (used in-process)."""
        images, boxes = self.view(images)
        out = self.run(images)
        probs = softmax(out["logits"], self.meta["temperature"])
        pred = decide(probs, self.classes, self.meta.get("covid_threshold"))
        maps = heatmaps(out["cam"], pred) if heatmap else None
        if maps is not None and boxes is not None:
            maps = np.stack([uncrop(m, b) for m, b in zip(maps, boxes, strict=True)])
        checks = self.ood.check(images, out["features"])
        review_below = self.meta.get("review_threshold")
        unfamiliar = (self.familiarity.unfamiliar(out.get("embedding", out["features"]))
                      if self.familiarity is not None else np.zeros(len(images), bool))
        results = []
        for i, (score, reason) in enumerate(checks):
            confidence = float(probs[i, pred[i]])
            why = [] if reason else review_reasons(confidence, review_below, bool(unfamiliar[i]))
            results.append(
                {
                    "status": "not_xray" if reason else "ok",
                    "label": None if reason else self.classes[int(pred[i])],
                    "probabilities": {
                        c: round(float(p), 6) for c, p in zip(self.classes, probs[i], strict=True)
                    },
                    "confidence": round(confidence, 6),
                    "needs_review": bool(why),
                    "review_reasons": why,
                    "ood": {
                        "score": round(score, 3),
                        "threshold": self.ood.threshold,
                        "reason": reason,
                    },
                    "heatmap": None if maps is None else np.round(maps[i], 3).tolist(),
                    "model": self.model,
                    "decision": {"covid_threshold": self.meta.get("covid_threshold"),
                                 "review_threshold": review_below},
                }
            )
        return results
