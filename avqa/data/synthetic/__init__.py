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

logger = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _cli(args: argparse.Namespace) -> None:
    from avqa.data.synthetic.catalog import instrument_names
    from avqa.data.synthetic.generate import Plan, generate
    from avqa.data.synthetic.render import RenderSettings

    if args.seconds < 2:
        raise SystemExit(f"synthesize: --seconds must be >= 2, got {args.seconds}")
    if min(args.width, args.height) < 32:
        raise SystemExit(f"synthesize: --width/--height must be >= 32, got {args.width}x{args.height}")
    if args.width % 2 or args.height % 2:
        raise SystemExit(f"synthesize: H.264 (yuv420p) needs even --width/--height, got {args.width}x{args.height}")
    try:
        instruments = instrument_names(args.instruments)
    except ValueError as err:
        raise SystemExit(f"synthesize: {err}") from err
    plan = Plan(videos={"train": args.videos_train, "val": args.videos_val, "test": args.videos_test},
                seconds=args.seconds, questions_per_video=args.questions_per_video, instruments=instruments,
                seed=args.seed)
    settings = RenderSettings(width=args.width, height=args.height, video_fps=args.video_fps,
                              audio_rate=args.audio_rate)
    summary = generate(args.out_dir, plan, settings, workers=args.workers)
    print(json.dumps(summary, indent=1))


def register(subparsers) -> None:
    parser = subparsers.add_parser("synthesize", help="generate the synthetic MUSIC-AVQA-format dataset")
    parser.add_argument("--out-dir", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--videos-train", type=_positive, default=160)
    parser.add_argument("--videos-val", type=_positive, default=40)
    parser.add_argument("--videos-test", type=_positive, default=40)
    parser.add_argument("--seconds", type=int, default=20, help="clip length (s)")
    parser.add_argument("--questions-per-video", type=_positive, default=16)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--video-fps", type=_positive, default=10)
    parser.add_argument("--audio-rate", type=_positive, default=44100)
    parser.add_argument("--instruments", type=int, default=8, help="number of instrument types (2-22)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=_positive, default=1, help="rendering processes")
    parser.set_defaults(func=_cli)
