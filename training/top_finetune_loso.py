"""Leave-one-source-out of the partially fine-tuned Lite0 (:mod:`training.top_finetune`).

``python -m training.top_finetune_loso --data-root ../shared/data --seeds 42 1 7
--out build/loso`` does what :mod:`training.frozen_loso` does for the frozen recipe, on the
same footing (same held-out sources, seeds, fit/stop split, class-balanced weights,
calibration and figures): for each held-out source the top is fine-tuned on the train
splits of the OTHER sources (the linear probe's strength by patient-grouped 3-fold CV on
the fit films, early stopping and temperature/COVID threshold on the patient-grouped stop
fifth a seed picks), then every film of the held-out source (train and val) is answered.
It writes ``<out>/lite0-top-finetune[+extra].json``; each row also keeps the frozen
recipe's answer on the same split (``frozen``: epoch 0, the linear probe before any
fine-tuning), so the two are compared on identical fits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from serving.decision import decide, softmax
from training import data, familiarity, sampling
from training.data import Dataset
from training.frozen_loso import CLASSES, held_out
from training.loso import figures, held_out_split
from training.packaging import calibrate
from training.sources import EXTRA, SOURCES, training_sources
from training.top_finetune import TopHParams, activations_of, fine_tune, frozen_pooled, predict


def _answers(logits_stop, y_stop, logits_test, y_test) -> tuple[dict, float | None]:
    temperature, threshold = calibrate(logits_stop, y_stop, CLASSES)
    pred = decide(softmax(logits_test, temperature), CLASSES, threshold)
    return figures(pred, y_test, CLASSES), threshold


def one_source(train: Dataset, mtrain: np.ndarray, ftrain: np.ndarray, test: Dataset,
               mtest: np.ndarray, ftest: np.ndarray, seed: int, hp: TopHParams) -> dict:
    """Top fine-tuned on ``train`` (other sources); figures on ``test``."""
    fit, stop = held_out_split(train, seed)
    sub = train.subset(fit)
    folds = sampling.patient_folds(sub, 3, seed)
    weights = sampling.balanced_weights(train)
    t0 = time.monotonic()
    res = fine_tune(mtrain[fit], sub.y, sampling.balanced_weights(sub), folds, mtrain[stop],
                    train.y[stop], weights[stop], len(CLASSES), hp, seed)
    stop_logits, stop_pooled = predict(res.top, mtrain[stop])
    test_logits, test_pooled = predict(res.top, mtest)
    fit_pooled = predict(res.top, mtrain[fit])[1]
    out, threshold = _answers(stop_logits, train.y[stop], test_logits, test.y)
    # epoch 0: the linear probe on the frozen features, calibrated the same way
    frozen, _ = _answers(res.probe.logits(ftrain[stop]), train.y[stop],
                         res.probe.logits(ftest), test.y)
    fam = familiarity.fit(fit_pooled, stop_pooled)
    row = {"all": out, "frozen": frozen, "c": res.c, "covid_threshold": threshold,
           "best_epoch": res.best_epoch, "stop_loss": res.stop_loss,
           "seconds_per_epoch": round(res.seconds_per_epoch, 1),
           "seconds": round(time.monotonic() - t0, 1),
           "unfamiliar": float(fam.unfamiliar(test_pooled).mean()),
           "seen_unfamiliar": float(fam.unfamiliar(stop_pooled).mean())}
    return row


def run(root: Path, seeds: list[int], extra: tuple[str, ...] = (),
        only: list[str] | None = None, cache: Path | None = None,
        hp: TopHParams | None = None) -> dict:
    """Every held-out source x seed; the result dict (written as JSON by :func:`main`)."""
    hp = hp or TopHParams()
    sources = training_sources(root, extra)
    train = data.load(sources, "train", classes=CLASSES)
    val = data.load(sources, "val", classes=CLASSES)
    mtrain, mval = activations_of(train.images, cache), activations_of(val.images, cache)
    ftrain, fval = frozen_pooled(mtrain), frozen_pooled(mval)
    recipe = "lite0-top-finetune" + "".join(f" + {e}" for e in extra)
    out: dict = {"recipe": recipe, "seeds": seeds, "hparams": hp.__dict__,
                 "sources": [str(getattr(s, "name", s)) for s in sources], "held_out": {}}
    for name in only or [*SOURCES, *extra]:
        keep, index, test = held_out(train, val, name)
        mtest = np.concatenate([mtrain, mval])[index]
        ftest = np.concatenate([ftrain, fval])[index]
        rows = []
        for s in seeds:
            rows.append(one_source(train.subset(np.flatnonzero(keep)), mtrain[keep],
                                   ftrain[keep], test, mtest, ftest, s, hp))
            print(f"{name} seed {s}: {json.dumps(rows[-1])}", flush=True)
        out["held_out"][name] = rows
        bal = [r["all"]["balanced"] for r in rows]
        fro = [r["frozen"]["balanced"] for r in rows]
        print(f"{name}: balanced {np.mean(bal):.3f} ({min(bal):.3f}-{max(bal):.3f}) "
              f"frozen {np.mean(fro):.3f} ({min(fro):.3f}-{max(fro):.3f}) "
              f"best epochs {[r['best_epoch'] for r in rows]}", flush=True)
    return out


def table(results: list[dict]) -> str:
    """Markdown: per recipe, the fine-tuned top and its epoch 0 (the frozen recipe on the
    same fits); per held-out source the balanced figure's mean (min-max) over the seeds."""
    sources = [s for s in (*SOURCES, *EXTRA) if any(s in r["held_out"] for r in results)]
    lines = ["| recipe | " + " | ".join(sources) + " | mean |", "|" + "---|" * (len(sources) + 2)]
    for r in results:
        lr = r["hparams"]["learning_rate"]
        for view, label in (("all", f"{r['recipe']} (Adam {lr:g})"),
                            ("frozen", f"{r['recipe']}, epoch 0 = frozen")):
            cells, means = [], []
            for s in sources:
                vals = [row[view]["balanced"] for row in r["held_out"].get(s, [])]
                means.append(np.mean(vals) if vals else np.nan)
                cells.append(f"{np.mean(vals):.3f} ({min(vals):.3f}-{max(vals):.3f})"
                             if vals else "–")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {np.mean(means):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.top_finetune_loso")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 7])
    p.add_argument("--extra-source", nargs="+", choices=sorted(EXTRA), default=[])
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--cache", type=Path, default=Path("build/features-ft"),
                   help="folder keeping the frozen bottom's activations between runs")
    p.add_argument("--epochs", type=int, default=TopHParams.epochs)
    p.add_argument("--learning-rate", type=float, default=TopHParams.learning_rate)
    p.add_argument("--out", type=Path, default=Path("build/loso"))
    p.add_argument("--table", nargs="+", type=Path, metavar="JSON",
                   help="print the markdown table of finished results instead of running")
    args = p.parse_args(argv)
    if args.table:
        print(table([json.loads(f.read_text()) for f in args.table]))
        return 0
    hp = TopHParams(learning_rate=args.learning_rate, epochs=args.epochs)
    result = run(args.data_root, args.seeds, tuple(args.extra_source), args.only, args.cache,
                 hp)
    args.out.mkdir(parents=True, exist_ok=True)
    name = result["recipe"].replace(" + ", "+")
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
