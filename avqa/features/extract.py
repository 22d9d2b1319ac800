"""`python -m avqa extract`: one shard of videos -> frozen CLIP-RN50 maps or VGGish embeddings (a Zarr store);
`python -m avqa failures`: merge the per-shard failure lists.

Per shard: DataLoader workers decode (frames only for CLIP, audio only for VGGish) and preprocess ahead of the
model (the CLI starts them before it loads the model); the seconds of consecutive videos are packed into
fixed-size batches; each video's features go to the store as soon as its last second is encoded. With workers=0
decoding runs in-process, between model batches: on a CPU whose cores the model's threads already fill, this is
faster than a competing decoder process (benchmarks/extract.py measures both). A video that cannot be used is
a row of the failures TSV (video_id, stage, reason) and the shard goes on; a shard where every video failed is a
valid empty store (V = 0). Store and TSV are written atomically (a killed job leaves neither). One code path
for CPU and GPU: device, batch size and precision come from the arguments. Layout (avqa.features.layout):
clip_rn50 `maps` (V, T1, 7, 7, 2048) float16, vggish `emb` (V, T1, 128) float32, `video_id` (V,), attrs with
provenance and per-video durations (the file's length, the same in every store of the video: media.file_length),
n_seconds (the stream's real seconds), padded and cut flags (cut: the file is longer than T1, the same in every
store), and for frame stores how the frames were decoded (frame_decoding, decode_path, max_offset_s).
"""
from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from avqa.atomic import atomic_path
from avqa.features import encoders
from avqa.features.encoders.resnet18 import load_resnet18, resnet18_maps
from avqa.features.extract_parts import (FAILURE_COLUMNS, Batcher, DecodeDataset, Item, ShardWriter, clean_reason,
                                         decode_loader)
from avqa.features.layout import DECODE_DEFAULTS, ENCODERS, LAYOUT
from avqa.features.shards import read_shard
from avqa.runtime import autocast_dtype, resolve_device

logger = logging.getLogger(__name__)

# The encoders one extraction job runs (a frame encoder or VGGish); clip_vit writes two stores, clip_vit (the
# frame embeddings) and clip_vit_tokens (the ToMe-merged patch tokens), from one forward pass.
EXTRACTED = ("clip_rn50", "resnet18", "clip_vit", "vggish")
# The key of each encoder in the config's `weights` mapping.
WEIGHTS_KEY = {"clip_rn50": "clip", "resnet18": "resnet18", "clip_vit": "clip_vit", "vggish": "vggish"}


@dataclass
class EncoderRun:
    """A loaded frozen encoder and how to run it: forward(inputs) -> (n, *item_shape) numpy features (a tuple,
    one per output store, for an encoder with several: `outputs` names them with their per-second shapes)."""

    name: str
    model: torch.nn.Module
    device: torch.device
    batch_size: int
    precision: str = "fp32"
    channels_last: bool = True
    provenance: dict | None = None
    outputs: dict[str, tuple[int, ...]] | None = None     # store encoder name -> per-second shape
    n_tokens: int = encoders.CLIP_VIT_N_TOKENS
    exact_embedding: bool = True                           # clip_vit: CLIP's own embedding (a second pass)

    def __post_init__(self):
        if self.outputs is None:
            self.outputs = {self.name: LAYOUT[self.name].shape}

    def forward(self, inputs: torch.Tensor) -> np.ndarray | tuple[np.ndarray, ...]:
        if self.name == "clip_rn50":
            return encoders.clip_maps(self.model, inputs, self.precision, self.channels_last).numpy()
        if self.name == "resnet18":
            return resnet18_maps(self.model, inputs, self.precision, self.channels_last).numpy()
        if self.name == "clip_vit":
            embedding, tokens = encoders.clip_vit_frames(self.model, inputs, self.precision, self.n_tokens,
                                                         self.exact_embedding)
            return embedding.numpy(), tokens.numpy()
        return encoders.vggish_emb(self.model, inputs, self.precision)

    def attrs(self) -> dict:
        return {"encoder": self.name, "device": self.device.type, "precision": self.precision,
                **(self.provenance or {})}


def load_encoder(name: str, weights: str, seed: int, device: str = "auto", batch_size: int = 20,
                 precision: str = "fp32", channels_last: bool = True,
                 bn3_gamma: float = encoders.DEFAULT_BN3_GAMMA, backbone: str = encoders.CLIP_VIT_BACKBONE,
                 n_tokens: int = encoders.CLIP_VIT_N_TOKENS, exact_embedding: bool = True) -> EncoderRun:
    torch_device = resolve_device(device)
    autocast_dtype(precision)  # validates the name early
    if name == "clip_rn50":
        model = encoders.load_clip(weights, seed, torch_device, bn3_gamma=bn3_gamma)
        provenance = {"weights": weights, "weights_seed": seed, "bn3_gamma": bn3_gamma}
    elif name == "resnet18":
        model = load_resnet18(weights, seed, torch_device)
        provenance = {"weights": weights, "weights_seed": seed}
    elif name == "clip_vit":
        model = encoders.load_clip_vit(weights, seed, torch_device, backbone)
        dims = encoders.clip_vit_dims(backbone, n_tokens)
        provenance = {"weights": weights, "weights_seed": seed, "backbone": backbone, "n_tokens": n_tokens,
                      "tome_schedule": list(dims["schedule"]), "exact_embedding": exact_embedding}
        return EncoderRun(name, model, torch_device, batch_size, precision, channels_last, provenance,
                          {"clip_vit": dims["embedding"], "clip_vit_tokens": dims["tokens"]}, n_tokens,
                          exact_embedding)
    elif name == "vggish":
        model = encoders.load_vggish(weights, seed, torch_device)
        provenance = {"weights": weights, "weights_seed": seed}
    else:
        raise ValueError(f"unknown encoder {name!r}: expected one of {EXTRACTED}")
    return EncoderRun(name, model, torch_device, batch_size, precision, channels_last, provenance)


@dataclass
class Decoding:
    """A shard's decoding, started: the videos, how they are decoded, and the Items as they come (in order)."""

    encoder: str
    video_ids: list[str]
    T1: int
    fps: int
    sample_rate: int
    items: Iterator[Item]
    decode: dict | None = None      # how frames were decoded (layout.DECODE_DEFAULTS), for the store attrs


def start_decoding(encoder_name: str, video_ids: list[str], videos_dir: str | Path, T1: int, fps: int = 1,
                   sample_rate: int = 16000, workers: int = 1, backbone: str = encoders.CLIP_VIT_BACKBONE,
                   decode: dict | None = None) -> Decoding:
    """Start the decode workers (they prefetch at once, e.g. while the model loads).

    In-process (workers=0) decoding runs between model batches, when the model's threads are idle: the video
    decoder then uses as many threads as the model (torch.get_num_threads()); a worker decodes on one.
    """
    threads = 1 if workers else torch.get_num_threads()
    dataset = DecodeDataset(video_ids, videos_dir, encoder_name, T1, fps, sample_rate, threads, backbone, decode)
    return Decoding(encoder_name, list(video_ids), T1, fps, sample_rate, iter(decode_loader(dataset, workers)),
                    dataset.decode)


def extract_shard(encoder: EncoderRun, decoding: Decoding, out: str | Path | list[str | Path],
                  failures_out: str | Path, desc: str = "shard") -> dict:
    """Encode one shard's decoded videos; write the store (one per output of the encoder, `out` a list then) and
    the failures TSV atomically. Returns {"stored", "failed"}."""
    if decoding.encoder != encoder.name:
        raise ValueError(f"decoding was started for {decoding.encoder!r}, not for the encoder {encoder.name!r}")
    outs = [out] if isinstance(out, (str, Path)) else list(out)
    if len(outs) != len(encoder.outputs):
        raise ValueError(f"{encoder.name} writes {len(encoder.outputs)} stores ({', '.join(encoder.outputs)}), "
                         f"got {len(outs)} output paths")
    video_ids, T1 = decoding.video_ids, decoding.T1
    failures: list[tuple[str, str, str]] = []
    with contextlib.ExitStack() as stack, torch.inference_mode():
        temporaries = [stack.enter_context(atomic_path(o)) for o in outs]
        failures_tmp = stack.enter_context(atomic_path(failures_out))
        writers = [ShardWriter(tmp, LAYOUT[name].array, shape, LAYOUT[name].dtype, T1, capacity=len(video_ids))
                   for tmp, (name, shape) in zip(temporaries, encoder.outputs.items())]
        batcher = Batcher(encoder.forward, encoder.batch_size)
        seconds_of = {}
        progress = tqdm(total=len(video_ids), desc=f"{encoder.name} {desc}", unit="video", disable=None)

        def store(done):
            for video_id, features in done:
                seconds = seconds_of.pop(video_id)
                for writer, part in zip(writers, features if len(writers) > 1 else (features,)):
                    writer.add(video_id, part, seconds)
                progress.update()

        for item in decoding.items:
            if item.failure is not None:
                logger.warning("%s failed at %s: %s", item.video_id, *item.failure)
                failures.append((item.video_id, *item.failure))
                progress.update()
                continue
            seconds_of[item.video_id] = item.seconds
            store(batcher.add(item.video_id, item.inputs))
        store(batcher.flush())
        progress.close()
        for writer, name in zip(writers, encoder.outputs):
            writer.close({"T1": T1, "fps": decoding.fps, "sample_rate": decoding.sample_rate,
                          "n_failed": len(failures), **encoder.attrs(), "encoder": name,
                          **({"frame_decoding": decoding.decode} if name != "vggish" else {})})
        write_failures(failures_tmp, failures)
    logger.info("%s %s: %d videos stored, %d failed -> %s", encoder.name, desc, len(writers[0].video_ids),
                len(failures), ", ".join(map(str, outs)))
    return {"stored": len(writers[0].video_ids), "failed": len(failures)}


def write_failures(path: str | Path, rows) -> None:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle, delimiter="\t", lineterminator="\n")
        out.writerow(FAILURE_COLUMNS)
        out.writerows((video_id, stage, clean_reason(reason)) for video_id, stage, reason in rows)


def read_failures(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    if tuple(table.columns) != FAILURE_COLUMNS:
        raise ValueError(f"{path}: columns {list(table.columns)}, expected {list(FAILURE_COLUMNS)}")
    return table


def merge_failures(paths: list[str | Path], out: str | Path) -> int:
    """All per-shard failure TSVs -> one TSV sorted by video_id, stage (same columns)."""
    tables = [read_failures(p) for p in paths]
    merged = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=FAILURE_COLUMNS)
    merged = merged.sort_values(["video_id", "stage"], kind="stable")
    with atomic_path(out) as tmp:
        write_failures(tmp, merged.itertuples(index=False, name=None))
    return len(merged)


# --- CLI ---------------------------------------------------------------------------------------------------
def register(subparsers) -> None:
    parser = subparsers.add_parser("extract", help="encode one shard of videos with CLIP-RN50 or VGGish")
    parser.add_argument("--encoder", required=True, choices=EXTRACTED)
    parser.add_argument("--shards", required=True, help="shards.json (python -m avqa shards)")
    parser.add_argument("--shard", required=True, help="shard name, e.g. shard000")
    parser.add_argument("--out", required=True, help="the .zarr store to write")
    parser.add_argument("--tokens-out", help="clip_vit: the store of its merged patch tokens (clip_vit_tokens)")
    parser.add_argument("--backbone", default=encoders.CLIP_VIT_BACKBONE,
                        help=f"clip_vit: the open_clip ViT ({', '.join(encoders.CLIP_VIT_BACKBONES)})")
    parser.add_argument("--n-tokens", type=int, default=encoders.CLIP_VIT_N_TOKENS,
                        help="clip_vit: patch tokens kept per frame after ToMe merging")
    parser.add_argument("--merged-embedding", action="store_true",
                        help="clip_vit: take the frame embedding from the merging pass (one pass, not CLIP's own)")
    parser.add_argument("--failures", required=True, help="the failures .tsv to write")
    parser.add_argument("--T1", type=int, required=True, help="seconds kept per video")
    parser.add_argument("--fps", type=int, default=1)
    parser.add_argument("--sample-rate", type=int, default=encoders.SAMPLE_RATE)
    parser.add_argument("--weights", default="random", help="random | pretrained | checkpoint path")
    parser.add_argument("--weights-seed", type=int, default=0)
    parser.add_argument("--bn3-gamma", type=float, default=encoders.DEFAULT_BN3_GAMMA)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", help="fp32 | bf16 | fp16 (default: --precision-cpu / --precision-cuda)")
    parser.add_argument("--precision-cpu", default="bf16")
    parser.add_argument("--precision-cuda", default="fp16")
    parser.add_argument("--batch-frames", type=int, help="seconds per model batch (default: per device)")
    parser.add_argument("--batch-frames-cpu", type=int, default=20)
    parser.add_argument("--batch-frames-cuda", type=int, default=256)
    parser.add_argument("--channels-last", action="store_true", help="CLIP trunk in channels-last format")
    parser.add_argument("--workers", type=int, default=1, help="decoder processes (0: decode in-process)")
    # features.decode (layout.DECODE_DEFAULTS): each option both ways, the default that of DECODE_DEFAULTS
    parser.add_argument("--to-input-size", dest="to_input_size", action="store_true",
                        help="decode frames straight to the encoder's input size (opt-in; not the exact pixels)")
    parser.add_argument("--full-size-frames", dest="to_input_size", action="store_false",
                        help="decode frames at full size; the encoder's own preprocessing resizes them")
    parser.add_argument("--skip-frames", dest="skip_frames", action="store_true",
                        help="decode only keyframes / reference frames near each second's centre, within "
                             "--max-offset-s, for long, large videos (opt-in; frames 1-2 off the centre frame)")
    parser.add_argument("--every-frame", dest="skip_frames", action="store_false",
                        help="decode every frame: the exact frame nearest each second's centre")
    parser.add_argument("--max-offset-s", type=float, default=DECODE_DEFAULTS["max_offset_s"],
                        help="farthest a skipped-to frame may be from its second's centre (else full decoding)")
    parser.add_argument("--no-deblock", dest="deblock", action="store_false",
                        help="skip H.264's loop filter on the skipped-frames path (less CPU; frames not exact)")
    parser.set_defaults(to_input_size=DECODE_DEFAULTS["to_input_size"], skip_frames=DECODE_DEFAULTS["skip_frames"],
                        deblock=DECODE_DEFAULTS["deblock"])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the model process")
    parser.set_defaults(func=_run_extract)

    merge = subparsers.add_parser("failures", help="merge per-shard failure TSVs into one")
    merge.add_argument("inputs", nargs="*", help="per-shard failures .tsv files")
    merge.add_argument("--out", required=True)
    merge.set_defaults(func=_run_failures)


def _run_extract(args) -> None:
    torch.set_num_threads(args.threads)
    videos_dir, video_ids = read_shard(args.shards, args.shard)
    device = resolve_device(args.device)
    on_cpu = device.type == "cpu"
    precision = args.precision or (args.precision_cpu if on_cpu else args.precision_cuda)
    batch_size = args.batch_frames or (args.batch_frames_cpu if on_cpu else args.batch_frames_cuda)
    weights = encoders.resolve_weights(args.weights, WEIGHTS_KEY[args.encoder])
    decoding = start_decoding(args.encoder, video_ids, videos_dir, args.T1, args.fps, args.sample_rate, args.workers,
                              args.backbone, decode_options(args))
    encoder = load_encoder(args.encoder, weights, args.weights_seed, str(device), batch_size, precision,
                           args.channels_last, args.bn3_gamma, args.backbone, args.n_tokens,
                           not args.merged_embedding)
    if len(encoder.outputs) > 1 and not args.tokens_out:
        raise SystemExit(f"extract: --encoder {args.encoder} also writes its tokens: give --tokens-out")
    outs = [args.out, args.tokens_out] if len(encoder.outputs) > 1 else args.out
    result = extract_shard(encoder, decoding, outs, args.failures, desc=args.shard)
    print(f"{args.shard} {args.encoder}: {result['stored']} stored, {result['failed']} failed")


def decode_options(args) -> dict:
    """The extract CLI's frame-decoding flags as features.decode (layout.DECODE_DEFAULTS' keys)."""
    return {key: getattr(args, key) for key in DECODE_DEFAULTS}


def _run_failures(args) -> None:
    print(f"{merge_failures(args.inputs, args.out)} failures -> {args.out}")
