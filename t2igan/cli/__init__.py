"""The `t2igan` command: argument parsing, and dispatch to the handlers in `t2igan.cli.commands`,
which turn the flags into calls of the Python API (`t2igan.api`). Nothing below `t2igan.cli` sees
argparse.

Every command turns a `T2IGanError` into one line on stderr and exit status 2, never a traceback.
Messages of the library go through `logging`; `setup_logging` shows them on stderr at the level that
`-v` / `-q` ask for, and progress bars follow that level (`t2igan.progress`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn

from t2igan import __version__
from t2igan.errors import T2IGanError, T2IGanWarning

# ----------------------------------------------------------------------------------------- logging

# The loggers the command owns: the library's and the built-in plugins'. A third-party plugin's stay the
# user's; their warnings still show through Python's last-resort handler.
LOGGERS = ("t2igan", "t2igan_plugins")


class _StderrHandler(logging.Handler):
    """Writes each message to the `sys.stderr` of the moment (a caller's or a test's redirection is
    followed), through tqdm once it is loaded, so that a message does not break a bar's line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            tqdm = sys.modules.get("tqdm")
            if tqdm is None:
                sys.stderr.write(message + "\n")
            else:
                tqdm.tqdm.write(message, file=sys.stderr)
        except Exception:
            self.handleError(record)


class _Formatter(logging.Formatter):
    """Progress as it is said; a warning or an error as one line naming the command; everything with its
    level and logger under -v."""

    def __init__(self, detailed: bool) -> None:
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if self.detailed:
            return f"{record.levelname.lower()}: {record.name}: {message}"
        if record.levelno >= logging.WARNING:
            return f"t2igan: {record.levelname.lower()}: {message}"
        return message


_HANDLER = _StderrHandler()
VERBOSITY_LEVELS = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


def setup_logging(verbosity: int = 0) -> None:
    """Show the messages of `LOGGERS` on stderr: 0 INFO (progress), 1 or more DEBUG (-v), -1 WARNING
    (-q: no progress, no bars), -2 or less ERROR (-qq). Idempotent: one handler, however often called."""
    level = VERBOSITY_LEVELS[max(-2, min(1, verbosity))]
    _HANDLER.setFormatter(_Formatter(detailed=level <= logging.DEBUG))
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)


def _lazy(function: str) -> Callable[[argparse.Namespace], int]:
    """The handler, imported only when its command runs: `t2igan --help` stays fast and torch-free."""

    def run(args: argparse.Namespace) -> int:
        handler = getattr(importlib.import_module("t2igan.cli.commands"), function)
        return handler(args)

    return run


# ------------------------------------------------------------------------------------------ parser


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line, as every other error of the command is (not argparse's usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    """-v / -q, counted. Every command takes them too (`t2igan bench -q`), with no default of its own, so
    that one given before the command is kept."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=default, help="more messages: debug ones too"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default,
        help="fewer messages: warnings and errors only, no progress bars (-qq: errors only)",
    )


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda if available, else cpu)"
    )


def _add_scoring_flags(p: argparse.ArgumentParser) -> None:
    """What bench and eval both score beyond the protocol's defaults: fewer images, a second CLIP."""
    p.add_argument(
        "--eval-images",
        type=int,
        default=None,
        help="score the first N images the protocol selects (values are labelled quick; default: all)",
    )
    p.add_argument(
        "--second-clip",
        default=None,
        metavar="MODEL=WEIGHTS",
        help="also score the CLIP score under this open_clip model (column clip_score_2), e.g. "
        "ViT-L-14=/w/ViT-L-14.pt; WEIGHTS defaults to openai ($T2IGAN_WEIGHTS/clip/MODEL.pt)",
    )


def _add_inception_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inception-weights",
        default=None,
        metavar="FILE",
        help="local weights of the --fid-mode's Inception (standard: torch-fidelity's, also used by KID/IS/PR; "
        "clean: clean-fid's; paper: torchvision's). Default: $T2IGAN_WEIGHTS, else the back-end's download; "
        "KID/IS/PR beside a clean or paper FID find torch-fidelity's file the same way",
    )
    p.add_argument(
        "--fid-reference",
        action="append",
        default=[],
        metavar="DATASET=NPZ",
        help="official reference statistics (e.g. cub=bird_val256_FIDK0.npz); needs --fid-mode paper",
    )


def build_parser() -> argparse.ArgumentParser:
    from t2igan.benchmarking.budgets import (  # torch-free: building the parser stays quick
        BUDGET_STEPS,
        BUDGETS,
    )

    parser = _Parser(
        prog="t2igan",
        description="Train, evaluate and compare text-to-image GANs on identical splits, seeds and budgets.",
        epilog="Run `t2igan COMMAND --help` for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"t2igan {__version__}")
    _add_verbosity(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "bench",
        help="train and evaluate models × datasets × seeds; write tables",
        description="Run a benchmark plan: every run shares split, budget, protocol and seeds. "
        "With no arguments: every built-in model on `shapes`, smoke budget.",
    )
    p.add_argument("plan", nargs="?", help="a plan file (TOML) with the same fields as the flags")
    p.add_argument(
        "--models",
        default=None,
        help="comma list, e.g. 'ratlip,galip' or 'dfgan,dfgan:fusion=rat'; 'all' = every registered model",
    )
    p.add_argument("--data", default=None, help="comma list of datasets (default: shapes)")
    p.add_argument("--seeds", default=None, help="comma list of seeds (default: 0)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget",
        choices=BUDGETS,
        default=None,
        help=f"smoke: {BUDGET_STEPS['smoke']:,} steps; short: {BUDGET_STEPS['short']:,} (recognisable shapes on "
        "`shapes`); paper: the preset's own epochs",
    )
    budget.add_argument("--steps", type=int, default=None, help="train each run for N steps")
    budget.add_argument("--epochs", type=int, default=None, help="train each run for N epochs")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="training batch of every run (default: each preset's own; learning rates are not rescaled)",
    )
    p.add_argument("--protocol", choices=("paper", "quick"), default=None, help="evaluation protocol")
    p.add_argument("--fid-mode", choices=("standard", "clean", "paper"), default=None)
    _add_inception_flags(p)
    _add_scoring_flags(p)
    p.add_argument("--out", default=None, help="output folder (default: runs/<plan name>)")
    p.add_argument("--root", action="append", default=[], metavar="DATASET=PATH", help="dataset root folders")
    p.add_argument("--nproc", type=int, default=1, help="processes per run (torchrun DDP)")
    p.add_argument("--emit-commands", action="store_true", help="print one command per run and exit")
    _add_device(p)
    p.set_defaults(func=_lazy("cmd_bench"))

    p = sub.add_parser("train", help="train one model on one dataset")
    p.add_argument("--model", required=True, help="model reference, e.g. dfgan, dfgan.tiny, dfgan:fusion=rat")
    p.add_argument("--data", default="shapes", help="dataset reference, e.g. shapes or shapes:size=small")
    p.add_argument("--preset", default=None, help="preset name (default: the model's default preset)")
    p.add_argument("--root", default=None, help="dataset folder")
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="training steps (default: the preset's max_epoch epochs, else 300)",
    )
    p.add_argument("--epochs", type=_positive_int, default=None, help="train for N epochs instead of --steps")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=None,
        help="steps between checkpoints (default: about five per run)",
    )
    p.add_argument(
        "--keep-last",
        type=_positive_int,
        default=None,
        help="step checkpoints kept besides final.pt (default: 2)",
    )
    p.add_argument("--out", default=None, help="run folder (default: runs/train/<data>/<model>/seed<k>)")
    p.add_argument("--resume", action="store_true", help="resume from the run folder's last checkpoint")
    p.add_argument("--plan", default=None, help="take the [encoders] settings from this plan file")
    _add_device(p)
    p.set_defaults(func=_lazy("cmd_train"))

    p = sub.add_parser("eval", help="score a checkpoint or a folder of images against a dataset split")
    p.add_argument("source", help="a checkpoint (.pt) or a folder of images")
    p.add_argument("--data", default=None, help="dataset (default: the checkpoint's; shapes for a folder)")
    p.add_argument("--root", default=None, help="dataset folder (real datasets)")
    p.add_argument("--protocol", default="quick", help="evaluation protocol: quick (default) or paper")
    p.add_argument("--metrics", default=None, help="comma list (default: the protocol's)")
    p.add_argument("--fid-mode", choices=("standard", "clean", "paper"), default="standard")
    _add_inception_flags(p)
    _add_scoring_flags(p)
    p.add_argument("--out", default=None, help="write the values (JSON) here")
    p.add_argument(
        "--record",
        default=None,
        metavar="DIR",
        help="(a checkpoint) also write a run record into DIR, as a bench does: `t2igan report DIR` then "
        "tabulates it beside the paper's numbers",
    )
    p.add_argument(
        "--plan", default=None, help="take the [encoders] and [probe] settings from this plan file"
    )
    _add_device(p)
    p.set_defaults(func=_lazy("cmd_eval"))

    p = sub.add_parser("sample", help="generate images from captions with a checkpoint")
    p.add_argument("--ckpt", required=True, help="a checkpoint written by `t2igan train` or `t2igan convert`")
    p.add_argument(
        "--model",
        default=None,
        help="optional check: the model (e.g. dfgan or dfgan.bird256) the checkpoint must hold; "
        "the checkpoint itself says which model to build",
    )
    p.add_argument("--text", action="append", required=True, help="a caption (repeat for several)")
    p.add_argument("--n", type=int, default=8, help="images per caption")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument(
        "--out",
        default="samples.png",
        help="a .png path for one grid (a row per caption), or a folder for one PNG per image and "
        "captions.json, which `t2igan eval FOLDER` can score (default: samples.png)",
    )
    p.add_argument("--root", default=None, help="dataset folder (official DAMSM: its captions pickle)")
    p.add_argument(
        "--plan", default=None, help="take the [encoders] settings (weights, vocab) from this plan file"
    )
    _add_device(p)
    p.set_defaults(func=_lazy("cmd_sample"))

    p = sub.add_parser("report", help="build results.csv, table.csv/.md/.tex and plots from run records")
    p.add_argument("runs", help="a plan's output folder, e.g. runs/shapes-smoke")
    p.set_defaults(func=_lazy("cmd_report"))

    p = sub.add_parser("data", help="check a dataset folder or build its caches")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=_Parser)
    dataset_help = "dataset name (see `t2igan plugins`), with loader options: e.g. celeba-tiny:subset=FILE"
    q = data_sub.add_parser("check", help="validate a dataset folder and print what it holds")
    q.add_argument("name", help=dataset_help)
    q.add_argument("--root", default=None, help="dataset folder")
    q.set_defaults(func=_lazy("cmd_data_check"))
    q = data_sub.add_parser("prepare", help="pre-process images into the training cache")
    q.add_argument("name", help=dataset_help)
    q.add_argument("--root", default=None, help="dataset folder")
    q.add_argument("--splits", default=None, help="comma list (default: all)")
    q.add_argument("--resolution", type=int, default=None, help="image size (default: the dataset's)")
    q.add_argument(
        "--verify",
        action="store_true",
        help="re-hash existing caches of any size against their recorded sha256 (rebuild if corrupted)",
    )
    q.set_defaults(func=_lazy("cmd_data_prepare"))

    p = sub.add_parser("convert", help="convert an official released checkpoint into ours")
    p.add_argument(
        "checkpoint",
        nargs="+",
        help="the official .pth file(s): RAT-GAN releases netG and netD as two files, give both",
    )
    p.add_argument(
        "--model",
        required=True,
        help="the model and the paper preset the release was trained with, e.g. dfgan.bird256 (the preset may "
        "be left out when the model has one paper preset only)",
    )
    p.add_argument("--out", required=True, help="where to write the converted checkpoint")
    p.set_defaults(func=_lazy("cmd_convert"))

    p = sub.add_parser(
        "pretrain-encoder", help="pre-train a text encoder (a DAMSM pair, a small CLIP, or a plugin's)"
    )
    p.add_argument(
        "kind",
        metavar="ENCODER",
        help="a registered text encoder with a pre-training recipe (built in: damsm, clip)",
    )
    p.add_argument(
        "--data", default="shapes", help="dataset whose training captions and images it learns from"
    )
    p.add_argument("--root", default=None, help="dataset folder (real datasets)")
    p.add_argument("--seed", type=int, default=0, help="pre-training seed")
    p.add_argument("--out", default=None, help="output file (default: the encoder cache)")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="pre-training config override, e.g. epochs=5 (repeatable)",
    )
    _add_device(p)
    p.set_defaults(func=_lazy("cmd_pretrain"))

    p = sub.add_parser("plugins", help="list plugins: what each provides, its status and licence")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="also list plugins that provide nothing")
    p.add_argument("--strict", action="store_true", help="exit 1 if any plugin failed to load")
    p.set_defaults(func=_lazy("cmd_plugins"))

    p = sub.add_parser("models", help="list models and presets with parameter counts of G and D")
    p.add_argument("pattern", nargs="?", help="wildcard over model or model.preset names, e.g. '*rat*'")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-counts", action="store_true", help="skip building models to count parameters")
    p.set_defaults(func=_lazy("cmd_models"))
    for command in [*sub.choices.values(), *data_sub.choices.values()]:
        _add_verbosity(command, argparse.SUPPRESS)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one line that names the command; a library's as Python shows it."""
    stream = file or sys.stderr
    if issubclass(category, T2IGanWarning):
        stream.write(f"t2igan: warning: {message}\n")
    else:
        stream.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: `bench --nproc` relaunches it
    try:
        return int(args.func(args) or 0)
    except T2IGanError as exc:
        print(f"t2igan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"t2igan {args.command}: interrupted; finished work is kept, re-run to resume", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:  # a command that may have joined torchrun's process group
            from t2igan.training import distributed

            distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
