"""Attention pictures in the style of the paper's Fig. 6, for a few test questions of a trained TASS-Net run.

`python -m avqa plot-attention --run results/runs/{exp}/tass/seed0 --videos-dir DIR
 --spec '{"questions": 3, "frame_backend": "torchcodec"}' --out results/plots/attention/tass_seed0.png`
 (or `--config config.yaml`: its attention_questions and features.decode.backend)

For each picked question: one frame per segment with the TSG+ spatial attention (7 x 7, upsampled) laid over
it, and below them the JTG temporal attention over the T segments: visual, audio (each a distribution over T)
and joint (the weights of the segment's visual + audio tokens in the single 2T-token stream, summing to 1 over
all segments). The title gives the question, the answer and the model's prediction.

Questions: round robin over the groups Audio-Visual, Audio, Visual, the lowest question_id answered correctly
first (from the run's predictions.csv), so the picture shows the model where it works, and is the same every
time. The attention comes from the run's model_best.pt in eval mode on the run's own test features (the run
config names them), on the CPU.

Frames: the frame shown for segment t is the one at the centre of second t*w + w//2 (w = T1 / T, the middle of
the pooled window; second t*w for strided features), the exact centre frame from DIR/{video_id}.mp4, decoded
by the spec's frame_backend (features.decode.backend). The 7 x 7 map covers CLIP's centre crop of the frame, so
the frame is cut to its central square before the attention is drawn over it.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avqa.reporting.plots import save_figure
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.reporting import AttentionSpec
from avqa.vocab import ANSWERS

logger = logging.getLogger(__name__)

GROUP_ORDER = ("Audio-Visual", "Audio", "Visual")
GRID = 7                                               # CLIP-RN50 layer4 maps are 7 x 7


@dataclass
class QuestionAttention:
    question_id: int
    video_id: str
    question: str
    answer: str
    predicted: str
    spatial: np.ndarray       # (T, 49)
    visual: np.ndarray        # (T,) JTG weights of the visual tokens, a distribution over T
    audio: np.ndarray         # (T,)
    joint: np.ndarray         # (T,) visual + audio token weights of each segment in the joint stream


def pick_questions(predictions: pd.DataFrame, n: int) -> list[int]:
    """n question ids: round robin over GROUP_ORDER, correct answers first, then by question_id."""
    ranked = predictions.assign(wrong=~predictions["correct"].astype(bool)).sort_values(["wrong", "question_id"])
    queues = {g: list(ranked.loc[ranked["group"] == g, "question_id"]) for g in GROUP_ORDER}
    picked: list[int] = []
    while len(picked) < n and any(queues.values()):
        for group in GROUP_ORDER:
            if queues[group] and len(picked) < n:
                picked.append(int(queues[group].pop(0)))
    return picked


def segment_seconds(T1: int, T: int, method: str) -> list[int]:
    """The second whose frame stands for each pooled segment (the middle of its window; strided: its start)."""
    w = T1 // T
    return [t * w + (0 if method == "stride" else w // 2) for t in range(T)]


def centre_square(frame: np.ndarray) -> np.ndarray:
    """The central square of an (H, W, 3) frame: what CLIP's centre crop keeps."""
    h, w = frame.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return frame[top:top + side, left:left + side]


@torch.no_grad()
def run_attention(run_dir: str | Path, n_questions: int) -> tuple[list[QuestionAttention], dict]:
    """The attention of the run's best model for `n_questions` picked test questions, and the test store attrs."""
    from avqa.models.blocks import split_tokens
    from avqa.training.evaluate import load_best_model
    from avqa.training.spec import split_dataset

    run_dir = Path(run_dir)
    predictions_path = run_dir / "predictions.csv"
    if not predictions_path.exists():
        raise FileNotFoundError(f"{predictions_path}: no test predictions (the run has not finished)")
    model, spec = load_best_model(run_dir, torch.device("cpu"))
    model.eval()
    dataset = split_dataset(spec, "test", in_memory=False)
    ids = pick_questions(pd.read_csv(predictions_path), n_questions)
    rows = pd.Index(dataset.table["question_id"]).get_indexer(ids)
    if (rows < 0).any():
        raise ValueError(f"{predictions_path}: question ids {[i for i, r in zip(ids, rows) if r < 0]} are not in "
                         f"the test features of {spec['pooled']['test']}")
    out = model(dataset.batch(rows))
    if "spatial_attn" not in out or "temporal_attn" not in out:
        raise ValueError(f"{run_dir}: model {spec['model']!r} returns no spatial / temporal attention to draw")
    order = getattr(model.jtg, "order", "IL(V;A)")
    joint_v, joint_a = split_tokens(out["temporal_attn"].float(), order)
    texts = pd.read_parquet(spec["annotations"]["test"], columns=["question_id", "question", "answer"])
    texts = texts.set_index("question_id")
    predicted = out["logits"].argmax(-1).numpy()
    result = []
    for i, (row, qid) in enumerate(zip(rows, ids)):
        result.append(QuestionAttention(
            question_id=qid, video_id=str(dataset.table.loc[row, "video_id"]),
            question=str(texts.loc[qid, "question"]), answer=str(texts.loc[qid, "answer"]),
            predicted=ANSWERS[int(predicted[i])],
            spatial=out["spatial_attn"][i].float().numpy(),
            visual=out["temporal_attn_visual"][i].float().numpy(),
            audio=out["temporal_attn_audio"][i].float().numpy(),
            joint=(joint_v[i] + joint_a[i]).numpy()))
    return result, dict(dataset.pooled_attrs)


def video_frames(videos_dir: str | Path, video_id: str, seconds: list[int], T1: int,
                 backend: str = "torchcodec") -> list[np.ndarray]:
    """The central squares of the frames at the given seconds of DIR/{video_id}.mp4, each the exact centre frame
    of its second, decoded by features.decode.backend's decoder (both give the same frames, docs/decoding.md)."""
    from avqa.features import decoders, media

    decode = {"torchcodec": decoders.torchcodec_frames, "decord": media.decode_frames}[backend]
    frames = decode(Path(videos_dir) / f"{video_id}.mp4", T1).data
    return [centre_square(frames[min(s, len(frames) - 1)]) for s in seconds]


def attention_figure(items: list[QuestionAttention], frames: list[list[np.ndarray]]):
    """Per question: a row of frames with the spatial attention, and the temporal attention curves below."""
    from matplotlib.figure import Figure

    T = items[0].spatial.shape[0]
    fig = Figure(figsize=(max(8.0, 1.5 * T), 3.6 * len(items)))
    grid = fig.add_gridspec(2 * len(items), T, height_ratios=[1.0, 0.8] * len(items), hspace=0.75, wspace=0.05)
    for q, (item, row_frames) in enumerate(zip(items, frames)):
        for t, frame in enumerate(row_frames):
            ax = fig.add_subplot(grid[2 * q, t])
            side = frame.shape[0]
            ax.imshow(frame)
            ax.imshow(item.spatial[t].reshape(GRID, GRID), cmap="jet", alpha=0.45, interpolation="bilinear",
                      extent=(0, side, side, 0))
            ax.set_axis_off()
            ax.set_title(f"t={t + 1}", fontsize=7)
        ax = fig.add_subplot(grid[2 * q + 1, :])
        x = np.arange(1, T + 1)
        ax.plot(x, item.visual, "o-", label="visual")
        ax.plot(x, item.audio, "s-", label="audio")
        ax.bar(x, item.joint, width=0.5, alpha=0.25, color="grey", label="joint (visual + audio token)")
        ax.set_xticks(x)
        ax.set_xlim(0.5, T + 0.5)
        ax.set_ylim(0, 1.15 * max(item.visual.max(), item.audio.max(), item.joint.max(), 1e-6))
        ax.set_ylabel("attention", fontsize=8)
        ax.set_xlabel("segment", fontsize=7)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.005, 0.5), frameon=False)
        verdict = "correct" if item.answer == item.predicted else "wrong"
        # An empty, frameless axes over the row of frames carries the question as its title.
        fig.add_subplot(grid[2 * q, :], frameon=False, xticks=[], yticks=[]).set_title(
            f"Q{item.question_id} ({item.video_id}): {item.question}  answer: {item.answer}, predicted: "
            f"{item.predicted} ({verdict})", fontsize=8, pad=14)
    fig.suptitle("TSG+ spatial attention on the frame of each segment; JTG temporal attention below", fontsize=10)
    return fig


def _cli(args: argparse.Namespace) -> None:
    from avqa.workflow import attention_spec

    spec = spec_from_args(args, AttentionSpec, attention_spec)
    items, attrs = run_attention(args.run, spec.questions)
    T1, T, method = int(attrs["T1"]), int(attrs["T"]), str(attrs.get("method", "avg"))
    seconds = segment_seconds(T1, T, method)
    frames = [video_frames(args.videos_dir, item.video_id, seconds, T1, spec.frame_backend) for item in items]
    out = save_figure(attention_figure(items, frames), args.out)
    print(f"{out}: attention of {len(items)} test questions of {args.run}")


def register(subparsers) -> None:
    parser = subparsers.add_parser("plot-attention", help="Fig. 6-style attention pictures of a trained run",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory (run_config.json, model_best.pt, predictions)")
    parser.add_argument("--videos-dir", required=True, help="folder of {video_id}.mp4 (the frames)")
    add_spec_arguments(parser, "attention_questions: how many test questions; features.decode.backend")
    parser.add_argument("--out", required=True, help="figure path (.png or .svg)")
    parser.set_defaults(func=_cli)
