"""The synthetic MUSIC-AVQA-format dataset: `python -m avqa synthesize` -> out_dir/{videos/*.mp4,
avqa-{train,val,test}.json, scenes.json}.

Modules: catalog (look and sound per instrument type), scene (random ground truth), answers (the answer of each
template computed from a scene), questions (candidates and the answer balancer), audio and render (the mp4),
generate (the whole dataset), stats (answer balance, question-only accuracy).
"""
from __future__ import annotations

import argparse
import json
import logging

from avqa.specs import SpecError, add_spec_arguments, spec_from_args
from avqa.specs.data import SynthesizeSpec

logger = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def check_spec(spec: SynthesizeSpec) -> None:
    """What the renderer needs beyond the spec's types (the schema says the same for a config)."""
    counts = {"videos." + split: n for split, n in vars(spec.videos).items()}
    counts.update(questions_per_video=spec.questions_per_video, video_fps=spec.video_fps)
    small = {name: n for name, n in counts.items() if n < 1}
    if small:
        raise SpecError(f"synthesize spec: {small} must be >= 1")
    if spec.seconds < 2:
        raise SpecError(f"synthesize spec: seconds must be >= 2, got {spec.seconds}")
    if min(spec.width, spec.height) < 32:
        raise SpecError(f"synthesize spec: width/height must be >= 32, got {spec.width}x{spec.height}")
    if spec.width % 2 or spec.height % 2:
        raise SpecError(f"synthesize spec: H.264 (yuv420p) needs an even width/height, got {spec.width}x{spec.height}")


def _cli(args: argparse.Namespace) -> None:
    from avqa.data.synthetic.catalog import instrument_names
    from avqa.data.synthetic.generate import Plan, generate
    from avqa.data.synthetic.render import RenderSettings
    from avqa.workflow import synthesize_spec

    spec = spec_from_args(args, SynthesizeSpec, synthesize_spec)
    check_spec(spec)
    try:
        instruments = instrument_names(spec.instruments)
    except ValueError as err:
        raise SpecError(f"synthesize spec: {err}") from None
    plan = Plan(videos=dict(vars(spec.videos)), seconds=spec.seconds, questions_per_video=spec.questions_per_video,
                instruments=instruments, seed=spec.seed)
    settings = RenderSettings(width=spec.width, height=spec.height, video_fps=spec.video_fps,
                              audio_rate=spec.audio_rate)
    summary = generate(args.out_dir, plan, settings, workers=args.workers)
    print(json.dumps(summary, indent=1))


def register(subparsers) -> None:
    parser = subparsers.add_parser("synthesize", help="generate the synthetic MUSIC-AVQA-format dataset")
    parser.add_argument("--out-dir", required=True, help="output folder (replaced atomically)")
    add_spec_arguments(parser, "the synthetic section")
    parser.add_argument("--workers", type=_positive, default=1,
                        help="rendering processes (the rule's threads; the dataset does not depend on it)")
    parser.set_defaults(func=_cli)
