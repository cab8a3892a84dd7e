"""The end-of-run table: per source, the CNN beside the pixel baseline."""

from __future__ import annotations

# "answered" figures are on the images the model answered; "seen" ones are what a clinician
# sees, a refusal ("not a chest X-ray") counting as no diagnosis (training/evaluation.py).
COLUMNS = [
    ("n", "n", "{:.0f}"),
    ("refused", "refused", "{:.0f}"),
    ("accuracy", "acc answered", "{:.3f}"),
    ("seen_accuracy", "acc seen", "{:.3f}"),
    ("covid_recall", "COVID rec ans.", "{:.3f}"),
    ("seen_covid_recall", "COVID rec seen", "{:.3f}"),
    ("non_covid_called_covid", "non-COVID->COVID", "{:.3f}"),
    ("macro_auc", "macro AUC", "{:.3f}"),
]


def _cell(report: dict, key: str, fmt: str) -> str:
    return fmt.format(report[key]) if key in report else "-"


def format_table(reports: dict[str, dict[str, dict]]) -> str:
    """Rows ``model / source``, columns of :data:`COLUMNS`."""
    header = f"{'model':9} {'source':18} " + " ".join(f"{h:>16}" for _, h, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    for model, by_source in reports.items():
        for src, rep in by_source.items():
            cells = " ".join(f"{_cell(rep, k, f):>16}" for k, _, f in COLUMNS)
            lines.append(f"{model:9} {src:18} {cells}")
    return "\n".join(lines)


def format_summary(summary: dict) -> str:
    """Human summary printed at the end of a training run."""
    cal = summary["calibration"]
    model = summary.get("model", {})
    return "\n".join(
        [
            "",
            "=== Radio training run summary (val splits, used once) ===",
            format_table({"cnn": summary["val"], "baseline": summary["baseline"]}),
            "",
            "CV accuracy (out-of-fold): "
            f"{summary['cv_accuracy'][0]:.3f} ± {summary['cv_accuracy'][1]:.3f}",
            f"temperature {summary['temperature']:.3f}; "
            f"COVID threshold {summary['covid_threshold']}",
            f"ECE out-of-fold {cal['ece_oof_before']:.3f} -> {cal['ece_oof_after']:.3f}; "
            f"val {cal['ece_val_before']:.3f} -> {cal['ece_val_after']:.3f}",
            f"val X-rays refused as not-X-ray: {summary['val_ood_false_rejections']}",
            f"ONNX vs Keras max |diff|: {max(summary['onnx_max_diff'].values()):.2e}",
            f"registered {model.get('name')} version {model.get('version')} "
            f"alias '{model.get('alias')}'; dataset {summary['dataset_version']}; "
            f"{summary['seconds']:.0f} s",
        ]
    )
