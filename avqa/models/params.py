"""`python -m avqa params [--model tass] [--option k=v ...] [--out PATH]`: trainable parameters and GFLOPs.

Prints a table (total and per top-level block) and the same as one JSON object; --out also writes the JSON.
Option values are parsed as YAML scalars (`--option stream=dual --option use_ls=false --option tau=0.02`).

Measured (d_model 512, 4 heads; frozen CLIP / VGGish encoders not counted, as in the paper). Defaults = the
paper's equations (no FFN after JTG's attention, eq. 16's mean fusion); "TJSTG forms" = jtg_ffn=true,
mean_fusion=tjstg (the other form options have no parameters):
                          defaults      TJSTG forms   paper
  TASS-Net single stream  8,918,700     9,444,524     10.9M
  TASS-Net dual stream   10,494,124    11,019,948     12.5M
  dual - single           1,575,424     1,575,424     ~1.6M: a second question-query attention (1,050,624) and
                                                      the linear fusion of the two streams (1024 -> 512, 524,800)
  question-only           1,071,658
Per block, single stream, defaults: visual_proj 1,049,088; audio_proj 328,704; question_proj 524,800;
target_word 1,050,624; tsg 524,800; match_head 689,282; jtg 4,729,856 (two bidirectional LSTMs 3,153,920,
attention 1,050,624, eq. 16's MLP d->d->d 525,312); answer_head 21,546. TJSTG forms: jtg 5,255,680 (+ FFN and
LayerNorm 526,336, and FC(2d -> d) 524,800 in place of the 525,312 MLP).

The gap to the paper (1.98M single, 2.01M dual with the defaults) is not settled; the authors' TASS code is not
public. What the numbers do show: TJSTG's public code (net_tjstg/tsjt_net.py, which TASS-Net builds on) holds
trainable modules its forward never uses (fc_a1_pure, fc_a2_pure, fc_avq, qvfc: 722,688) and picks the target word
with a full nn.MultiheadAttention (1,050,624, 787,968 more than our single query projection). Adding these two
to the TJSTG-form counts gives 10.96M and 12.53M, the paper's 10.9M and 12.5M; adding them to the paper-form
counts gives only 10.43M and 12.00M. So the paper's counts fit an implementation that keeps TJSTG's FFN +
LayerNorm after JTG's attention, which eq. 14 does not show: an inference, not a check. The paper counts with
"torchsummary"; sksq96's torchsummary sums .weight/.bias per module call and would see no nn.MultiheadAttention
parameters, which the paper's dual - single difference (~1.6M, matching ours) needs, so it is taken here as a
count of trainable parameters.
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
    """{"model", "options", "total", "blocks": {block: count}, "gflops", "shapes"} for the model built with
    `options`: trainable parameters, and forward GFLOPs per question at the paper-setting input shapes
    (avqa.models.cost)."""
    from avqa.models.cost import default_shapes, model_cost

    model = build_model(model_name, **options)
    shapes = default_shapes(model_name, options)
    return {"model": model_name, "options": options, "total": count_trainable(model),
            "blocks": trainable_by_block(model), "gflops": round(model_cost(model_name, options, shapes)["gflops"], 4),
            "shapes": {key: list(v) if isinstance(v, tuple) else v for key, v in shapes.items()}}  # as JSON has it


def format_table(report: dict) -> str:
    rows = list(report["blocks"].items()) + [("total", report["total"])]
    width = max(len(name) for name, _ in rows)
    lines = [f"{'block':<{width}}  {'trainable':>12}", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{name:<{width}}  {count:>12,}" for name, count in rows]
    if "gflops" in report:
        lines.append(f"forward GFLOPs per question at {report['shapes']}: {report['gflops']:.3f}")
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
    parser = subparsers.add_parser("params", help="trainable parameters (total and per block) and forward GFLOPs "
                                                  "per question of a model",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tass", choices=sorted(REGISTRY), help="registry name (default tass)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a build_model option, repeatable (value parsed as YAML)")
    parser.add_argument("--out", help="also write the JSON report here")
    parser.set_defaults(func=_cli)
