"""What data drift compares: the network's own features and image statistics.

* **Network features**: the ensemble's pooled features (the ``features`` output of the
  served ONNX graph, the same the "not a chest X-ray" gate uses), computed with ONE model
  version for both windows: features of different versions live in different spaces, so
  they are recomputed from the stored images (``monitoring.windows``) rather than kept
  from the answers of whichever version was serving at the time.
* **Image statistics** of the model input (:mod:`serving.image_stats`): model-independent and
  cheap, computed by the web app on every upload and kept in the prediction record
  (``image_stats``), so they are there even for images whose file is gone.

:class:`DriftSpace` puts both on one scale: network features standardised and projected
on their first principal components (fitted on the reference), image statistics
standardised; the MMD then weighs them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving.image_stats import NAMES, image_statistics, stats_array, stats_dict
from serving.lungs import LungSegmenter

__all__ = ["IMAGE_FEATURES", "DriftSpace", "NetworkFeatures", "image_statistics",
           "stats_array", "stats_dict"]

IMAGE_FEATURES = NAMES
BATCH = 16


class NetworkFeatures:
    """The served network's pooled features, from a registered version's ONNX file; for a
    model that classifies the lung region, on the lung crop its own segmenter cuts out,
    as the served pyfunc does (``serving.pyfunc.RadioModel.view``)."""

    def __init__(self, model_dir: str | Path, threads: int = 2) -> None:
        import onnxruntime as ort  # the [serve] extra: on the jobs' host, never in the app

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        onnx = Path(model_dir) / "artifacts" / "model.onnx"
        self.session = ort.InferenceSession(str(onnx), opts,
                                            providers=["CPUExecutionProvider"])
        lungs = Path(model_dir) / "artifacts" / "lungs.onnx"
        self.lungs = LungSegmenter(str(lungs), threads) if lungs.is_file() else None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``(N, D)`` float features of uint8 ``(N, H, W)`` images."""
        if self.lungs is not None and len(images):
            images = self.lungs.crop(np.asarray(images, np.uint8))[0]
        out = []
        for i in range(0, len(images), BATCH):
            x = np.asarray(images[i:i + BATCH], dtype=np.float32)[..., None]
            out.append(self.session.run(["features"], {"image": x})[0])
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@dataclass
class DriftSpace:
    """Standardisation and projection fitted on the reference window."""

    net_mean: np.ndarray
    net_scale: np.ndarray
    basis: np.ndarray  # (components, D)
    pc_scale: np.ndarray
    stat_mean: np.ndarray
    stat_scale: np.ndarray

    @classmethod
    def fit(cls, network: np.ndarray, stats: np.ndarray, components: int = 20) -> DriftSpace:
        """Fit on the reference's network features ``(N, D)`` and statistics ``(N, S)``."""
        net = np.asarray(network, np.float64)
        mean, scale = net.mean(axis=0), net.std(axis=0) + 1e-6
        z = (net - mean) / scale
        _, _, vt = np.linalg.svd(z, full_matrices=False)
        basis = vt[: min(components, len(vt))]
        pcs = z @ basis.T
        st = np.asarray(stats, np.float64)
        return cls(mean, scale, basis, pcs.std(axis=0) + 1e-6, st.mean(axis=0),
                   st.std(axis=0) + 1e-6)

    def names(self) -> list[str]:
        """Names of the columns :meth:`transform` returns."""
        return [f"pc{i + 1}" for i in range(len(self.basis))] + list(IMAGE_FEATURES)

    def transform(self, network: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """``(N, components + S)``: the vectors the two-sample test compares."""
        z = (np.asarray(network, np.float64) - self.net_mean) / self.net_scale
        pcs = (z @ self.basis.T) / self.pc_scale
        st = (np.asarray(stats, np.float64) - self.stat_mean) / self.stat_scale
        return np.concatenate([pcs, st], axis=1)
