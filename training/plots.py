"""Figures logged with every training run (PNG, matplotlib without a display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from training.calibration import reliability  # noqa: E402


def confusion(y, pred, classes: list[str], path: Path, title: str) -> Path:
    """Confusion matrix with counts; a prediction of -1 (refused: not a chest X-ray) gets
    its own "refused" column, so refusals stay visible instead of vanishing."""
    k = len(classes)
    columns = list(classes) + (["refused"] if np.any(np.asarray(pred) < 0) else [])
    m = np.zeros((k, len(columns)), int)
    for t, p in zip(y, pred, strict=True):
        m[t, p if p >= 0 else k] += 1
    fig, ax = plt.subplots(figsize=(5 + len(columns) - k, 4.5))
    ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(len(columns)):
            ax.text(j, i, m[i, j], ha="center", va="center")
    ax.set_xticks(range(len(columns)), columns, rotation=20)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def roc(y, probs, classes: list[str], path: Path, title: str) -> Path:
    """One-vs-rest ROC curve per class present."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for k, name in enumerate(classes):
        if 0 < np.sum(y == k) < len(y):
            fpr, tpr, _ = roc_curve(y == k, probs[:, k])
            ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y == k, probs[:, k]):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def curves(histories: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """Training and held-out loss of each cross-validation member."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, h in histories.items():
        for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
            line = ax.plot(h.get(key, []), label=f"{name} train")[0]
            if f"val_{key}" in h:
                ax.plot(h[f"val_{key}"], "--", color=line.get_color(), label=f"{name} held-out")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def reliability_diagram(y, curves_by_name: dict[str, np.ndarray], path: Path, title: str) -> Path:
    """Accuracy against confidence per bin, one line per set of probabilities."""
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect")
    for name, probs in curves_by_name.items():
        _, rows = reliability(probs, y)
        pts = [(c, a) for c, a, n in rows if n]
        ax.plot(*zip(*pts, strict=True), "o-", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
