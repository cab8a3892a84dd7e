"""Leave-one-source-out of the frozen-backbone recipe, and of its unfamiliar-film flag.

``python -m training.frozen_loso --data-root ../shared/data --seeds 42 1 7 --out build/loso``
does for the frozen ImageNet Lite0 features (:mod:`training.frozen`) what
:mod:`training.loso` does for networks trained from scratch, on the same footing: for each
held-out source, the head is fitted on the train splits of the OTHER sources (its strength
by patient-grouped cross-validation on them), temperature and COVID threshold on a
patient-grouped fifth of them (a seed picks the fifth), then every image of the held-out
source (train and val) is answered. The figures are :func:`training.loso.figures`'.

The unfamiliar-film flag (:mod:`serving.familiarity`) is calibrated the way the shipped one
is: reference = the films the head was fitted on, threshold = the ``1 - target`` quantile of
the distances of the calibration fifth (unseen patients of the known sources); it is then
measured on the held-out source: how often it fires, and how many of the held-out films
wrongly called COVID carry a review flag (unfamiliar, or confidence below the review
threshold) - the acceptance: >= 70% of them, while <= 15% of seen-source films are flagged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from serving.decision import COVID, DEFAULT_REVIEW_THRESHOLD, decide, softmax
from training import data, familiarity, sampling
from training.data import Dataset
from training.familiarity import TARGET, K
from training.frozen import cross_validate, features_of
from training.loso import figures, held_out_split
from training.packaging import calibrate
from training.sources import EXTRA, SOURCES, training_sources

CLASSES = ["COVID", "Normal", "Viral Pneumonia", "Other Abnormal"]


def one_source(train: Dataset, ftrain: np.ndarray, test: Dataset, ftest: np.ndarray,
               seed: int) -> dict:
    """Head fitted on ``train`` (other sources), answers and flag on ``test``."""
    fit, stop = held_out_split(train, seed)
    sub = train.subset(fit)
    folds = sampling.patient_folds(sub, 3, seed)
    cv = cross_validate(ftrain[fit], sub.y, sampling.balanced_weights(sub), folds, len(CLASSES))
    head = cv.mean_head()
    temperature, threshold = calibrate(head.logits(ftrain[stop]), train.y[stop], CLASSES)
    probs = softmax(head.logits(ftest), temperature)
    pred = decide(probs, CLASSES, threshold)
    fam = familiarity.fit(ftrain[fit], ftrain[stop])
    unfamiliar = fam.unfamiliar(ftest)
    seen_flag = fam.unfamiliar(ftrain[stop])
    low = probs[np.arange(len(pred)), pred] < DEFAULT_REVIEW_THRESHOLD
    review = unfamiliar | low
    c = CLASSES.index(COVID)
    wrong_covid = (pred == c) & (test.y != c)
    res = {"all": figures(pred, test.y, CLASSES), "c": cv.c, "covid_threshold": threshold,
           "accuracy4": float(np.mean(pred == test.y)),
           "unfamiliar": float(unfamiliar.mean()), "review": float(review.mean()),
           "seen_unfamiliar": float(seen_flag.mean()),
           "seen_review": float((seen_flag | (softmax(head.logits(ftrain[stop]), temperature)
                                              .max(1) < DEFAULT_REVIEW_THRESHOLD)).mean()),
           "wrong_covid": int(wrong_covid.sum()),
           "wrong_covid_flagged": int((wrong_covid & review).sum()),
           "wrong_covid_unfamiliar": int((wrong_covid & unfamiliar).sum())}
    return res


def held_out(train: Dataset, val: Dataset, name: str) -> tuple[np.ndarray, np.ndarray, Dataset]:
    """``(keep, test_index, test)``: the train images of the other sources (a mask), and
    every image of source ``name``, its train then its val split (indices into the train
    and val images concatenated), as one Dataset."""
    keep = train.sources != name
    ev_tr, ev_va = np.flatnonzero(~keep), np.flatnonzero(val.sources == name)
    test = Dataset([*(train.samples[i] for i in ev_tr), *(val.samples[i] for i in ev_va)],
                   np.concatenate([train.images[ev_tr], val.images[ev_va]]), train.classes)
    return keep, np.concatenate([ev_tr, len(train.samples) + ev_va]), test


def run(root: Path, seeds: list[int], extra: tuple[str, ...] = (),
        only: list[str] | None = None, cache: Path | None = None) -> dict:
    """Every held-out source x seed; the result dict (written as JSON by :func:`main`)."""
    sources = training_sources(root, extra)
    train = data.load(sources, "train", classes=CLASSES)
    val = data.load(sources, "val", classes=CLASSES)
    ftrain, fval = features_of(train.images, cache), features_of(val.images, cache)
    recipe = "lite0-frozen" + "".join(f" + {e}" for e in extra)
    out: dict = {"recipe": recipe, "seeds": seeds, "k": K, "target": TARGET,
                 "sources": [str(getattr(s, "name", s)) for s in sources], "held_out": {}}
    for name in only or [*SOURCES, *extra]:
        keep, index, test = held_out(train, val, name)
        ftest = np.concatenate([ftrain, fval])[index]
        rows = [one_source(train.subset(np.flatnonzero(keep)), ftrain[keep], test, ftest, s)
                for s in seeds]
        out["held_out"][name] = rows
        bal = [r["all"]["balanced"] for r in rows]
        print(f"{name}: balanced {np.mean(bal):.3f} ({min(bal):.3f}-{max(bal):.3f}) "
              f"called COVID {[r['all']['called_covid'] for r in rows]} "
              f"unfamiliar {[round(r['unfamiliar'], 2) for r in rows]} "
              f"wrong COVID flagged {[(r['wrong_covid_flagged'], r['wrong_covid']) for r in rows]}",
              flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.frozen_loso")
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 7])
    p.add_argument("--extra-source", nargs="+", choices=sorted(EXTRA), default=[])
    p.add_argument("--only", nargs="+", default=None)
    p.add_argument("--cache", type=Path, default=Path("build/features"),
                   help="folder keeping the backbone's features between runs")
    p.add_argument("--out", type=Path, default=Path("build/loso"))
    args = p.parse_args(argv)
    result = run(args.data_root, args.seeds, tuple(args.extra_source), args.only, args.cache)
    args.out.mkdir(parents=True, exist_ok=True)
    name = result["recipe"].replace(" + ", "+")
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
