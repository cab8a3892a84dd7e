"""What data drift compares: the network's own features and image statistics.

* **Network features**: the network's pooled features - the served ONNX graph's
  ``embedding`` output where it has one (the frozen-backbone versions, 10 on: the 1280
  pooled features), else its ``features`` (the ensembles' per-member pooled features, the
  ones the "not a chest X-ray" gate uses) - computed with ONE model version for both
  windows: features of different versions live in different spaces, so they are
  recomputed from the stored images (``monitoring.windows``) rather than kept from the
  answers of whichever version was serving at the time. Why not the frozen versions'
  ``features``: they are the gate's PCA, whitened on the training films and repeated once
  per fold, so every direction has the same variance on the reference and
  :class:`DriftSpace`'s "first" components would be an arbitrary 20 of 32.
* **Image statistics** of the model input (:mod:`serving.image_stats`): model-independent and
  cheap, computed by the web app on every upload and kept in the prediction record
  (``image_stats``), so they are there even for images whose file is gone.

:class:`DriftSpace` puts both on one scale: network features standardised on the reference
and projected on fixed random orthonormal directions, image statistics standardised; the
MMD then weighs them alike. Why random directions and not the reference's principal
components: a principal component fitted on the reference spreads the reference's own
films more than any other films (1280 features, ~600 films: the later components fit the
noise of those films), so windows of new patients of a known source had less spread along
them than the reference and were called new (hannover-covid 11 of 125 windows, version 10).
A projection fitted on nothing has no such bias whatever the version's features; it keeps
the films' distances (Johnson-Lindenstrauss) and the same width for every version.
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
COMPONENTS = 20  # random directions of the network features
PROJECTION_SEED = 0  # the directions are fixed: reference and window share them


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
        outputs = {o.name for o in self.session.get_outputs()}
        self.output = "embedding" if "embedding" in outputs else "features"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``(N, D)`` float features of uint8 ``(N, H, W)`` images."""
        if self.lungs is not None and len(images):
            images = self.lungs.crop(np.asarray(images, np.uint8))[0]
        out = []
        for i in range(0, len(images), BATCH):
            x = np.asarray(images[i:i + BATCH], dtype=np.float32)[..., None]
            out.append(self.session.run([self.output], {"image": x})[0])
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@dataclass
class DriftSpace:
    """Standardisation and projection fitted on the reference window."""

    net_mean: np.ndarray
    net_scale: np.ndarray
    basis: np.ndarray  # (components, D): orthonormal random directions
    pc_scale: np.ndarray
    stat_mean: np.ndarray
    stat_scale: np.ndarray

    @classmethod
    def fit(cls, network: np.ndarray, stats: np.ndarray,
            components: int = COMPONENTS) -> DriftSpace:
        """Fit on the reference's network features ``(N, D)`` and statistics ``(N, S)``: the
        means and sds only (one figure per column from hundreds of films: no fit to speak
        of); the directions are drawn, not fitted (module docstring)."""
        net = np.asarray(network, np.float64)
        mean, scale = net.mean(axis=0), net.std(axis=0) + 1e-6
        z = (net - mean) / scale
        width = net.shape[1]
        if width <= components:
            basis = np.eye(width)
        else:
            gauss = np.random.default_rng(PROJECTION_SEED).normal(size=(width, components))
            basis = np.linalg.qr(gauss)[0].T
        pcs = z @ basis.T
        st = np.asarray(stats, np.float64)
        return cls(mean, scale, basis, pcs.std(axis=0) + 1e-6, st.mean(axis=0),
                   st.std(axis=0) + 1e-6)

    def names(self) -> list[str]:
        """Names of the columns :meth:`transform` returns."""
        return [f"net{i + 1}" for i in range(len(self.basis))] + list(IMAGE_FEATURES)

    def transform(self, network: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """``(N, components + S)``: the vectors the two-sample test compares."""
        z = (np.asarray(network, np.float64) - self.net_mean) / self.net_scale
        pcs = (z @ self.basis.T) / self.pc_scale
        st = (np.asarray(stats, np.float64) - self.stat_mean) / self.stat_scale
        return np.concatenate([pcs, st], axis=1)
