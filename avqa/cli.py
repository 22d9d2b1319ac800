"""`python -m avqa <command> ...`: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its subcommand(s) and sets `func` on the parser;
`func(args)` does the work. Only the module of the command being run is imported, so a light stage (say,
`annotations`) does not pay for torch; `--help` without a command lists them all.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from avqa.errors import UserError, one_line

# command -> the stage module that registers it, in the order the pipeline runs them.
COMMANDS = {
    "synthesize": "avqa.data.synthetic",
    "annotations": "avqa.data.annotations",
    "words": "avqa.data.words",
    "instruments": "avqa.data.instruments",
    "standins": "avqa.data.standins",
    "shards": "avqa.features.shards",
    "extract": "avqa.features.extract",
    "failures": "avqa.features.extract",
    "questions": "avqa.features.questions",
    "questions-vit": "avqa.features.questions",
    "pool": "avqa.features.pooling",
    "train": "avqa.training.train",
    "evaluate": "avqa.training.evaluate",
    "params": "avqa.models.params",
    "table": "avqa.reporting.tables",
    "plot-table": "avqa.reporting.plots",
    "plot-curves": "avqa.reporting.plots",
    "plot-attention": "avqa.reporting.attention",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m avqa", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a user error (bad input, "
                                                             "config, weights, videos folder) instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = next((a for a in (argv or []) if not a.startswith("-")), None)
    modules = [COMMANDS[wanted]] if wanted in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        result = args.func(args)
    except UserError as err:
        if args.debug:
            raise
        print(f"avqa {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    return int(result or 0)
