"""Measures the "not a chest X-ray" gate of the shipped model:
false rejections on the val X-rays and rejections on a non-X-ray set.

    python -m training.ood_eval [--registry mlflow] [--data ../shared/data]

Prints a table and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from serving.preprocessing import ImageError, preprocess, preprocess_path
from training.nonxray import non_xray_set
from training.registry import load_model


def evaluate(model, data_root: Path) -> dict:
    """Rates and counts for val X-rays (per source) and the non-X-ray set (per kind)."""
    val = sorted(
        p for p in data_root.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")
    )
    result: dict = {"val": {}, "non_xray": {}}
    if val:
        images = np.stack([preprocess_path(p) for p in val])
        preds = model.predict_arrays(images, heatmap=False)
        sources = [p.parts[-4] for p in val]
        for src in sorted(set(sources)) + ["union"]:
            idx = [i for i, s in enumerate(sources) if src in (s, "union")]
            rejected = sum(preds[i]["status"] == "not_xray" for i in idx)
            result["val"][src] = {"n": len(idx), "rejected": rejected}
    kinds: Counter = Counter()
    caught: Counter = Counter()
    missed = []
    for name, data in non_xray_set():
        kind = name.split(":")[0] if not name.startswith("generated") else name.rstrip("0123456789")
        kinds[kind] += 1
        try:
            pred = model.predict_arrays(preprocess(data)[None], heatmap=False)[0]
            is_caught = pred["status"] == "not_xray"
        except ImageError:
            is_caught = True  # refused at the door: also never diagnosed
        caught[kind] += is_caught
        if not is_caught:
            missed.append(name)
    result["non_xray"] = {k: {"n": kinds[k], "rejected": caught[k]} for k in sorted(kinds)}
    result["non_xray"]["union"] = {"n": sum(kinds.values()), "rejected": sum(caught.values())}
    result["missed"] = missed
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m training.ood_eval")
    parser.add_argument("--registry", type=Path, default=Path("mlflow"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    res = evaluate(load_model(args.registry), args.data)
    print(f"{'set':28} {'n':>5} {'rejected':>9} {'rate':>7}")
    for part in ("val", "non_xray"):
        for key, r in res[part].items():
            rate = r["rejected"] / r["n"]
            print(f"{part + '/' + key:28} {r['n']:5d} {r['rejected']:9d} {rate:7.3f}")
    if res["missed"]:
        print("non-X-rays let through:", ", ".join(res["missed"]))
    val_u, non_u = res["val"].get("union"), res["non_xray"]["union"]
    print(
        json.dumps(
            {
                "val_false_rejection_rate": val_u["rejected"] / val_u["n"] if val_u else None,
                "non_xray_rejection_rate": non_u["rejected"] / non_u["n"],
                "n_val": val_u["n"] if val_u else 0,
                "n_non_xray": non_u["n"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
