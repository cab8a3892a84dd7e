"""Lung segmentation: a small U-Net trained on ``../shared/lung-masks``, exported to ONNX.

``python -m training.lungs --masks ../shared/lung-masks --out build/lungs`` trains it on
every dataset's train split (JSRT/SCR and the radiologist-drawn COVID-era masks), reports
Dice per dataset on their val splits, and writes ``lungs.onnx`` + ``lungs.json``.

The network sees what it will be served: the app's square ``IMAGE_SIZE`` greyscale image
(aspect ratio squashed, as on the wire) shrunk to ``serving.lungs.SEG_SIZE``. Augmentation
moves image and mask together (rotation, shift, zoom) and changes only the image's
exposure (gamma, contrast, noise), since the COVID-era films are low-resolution journal
figures with arrows and letters.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from serving.lungs import SEG_SIZE, seg_input
from serving.preprocessing import IMAGE_SIZE, preprocess_path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

FILTERS = (8, 16, 32, 64)


def load_split(root: Path, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{dataset: (images (N, S, S, 1) float 0-255, masks (N, S, S, 1) float 0/1)}``."""
    out = {}
    for ds in sorted(p for p in root.iterdir() if (p / split / "images").is_dir()):
        imgs, masks = [], []
        for img_path in sorted((ds / split / "images").glob("*.png")):
            mask_path = ds / split / "masks" / img_path.name
            if not mask_path.exists():
                continue
            imgs.append(preprocess_path(img_path, IMAGE_SIZE))
            m = Image.open(mask_path).convert("L").resize(
                (SEG_SIZE, SEG_SIZE), Image.Resampling.BILINEAR
            )
            masks.append(np.asarray(m, np.float32) > 127)
        if imgs:
            y = np.stack(masks)[..., None].astype(np.float32)
            out[ds.name] = (seg_input(np.stack(imgs)), y)
    return out


def build_unet(filters: tuple[int, ...] = FILTERS) -> keras.Model:
    """Image 0-255 ``(N, SEG_SIZE, SEG_SIZE, 1)`` -> lung probability, same shape."""
    inp = keras.Input((SEG_SIZE, SEG_SIZE, 1), name="image")
    x = layers.Rescaling(1 / 127.5, -1.0)(inp)
    skips = []
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"enc{i}a")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"encbn{i}")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"enc{i}b")(x)
        if i < len(filters) - 1:
            skips.append(x)
            x = layers.MaxPooling2D(2)(x)
    for i, f in reversed(list(enumerate(filters[:-1]))):
        x = layers.UpSampling2D(2, interpolation="bilinear")(x)
        x = layers.Concatenate()([x, skips[i]])
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"dec{i}a")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"decbn{i}")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"dec{i}b")(x)
    out = layers.Conv2D(1, 1, activation="sigmoid", name="lungs")(x)
    return keras.Model(inp, out, name="lungs")


def dice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice per image of boolean masks."""
    pred, truth = pred.reshape(len(pred), -1), truth.reshape(len(truth), -1)
    inter = (pred & truth).sum(axis=1)
    return 2 * inter / np.maximum(pred.sum(axis=1) + truth.sum(axis=1), 1)


def _loss(y, p):
    inter = tf.reduce_sum(y * p, axis=(1, 2, 3))
    soft_dice = (2 * inter + 1) / (tf.reduce_sum(y + p, axis=(1, 2, 3)) + 1)
    bce = tf.reduce_mean(keras.losses.binary_crossentropy(y, p), axis=(1, 2))
    return bce + (1 - soft_dice)


def _augment(seed: int):
    geo = keras.Sequential(
        [
            layers.RandomRotation(0.04, fill_mode="constant", seed=seed),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=seed + 2),
        ]
    )

    def apply(x, y):
        both = geo(tf.concat([x, y * 255.0], axis=-1), training=True)
        x, y = both[..., :1], tf.cast(both[..., 1:] > 127.0, tf.float32)
        n = tf.shape(x)[0]
        gamma = tf.exp(tf.random.uniform((n, 1, 1, 1), -0.4, 0.4))
        x = 255.0 * tf.pow(tf.clip_by_value(x / 255.0, 0.0, 1.0), gamma)
        mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
        x = mean + (x - mean) * tf.random.uniform((n, 1, 1, 1), 0.7, 1.3)
        x = x + tf.random.uniform((n, 1, 1, 1), 0, 8) * tf.random.normal(tf.shape(x))
        return tf.clip_by_value(x, 0.0, 255.0), y

    return apply


def train(
    data: dict[str, tuple[np.ndarray, np.ndarray]], epochs: int, seed: int = 0,
    batch_size: int = 16,
) -> keras.Model:
    """Fit the U-Net on every dataset of ``data`` together (cosine learning rate)."""
    keras.utils.set_random_seed(seed)
    x = np.concatenate([v[0] for v in data.values()])
    y = np.concatenate([v[1] for v in data.values()])
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed)
        .batch(batch_size)
        .map(_augment(seed))
        .prefetch(2)
    )
    model = build_unet()
    steps = -(-len(x) // batch_size)
    lr = keras.optimizers.schedules.CosineDecay(3e-3, epochs * steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=_loss)
    model.fit(ds, epochs=epochs, verbose=2)
    return model


def evaluate(model: keras.Model, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    """Mean and 10th-percentile Dice per dataset."""
    out = {}
    for name, (x, y) in data.items():
        d = dice(model.predict(x, verbose=0) > 0.5, y > 0.5)
        out[name] = {"n": len(d), "dice_mean": round(float(d.mean()), 4),
                     "dice_p10": round(float(np.percentile(d, 10)), 4)}
    return out


def export(model: keras.Model, path: Path) -> Path:
    """ONNX copy of the U-Net (input ``image``, output ``lungs``)."""
    import tf2onnx

    spec = (tf.TensorSpec((None, SEG_SIZE, SEG_SIZE, 1), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    path.write_bytes(proto.SerializeToString())
    return path


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate per dataset, export."""
    p = argparse.ArgumentParser(prog="python -m training.lungs")
    p.add_argument("--masks", type=Path, default=Path("../shared/lung-masks"))
    p.add_argument("--out", type=Path, default=Path("build/lungs"))
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.masks.is_dir():
        print(f"error: lung-mask folder not found: {args.masks}")
        return 2
    t0 = time.monotonic()
    train_data, val_data = load_split(args.masks, "train"), load_split(args.masks, "val")
    model = train(train_data, args.epochs, args.seed)
    report = {"val": evaluate(model, val_data), "train": evaluate(model, train_data),
              "epochs": args.epochs, "seconds": round(time.monotonic() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "lungs.onnx")
    (args.out / "lungs.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
