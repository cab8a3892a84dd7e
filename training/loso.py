"""Leave-one-source-out: the honest estimate of what a hospital the model never saw gets.

``python -m training.loso --recipe crop-strong --data-root ../shared/data
--lungs build/lungs/lungs.onnx --out build/loso`` trains, for each source, one network
(``--members N``: N networks of seeds SEED.. answering by their mean logits) of
the recipe on the train splits of the OTHER sources (early stopping, temperature and COVID
threshold on a patient-grouped fifth of them), then evaluates it on every image of the
held-out source (its train and val splits: none of them took part). It writes
``<out>/<recipe>.json`` with, per held-out source:

* ``covid_recall`` (COVID films called COVID), ``called_covid`` (non-COVID films called
  COVID), ``accuracy``, and the ``balanced`` figure of the issue: COVID recall for a
  COVID-only source, 1 - called_covid for a source without COVID, their mean for a mixed one;
* the same with test-time augmentation (``tta``: mean logits over shifted and zoomed
  copies; no retraining);
* ``heat_in_lungs``: the share of the chosen class's heatmap inside the lung mask the
  segmenter draws on the full film (what a "looks at the lungs" claim rests on).

The "not a chest X-ray" gate is not fitted here (it needs real negatives and a packaged
model): refusals are not counted, so these figures are on every image. Recipes are
selected on these figures and on cross-validation only, never on the val splits.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from serving.decision import COVID, decide, softmax
from serving.heatmap import heatmaps
from serving.lungs import SEG_SIZE, LungSegmenter, in_lungs, uncrop
from serving.preprocessing import IMAGE_SIZE
from training import data, sampling
from training.data import Dataset
from training.fit import HParams
from training.packaging import calibrate
from training.sources import EXTRA, SOURCES, training_sources


@dataclass(frozen=True)
class Recipe:
    """What a network is trained on and how."""

    lungs: bool
    hp: HParams


_BASE = HParams(epochs=24, schedule="cosine", patience=8)
RECIPES = {
    # Version 1's recipe (whole film, standard augmentation), on the same footing.
    "v1": Recipe(False, _BASE),
    "crop": Recipe(True, _BASE),
    "strong": Recipe(False, replace(_BASE, augment="strong", mixup=0.2)),
    "crop-strong": Recipe(True, replace(_BASE, augment="strong", mixup=0.2)),
    # The two halves of "strong" alone, each against version 1's recipe.
    "mixup": Recipe(False, replace(_BASE, mixup=0.2)),
    "strong-nomix": Recipe(False, replace(_BASE, augment="strong")),
}

# Test-time augmentation: (zoom, dy, dx) as fractions of the side; identity first. Shifts
# go with a zoom so the view stays inside the film.
TTA = ((1.0, 0.0, 0.0), (1.08, 0.0, 0.0), (1.08, 0.03, 0.0), (1.08, -0.03, 0.0),
       (1.08, 0.0, 0.03), (1.08, 0.0, -0.03))


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """The :data:`TTA` copies of uint8 ``(N, H, W)`` images (zoom in = centre crop)."""
    from serving.lungs import crop

    views = []
    for zoom, dy, dx in TTA:
        half = 0.5 / zoom
        b = (0.5 - half + dy, 0.5 - half + dx, 0.5 + half + dy, 0.5 + half + dx)
        views.append(images if (zoom, dy, dx) == TTA[0]
                     else np.stack([crop(im, b) for im in images]))
    return views


def figures(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float | None]:
    """COVID recall, non-COVID called COVID, accuracy and the balanced figure."""
    c = classes.index(COVID)
    pos, neg = y == c, y != c
    recall = float(np.mean(pred[pos] == c)) if pos.any() else None
    called = float(np.mean(pred[neg] == c)) if neg.any() else None
    parts = [v for v in (recall, None if called is None else 1 - called) if v is not None]
    return {"n": int(len(y)), "covid_recall": recall, "called_covid": called,
            "accuracy": float(np.mean(pred == y)), "balanced": float(np.mean(parts))}


def held_out_split(ds: Dataset, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, stop)`` indices: a patient-grouped fifth for early stopping and calibration."""
    fit, stop = sampling.patient_folds(ds, 5, seed)[0]
    return fit, stop


def one_source(
    train: Dataset, test: Dataset, recipe: Recipe, seed: int, size: int,
    seg: LungSegmenter | None, members: int = 1,
) -> dict:
    """Train on ``train``, evaluate on ``test`` (another source); the figures.

    ``members`` > 1: that many networks (seeds ``seed``, ``seed + 1``...; same early-stopping
    fifth) answer together by their mean logits, as the shipped ensemble's members do.
    """
    from training.fit import predict_logits, train_member
    from training.model import build_ensemble

    classes = train.classes
    test_masks = seg.masks(test.images) if seg is not None else None
    boxes = None
    train_x, test_x = train.images, test.images
    if recipe.lungs:
        assert seg is not None, "a lung-crop recipe needs the segmenter"
        train_x, _, _ = seg.crop(train.images)
        test_x, _, boxes = seg.crop(test.images)
    weights = sampling.balanced_weights(train)
    fit, stop = held_out_split(train, seed)
    y = train.y
    nets, epochs_run = [], []
    for m in range(members):
        net, history = train_member(
            (train_x[fit], y[fit], weights[fit]), (train_x[stop], y[stop], weights[stop]),
            len(classes), size, recipe.hp, seed=seed + m, name=f"member{m}", verbose=2,
        )
        nets.append(net)
        epochs_run.append(len(history.get("loss", [])))

    def logits(images: np.ndarray) -> np.ndarray:
        return np.mean([predict_logits(net, images) for net in nets], axis=0)

    temperature, threshold = calibrate(logits(train_x[stop]), y[stop], classes)
    pred = decide(softmax(logits(test_x), temperature), classes, threshold)
    tta_logits = np.mean([logits(v) for v in tta_views(test_x)], axis=0)
    tta_pred = decide(softmax(tta_logits, temperature), classes, threshold)
    out = {"all": figures(pred, test.y, classes), "tta": figures(tta_pred, test.y, classes),
           "epochs_run": epochs_run[0] if members == 1 else epochs_run,
           "temperature": temperature, "covid_threshold": threshold}
    if test_masks is not None:
        cam = np.asarray(build_ensemble(nets, size)(
            test_x[..., None].astype(np.float32), training=False)[1])
        maps = heatmaps(cam, pred, SEG_SIZE)
        if boxes is not None:
            maps = np.stack([uncrop(m, b) for m, b in zip(maps, boxes, strict=True)])
        shares = np.array([in_lungs(m, k) for m, k in zip(maps, test_masks, strict=True)])
        out["heat_in_lungs"] = {"mean": float(shares.mean()),
                                "p10": float(np.percentile(shares, 10))}
    return out


def run(
    data_root: Path, recipe_name: str, lungs: Path | None, seed: int = 42,
    size: int = IMAGE_SIZE, only: list[str] | None = None, epochs: int | None = None,
    members: int = 1, extra: tuple[str, ...] = (),
) -> dict:
    """Every held-out source for one recipe; returns ``{source: figures}``. ``extra``:
    train-only sources (``training.sources.EXTRA``) added to every training set; one named
    in ``only`` is loaded to be held out."""
    recipe = RECIPES[recipe_name]
    if epochs is not None:
        recipe = replace(recipe, hp=replace(recipe.hp, epochs=epochs))
    seg = LungSegmenter(str(lungs), threads=2) if lungs else None
    held_extra = [s for s in only or () if s in EXTRA]
    paths = training_sources(data_root, tuple(dict.fromkeys([*extra, *held_extra])))
    train_all = data.load(paths, "train", size=size)
    val_all = data.load(paths, "val", classes=train_all.classes, size=size)
    results = {}
    for held in only or SOURCES:
        t0 = time.monotonic()
        keep = train_all.sources != held
        test = Dataset(
            [s for s in train_all.samples if s.source == held]
            + [s for s in val_all.samples if s.source == held],
            np.concatenate([train_all.images[~keep], val_all.images[val_all.sources == held]]),
            train_all.classes,
        )
        print(f"=== {recipe_name}: held out {held} ({len(test.samples)} images) ===", flush=True)
        res = one_source(train_all.subset(np.flatnonzero(keep)), test, recipe, seed, size, seg,
                         members)
        res["seconds"] = round(time.monotonic() - t0, 1)
        results[held] = res
        print(json.dumps({held: res}), flush=True)
    label = recipe_name if members == 1 else f"{recipe_name} x{members}"
    label += "".join(f" + {e}" for e in extra)
    return {"recipe": label, "lungs": recipe.lungs, "hparams": asdict(recipe.hp),
            "seed": seed, "members": members, "sources": [p.name for p in paths],
            "held_out": results}


def table(results: list[dict]) -> str:
    """Markdown: one row per recipe (and per recipe with TTA), one column per held-out
    source (balanced figure; heatmap share in the lungs), and their mean."""
    sources = [s for s in (*SOURCES, *EXTRA) if any(s in r["held_out"] for r in results)]
    head = "| recipe | " + " | ".join(sources) + " | mean |"
    lines = [head, "|" + "---|" * (len(sources) + 2)]
    for r in results:
        for view, label in (("all", r["recipe"]), ("tta", f"{r['recipe']} + TTA")):
            cells, vals = [], []
            for s in sources:
                res = r["held_out"].get(s)
                if res is None:
                    cells.append("–")
                    continue
                v = res[view]["balanced"]
                vals.append(v)
                heat = res.get("heat_in_lungs")
                cells.append(f"{v:.3f}" + (f" ({heat['mean']:.2f})" if heat and view == "all"
                                           else ""))
            mean = f"{np.mean(vals):.3f}" if len(vals) == len(sources) else "–"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def log_to_mlflow(result: dict, registry: Path) -> str:
    """One run per recipe in the experiment ``radio-loso`` of the registry; its id."""
    import mlflow

    from training.registry_folder import open_registry
    from training.tracking import git_commit

    with open_registry(registry) as root:
        if mlflow.get_experiment_by_name("radio-loso") is None:  # artefacts inside the registry
            mlflow.create_experiment("radio-loso", artifact_location=str(root / "artifacts"))
        mlflow.set_experiment("radio-loso")
        with mlflow.start_run(run_name=f"loso {result['recipe']}") as run:
            mlflow.set_tags({"git_commit": git_commit(), "recipe": result["recipe"],
                             # what trained (older results predate the key)
                             "sources": ",".join(result.get("sources", SOURCES))})
            mlflow.log_params({"lungs": result["lungs"], "seed": result["seed"],
                               **{f"hp_{k}": v for k, v in result["hparams"].items()}})
            for src, res in result["held_out"].items():
                for view in ("all", "tta"):
                    for k, v in res[view].items():
                        if v is not None and k != "n":
                            mlflow.log_metric(f"{src}.{view}.{k}", v)
                if "heat_in_lungs" in res:
                    mlflow.log_metric(f"{src}.heat_in_lungs", res["heat_in_lungs"]["mean"])
            mlflow.log_dict(result, "loso.json")
            return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    """Run one recipe and write its JSON (or print the table of finished ones)."""
    p = argparse.ArgumentParser(prog="python -m training.loso")
    p.add_argument("--recipe", choices=sorted(RECIPES))
    p.add_argument("--table", nargs="+", type=Path, metavar="JSON",
                   help="print the markdown table of finished recipes' JSON files (and log "
                   "them with --registry)")
    p.add_argument("--registry", type=Path, default=None,
                   help="also log the recipe's result as a run of the registry's MLflow")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--lungs", type=Path, default=None, help="segmenter ONNX (build/lungs)")
    p.add_argument("--out", type=Path, default=Path("build/loso"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--only", nargs="+", choices=(*SOURCES, *EXTRA), default=None,
                   help="held-out sources (default: the evaluated ones, training.sources.SOURCES)")
    p.add_argument("--extra-source", nargs="+", choices=sorted(EXTRA), default=[],
                   help="train-only sources (training.sources.EXTRA) in every training set")
    p.add_argument("--epochs", type=int, default=None, help="override (smoke runs)")
    p.add_argument("--members", type=int, default=1,
                   help="networks per held-out source, seeds SEED, SEED+1... (mean logits)")
    args = p.parse_args(argv)
    if args.table:
        results = [json.loads(f.read_text()) for f in args.table]
        print(table(results))
        for result in results if args.registry is not None else []:
            print(f"logged {result['recipe']}: run {log_to_mlflow(result, args.registry)}")
        return 0
    if args.recipe is None:
        p.error("give --recipe (or --table)")
    if RECIPES[args.recipe].lungs and args.lungs is None:
        p.error("this recipe crops the lungs: give --lungs")
    if args.members < 1:
        p.error("--members must be 1 or more")
    result = run(args.data_root, args.recipe, args.lungs, args.seed, only=args.only,
                 epochs=args.epochs, members=args.members, extra=tuple(args.extra_source))
    args.out.mkdir(parents=True, exist_ok=True)
    # the file is named after the label: "v1 x3 + jsrt-adult-normal" -> v1-x3+jsrt-adult-normal
    name = result["recipe"].replace(" x", "-x").replace(" + ", "+")
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    if args.registry is not None:
        log_to_mlflow(result, args.registry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
