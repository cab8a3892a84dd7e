"""Command line: ``python -m training train (--data SRC [SRC...] | --data-root DIR |
--reference DIR)``."""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

from training.fit import HParams
from training.registry_folder import is_server
from training.sources import EXTRA, Source, missing, training_sources


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Arguments of the ``train`` command."""
    parser = argparse.ArgumentParser(prog="python -m training")
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train, evaluate, log and register a model")
    where = t.add_mutually_exclusive_group(required=True)
    where.add_argument("--data", nargs="+", type=Path, help="source folders")
    where.add_argument(
        "--data-root", type=Path, help="folder holding every source of training.sources.SOURCES"
    )
    where.add_argument(
        "--reference", type=Path,
        help="a reference dataset version (python -m app.datasets.service reference): its source "
        "folders, each kept apart for per-source evaluation",
    )
    t.add_argument(
        "--extra-source", nargs="+", choices=sorted(EXTRA), default=[],
        help="with --data-root: also train on these train-only sources (training.sources.EXTRA)")
    t.add_argument(
        "--registry", default="mlflow",
        help="registry folder, or the MLflow host's tracking server URL (through the SSH "
        "tunnel: http://127.0.0.1:5000, with MLFLOW_TRACKING_USERNAME/PASSWORD)")
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--epochs", type=int, default=HParams.epochs)
    t.add_argument("--batch-size", type=int, default=HParams.batch_size)
    t.add_argument(
        "--learning-rate",
        type=float,
        nargs="+",
        default=[HParams.learning_rate],
        help="several values: chosen by cross-validation",
    )
    t.add_argument(
        "--dropout",
        type=float,
        nargs="+",
        default=[HParams.dropout],
        help="several values: chosen by cross-validation",
    )
    t.add_argument("--patience", type=int, default=HParams.patience)
    t.add_argument(
        "--schedule",
        nargs="+",
        choices=["plateau", "cosine"],
        default=[HParams.schedule],
        help="learning-rate schedule(s); several: chosen by cross-validation",
    )
    t.add_argument("--augment", choices=["standard", "strong"], default=HParams.augment,
                   help="strong: random resized crops, simulated markers and borders")
    t.add_argument("--mixup", type=float, default=HParams.mixup, help="Beta(a, a); 0 = off")
    t.add_argument(
        "--lungs", type=Path, default=None,
        help="lung segmenter ONNX (python -m training.lungs): classify the lung region",
    )
    t.add_argument(
        "--backbone", choices=["scratch", "lite0-frozen"], default="scratch",
        help="lite0-frozen: ImageNet EfficientNet-Lite0 features + a cross-validated linear "
        "head, with the unfamiliar-film flag (training.frozen)")
    t.add_argument("--feature-cache", type=Path, default=None,
                   help="folder keeping the frozen backbone's features between runs")
    t.add_argument("--balance", choices=["weights", "downsample"], default="weights")
    t.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most N images per source, class and split (quick runs)",
    )
    t.add_argument("--image-size", type=int, default=None)
    promote = t.add_mutually_exclusive_group()
    promote.add_argument(
        "--promote", action="store_true",
        help="also move the production alias, WITHOUT the promotion gate (default: register "
        "only, then `python -m lifecycle deploy VERSION`)")
    promote.add_argument("--no-promote", action="store_true",
                         help="register without the alias (the default)")
    t.add_argument(
        "--negatives",
        type=Path,
        default=None,
        help="folder of real non-chest-X-ray images (<dir>/train/<kind>/*): gate check 4",
    )
    return parser.parse_args(argv)


def sources_of(args: argparse.Namespace) -> list[Source]:
    """The sources the arguments name."""
    if args.data_root is not None:
        return training_sources(args.data_root, args.extra_source)
    if args.reference is not None:
        if not args.reference.is_dir():
            return [args.reference]  # reported as not found
        return sorted(p for p in args.reference.iterdir() if p.is_dir())
    return list(args.data)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.data = sources_of(args)
    absent = missing(args.data + ([args.negatives] if args.negatives else []))
    if args.lungs is not None and not args.lungs.is_file():
        absent.append(f"{args.lungs} (python -m training.lungs makes it)")
    if absent:
        print(f"error: not found: {', '.join(absent)}", file=sys.stderr)
        return 2
    from serving.preprocessing import IMAGE_SIZE
    from training.pipeline import TrainConfig, run

    grid = [
        HParams(args.epochs, args.batch_size, lr, dr, args.patience, sch, args.augment,
                args.mixup)
        for lr, dr, sch in itertools.product(args.learning_rate, args.dropout, args.schedule)
    ]
    run(
        TrainConfig(
            sources=args.data,
            registry=args.registry if is_server(args.registry) else Path(args.registry),
            grid=grid,
            folds=args.folds,
            seed=args.seed,
            balance=args.balance,
            limit=args.limit,
            promote=args.promote,
            size=args.image_size or IMAGE_SIZE,
            negatives=args.negatives,
            lungs=args.lungs,
            backbone=args.backbone,
            feature_cache=args.feature_cache,
        )
    )
    return 0
