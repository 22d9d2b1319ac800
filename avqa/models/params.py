"""`python -m avqa params [--model tass] [--option k=v ...] [--out PATH]`: trainable parameter counts.

Prints a table (total and per top-level block) and the same as one JSON object; --out also writes the JSON.
Option values are parsed as YAML scalars (`--option stream=dual --option use_ls=false --option tau=0.02`).

Measured (d_model 512, 4 heads; frozen CLIP / VGGish encoders not counted, as in the paper):
  TASS-Net single stream  9,444,524   (paper: 10.9M)
  TASS-Net dual stream   11,019,948   (paper: 12.5M)
  dual - single           1,575,424   (paper: ~1.6M) = a second question-query attention (1,050,624) and the
                                      linear fusion of the two streams' outputs (1024 -> 512, 524,800)
  question-only           1,071,658
Per block, single stream: visual_proj 1,049,088; audio_proj 328,704; question_proj 524,800; target_word
1,050,624; tsg 524,800; match_head 689,282; jtg 5,255,680 (two bidirectional LSTMs 3,153,920, attention
1,050,624, FFN + LayerNorm 526,336, mean fusion 524,800); answer_head 21,546.

Why ~1.46M fewer than the paper in both settings: the authors' public TJSTG code (net_tjstg/tsjt_net.py, on
which TASS-Net builds) holds modules that the forward pass never uses but that count as trainable — a second
audio MLP (fc_a1_pure, fc_a2_pure: 328,704), fc_avq (262,656) and qvfc (131,328), 722,688 together — and it
picks the target word with a full nn.MultiheadAttention (1,050,624) where ours scores tokens with a single
query projection (262,656; 787,968 fewer). These two account for ~1.51M, i.e. single 9.44M + 1.51M = 10.96M
~ 10.9M and dual 11.02M + 1.51M = 12.53M ~ 12.5M. The dual - single difference matches the paper.
"""
from __future__ import annotations

import argparse
import json
import logging

import yaml

from avqa.models import REGISTRY, build_model, count_trainable, trainable_by_block
from avqa.atomic import write_text_atomic

logger = logging.getLogger(__name__)


def parse_options(pairs: list[str]) -> dict:
    """["k=v", ...] -> {k: yaml scalar of v}; a pair without '=' is an error naming it."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option {pair!r}: expected key=value")
        options[key.strip()] = yaml.safe_load(value)
    return options


def parameter_report(model_name: str, options: dict) -> dict:
    """{"model", "options", "total", "blocks": {block: count}} for the model built with `options`."""
    model = build_model(model_name, **options)
    return {"model": model_name, "options": options, "total": count_trainable(model),
            "blocks": trainable_by_block(model)}


def format_table(report: dict) -> str:
    rows = list(report["blocks"].items()) + [("total", report["total"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'block':<{width}}  {'trainable':>12}", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{name:<{width}}  {count:>12,}" for name, count in rows]
    return "\n".join(lines)


def _cli(args: argparse.Namespace) -> int:
    try:
        report = parameter_report(args.model, parse_options(args.option))
    except ValueError as err:
        raise SystemExit(f"params: {err}") from None
    text = json.dumps(report, sort_keys=False)
    print(f"model {args.model} {report['options'] or ''}".rstrip())
    print(format_table(report))
    print(text)
    if args.out:
        write_text_atomic(args.out, text + "\n")
        logger.info("wrote %s", args.out)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("params", help="trainable parameter counts of a model (total and per block)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tass", choices=sorted(REGISTRY), help="registry name (default tass)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a build_model option, repeatable (value parsed as YAML)")
    parser.add_argument("--out", help="also write the JSON report here")
    parser.set_defaults(func=_cli)
