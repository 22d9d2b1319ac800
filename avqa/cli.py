"""`python -m avqa <command> ...`: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its subcommand(s) and sets `func` on the parser;
`func(args)` does the work. Stage modules are imported lazily so `--help` stays fast and a stage's heavy
dependencies (torch, decord) load only when that stage runs.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that contribute subcommands, in the order the pipeline runs them.
STAGE_MODULES = (
    "avqa.synthetic",
    "avqa.annotations",
    "avqa.shards",
    "avqa.extract",
    "avqa.text",
    "avqa.pooling",
    "avqa.train",
    "avqa.evaluate",
    "avqa.params",
    "avqa.tables",
    "avqa.report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m avqa", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # stage not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    result = args.func(args)
    return int(result or 0)
