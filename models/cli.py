"""Command-line glue: ``aftercare models build|eval|ablate`` and the default-model bootstrap.

``register`` adds the two subcommands to an argparse subparsers object; each sets
``func(args) -> int``. ``python -m models.cli build|eval ...`` runs them standalone.
Heavy modules (torch, optimum, onnx) load only inside the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_repository() -> Path:
    """Where built models live unless told otherwise (ignored by git)."""
    return PROJECT_ROOT / "models" / "repository"


def default_cache_dir() -> Path:
    """Cache of exported + quantized encoders, keyed by source hash and recipe."""
    configured = os.environ.get("AFTERCARE_MODEL_CACHE")
    return Path(configured) if configured else PROJECT_ROOT / "var" / "cache" / "encoders"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-col", default="text", help="text column of the CSV (default text)")
    parser.add_argument("--label-col", default="intent", help="label column (default intent)")
    parser.add_argument("--max-length", type=int, default=128, help="token truncation length")
    parser.add_argument("--source", type=Path, help="a Hugging Face model folder (default MiniLM)")
    parser.add_argument("--head", choices=("linear", "mlp"), default="linear", help="head kind")
    parser.add_argument("--augment-copies", type=int, default=2, help="typo'd copies per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, help="encoder cache (default var/cache/encoders)")
    parser.add_argument("--no-cache", action="store_true", help="always export and quantize anew")
    parser.add_argument(
        "--cosine-floor", type=float, default=0.98, help="fail below this int8/fp32 min cosine"
    )
    parser.add_argument(
        "--short-cosine-floor", type=float, default=0.93,
        help="fail below this int8/fp32 min cosine on one- and two-word inputs",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines (log file only)")
    add_finetune_args(parser)


def add_finetune_args(parser: argparse.ArgumentParser) -> None:
    """``--finetune`` and its caps; shared by every command that trains a classifier."""
    from models.finetune import FinetuneConfig

    d = FinetuneConfig()
    parser.add_argument(
        "--finetune", action="store_true",
        help="fine-tune the classifier's encoder on the intent data before export",
    )
    parser.add_argument("--finetune-epochs", type=int, default=d.max_epochs, help="max epochs")
    parser.add_argument(
        "--finetune-minutes", type=float, default=d.max_minutes, help="time cap of fine-tuning"
    )
    parser.add_argument(
        "--finetune-max-length", type=int, default=d.max_length, help="tokens seen in training"
    )
    parser.add_argument("--finetune-threads", type=int, default=d.threads, help="torch threads")


def finetune_config_from(args: argparse.Namespace) -> Any:
    """The FinetuneConfig the ``add_finetune_args`` flags describe."""
    from models.finetune import FinetuneConfig

    return FinetuneConfig(
        max_epochs=args.finetune_epochs,
        max_minutes=args.finetune_minutes,
        max_length=args.finetune_max_length,
        threads=args.finetune_threads,
        seed=args.seed,
    )


def register(subparsers: Any) -> None:
    """Add ``build``, ``eval`` and ``ablate`` to ``subparsers`` (an argparse subparsers)."""
    build = subparsers.add_parser("build", help="build int8 embedder + intent classifier versions")
    build.add_argument(
        "--repository", type=Path, help="model repository (default models/repository)"
    )
    build.add_argument("--intents", type=Path, help="training CSV (default the demo intents)")
    build.add_argument("--only", choices=("embedder", "classifier"), help="build one model only")
    _add_common(build)
    build.set_defaults(func=_run_build)

    evaluate = subparsers.add_parser("eval", help="train on one CSV, score another; JSON last line")
    evaluate.add_argument("--train", type=Path, required=True, help="training CSV")
    evaluate.add_argument("--test", type=Path, required=True, help="test CSV")
    evaluate.add_argument("--oos-label", default="oos", help="label meaning out of scope")
    evaluate.add_argument(
        "--holdout-intents", type=int, default=0,
        help="remove this many seeded intents from training; their test rows become out of scope",
    )
    _add_common(evaluate)
    evaluate.set_defaults(func=_run_eval)

    ablate = subparsers.add_parser(
        "ablate", help="fine-tuning seeds, refit, soup, WiSE-FT, ensemble on a test CSV; JSON"
    )
    ablate.add_argument("--train", type=Path, required=True, help="training CSV")
    ablate.add_argument("--test", type=Path, required=True, help="test CSV")
    ablate.add_argument("--seeds", type=int, default=3, help="fine-tuning runs on one split")
    ablate.add_argument(
        "--refit-share", type=float, default=0.02,
        help="held-out share of the refit run (0: no refit run)",
    )
    ablate.add_argument("--jobs", type=int, default=1, help="fine-tuning runs at once")
    ablate.add_argument("--work", type=Path, help="run folders, reused when settings match")
    _add_common(ablate)
    ablate.set_defaults(func=_run_ablate)


def _options(args: argparse.Namespace, repository: Path, intents: Path | None) -> Any:
    from models.build import BuildOptions
    from models.head import HeadConfig

    cache = None if args.no_cache else (args.cache_dir or default_cache_dir())
    return BuildOptions(
        repository=repository,
        intents=intents,
        text_col=args.text_col,
        label_col=args.label_col,
        only=getattr(args, "only", None),
        max_length=args.max_length,
        source=args.source,
        cache_dir=cache,
        head=HeadConfig(kind=args.head),
        augment_copies=args.augment_copies,
        seed=args.seed,
        cosine_floor=args.cosine_floor,
        short_cosine_floor=args.short_cosine_floor,
        finetune=args.finetune,
        finetune_config=finetune_config_from(args),
        quiet=args.quiet,
    )


def _run_build(args: argparse.Namespace) -> int:
    from models.build import build_models

    options = _options(args, args.repository or default_repository(), args.intents)
    result = build_models(options)
    summary: dict[str, Any] = {"seconds": round(result.seconds, 2), "versions": {}}
    for version in result.versions:
        metrics = version.manifest["metrics"]
        line = (
            f"{version.name} v{version.version} -> {version.path} "
            f"(int8 cosine min {metrics['int8_cosine_min']:.4f} "
            f"mean {metrics['int8_cosine_mean']:.4f})"
        )
        if "cv_macro_f1" in metrics:
            line += (
                f" held-out macro-F1 {metrics['cv_macro_f1']:.4f}, "
                f"oos_threshold {version.manifest['oos_threshold']:.3f}"
            )
        print(line)
        summary["versions"][version.name] = version.version
    print(json.dumps(summary))
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    import tempfile

    from models.evaluate import evaluate

    with tempfile.TemporaryDirectory(prefix="aftercare-eval-repo-") as tmp:
        options = _options(args, Path(tmp), args.train)
        result = evaluate(
            args.train, args.test, options, args.oos_label, args.holdout_intents
        )
    print(json.dumps(result, sort_keys=True))
    return 0


def _run_ablate(args: argparse.Namespace) -> int:
    import tempfile

    from models.ablation import AblationPlan, ablate
    from models.build import resolve_source
    from models.intent_data import load_intents

    options = _options(args, Path("unused"), args.train)
    data = load_intents(args.train, args.text_col, args.label_col)
    test = load_intents(args.test, args.text_col, args.label_col, min_labels=1)
    plan = AblationPlan(seeds=args.seeds, refit_share=args.refit_share, jobs=args.jobs)
    progress = (lambda _: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="aftercare-ablate-") as tmp:
        work = args.work or Path(tmp)
        result = ablate(
            resolve_source(options), data, test, options.finetune_config, plan, work, progress
        )
    print(json.dumps(result, sort_keys=True))
    return 0


def ensure_default_models(repo_root: Path) -> None:
    """Build the default embedder and classifier into model repository ``repo_root``,
    each only if it has no version yet."""
    from models.build import CLASSIFIER_NAME, EMBEDDER_NAME, BuildOptions, build_models
    from models.repository import ModelRepository

    repository = ModelRepository(repo_root)
    missing = [name for name in (EMBEDDER_NAME, CLASSIFIER_NAME) if not repository.versions(name)]
    if not missing:
        return
    only = (
        None if len(missing) == 2 else ("embedder" if missing[0] == EMBEDDER_NAME else "classifier")
    )
    build_models(BuildOptions(repository=repo_root, only=only, cache_dir=default_cache_dir()))


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m models.cli build|eval``."""
    parser = argparse.ArgumentParser(prog="models", description=__doc__)
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from server.errors import AftercareError

    try:
        return int(args.func(args))
    except AftercareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
