"""`python -m avqa extract`: one shard of videos through one registered frozen encoder (avqa.features.layout's
REGISTRY) into its Zarr store(s); `python -m avqa failures`: merge the per-shard failure lists.

The command takes one ExtractSpec (avqa.specs.features; the rule passes it as JSON) plus the rule's paths. Per
shard: DataLoader workers decode (frames for a frame encoder, audio for VGGish) and preprocess ahead of the model
(decoding starts before the model loads); the seconds of consecutive videos are packed into fixed-size batches;
each video's features go to the store as soon as its last second is encoded. With workers=0 decoding runs
in-process, between model batches: on a CPU whose cores the model's threads already fill, this is faster than a
competing decoder process (benchmarks/extract.py measures both). A video that cannot be used is a row of the
failures TSV (video_id, stage, reason) and the shard goes on; a shard where every video failed is a valid empty
store (V = 0). Stores and TSV are written atomically (a killed job leaves neither). One code path for CPU and GPU:
device, batch size and precision come from the spec. Each store (LAYOUT) holds its array (V, T1, *shape),
`video_id` (V,), attrs with provenance and per-video durations (the file's length, the same in every store of the
video: media.file_length), n_seconds (the stream's real seconds), padded and cut flags (cut: the file is longer
than T1, the same in every store), and for frame stores how the frames were decoded (frame_decoding, decode_path,
max_offset_s). CLIP ViT writes two stores (clip_vit, clip_vit_tokens) from one forward pass.
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
from avqa.features import decoders
from avqa.features.encoders.base import FrozenEncoder
from avqa.features.extract_parts import (FAILURE_COLUMNS, Batcher, DecodeDataset, Item, ShardWriter, clean_reason,
                                         decode_loader)
from avqa.features.layout import EXTRACTED, FPS, FRAMES, LAYOUT, SAMPLE_RATE, encoder_class, encoder_record
from avqa.features.shards import read_shard
from avqa.runtime import autocast_dtype, resolve_device
from avqa.specs import SpecError, add_spec_arguments, spec_from_args
from avqa.specs.features import ExtractSpec

logger = logging.getLogger(__name__)

# The ExtractSpec fields some encoders read and others leave null (REGISTRY's `options`).
ENCODER_OPTIONS = ("decode", "audio_backend", "channels_last", "bn3_gamma", "clip_vit")


def check_options(spec: ExtractSpec) -> None:
    """The spec sets exactly the encoder-specific settings its encoder reads (REGISTRY `options`)."""
    reads = encoder_record(spec.encoder).options
    missing = [o for o in reads if getattr(spec, o) is None]
    stray = [o for o in ENCODER_OPTIONS if o not in reads and getattr(spec, o) is not None]
    if missing or stray:
        raise SpecError(f"extract spec: encoder {spec.encoder}: " + "; ".join(
            [f"{', '.join(missing)} required"] * bool(missing) + [f"{', '.join(stray)} must be null"] * bool(stray)))
    # the decoder can run here, with these settings: else stop before the first video
    if spec.decode is not None:
        decoders.check_available(spec.decode)
    if spec.audio_backend is not None:
        decoders.check_audio_available(spec.audio_backend)


@dataclass
class EncoderRun:
    """A loaded frozen encoder and how to run it on this device: forward(inputs) -> (n, *item_shape) numpy
    features (a tuple, one per output store, for an encoder with several: `outputs` names them)."""

    encoder: FrozenEncoder
    batch_size: int
    precision: str

    @property
    def name(self) -> str:
        return self.encoder.spec.encoder

    @property
    def model(self) -> torch.nn.Module:
        return self.encoder.model

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    @property
    def outputs(self) -> dict[str, tuple[int, ...]]:
        return self.encoder.outputs

    def forward(self, inputs: torch.Tensor) -> np.ndarray | tuple[np.ndarray, ...]:
        outputs = self.encoder.forward(inputs, self.precision)
        return outputs[0] if len(outputs) == 1 else outputs

    def attrs(self) -> dict:
        return {"encoder": self.name, "device": self.device.type, "precision": self.precision,
                **self.encoder.provenance}


def load_encoder(spec: ExtractSpec) -> EncoderRun:
    """The spec's encoder loaded on its device, with that device's batch size and precision."""
    check_options(spec)
    device = resolve_device(spec.device)
    on_cpu = device.type == "cpu"
    precision = spec.precision.cpu if on_cpu else spec.precision.cuda
    autocast_dtype(precision)  # validates the precision for the device early
    return EncoderRun(encoder_class(spec.encoder)(spec, device),
                      spec.batch_frames.cpu if on_cpu else spec.batch_frames.cuda, precision)


@dataclass
class Decoding:
    """A shard's decoding, started: the videos, how they are decoded, and the Items as they come (in order)."""

    spec: ExtractSpec
    video_ids: list[str]
    items: Iterator[Item]


def start_decoding(spec: ExtractSpec, video_ids: list[str], videos_dir: str | Path) -> Decoding:
    """Start the decode workers (spec.workers; they prefetch at once, e.g. while the model loads).

    In-process (workers=0) decoding runs between model batches, when the model's threads are idle: the video
    decoder then uses as many threads as the model (torch.get_num_threads()); a worker decodes on one.
    """
    check_options(spec)
    threads = 1 if spec.workers else torch.get_num_threads()
    dataset = DecodeDataset(spec, video_ids, videos_dir, threads)
    return Decoding(spec, list(video_ids), iter(decode_loader(dataset, spec.workers)))


def store_attrs(decoding: Decoding) -> dict:
    """What a store records about the decoding: seconds kept, sampling, and how its frames or audio were decoded."""
    spec = decoding.spec
    how = ({"frame_decoding": spec.decode.to_dict()} if encoder_record(spec.encoder).decode == FRAMES
           else {"audio_decoding": {"backend": spec.audio_backend}})
    return {"T1": spec.T1, "fps": FPS, "sample_rate": SAMPLE_RATE, **how}


def extract_shard(encoder: EncoderRun, decoding: Decoding, out: str | Path | list[str | Path],
                  failures_out: str | Path, desc: str = "shard") -> dict:
    """Encode one shard's decoded videos; write the store (one per output of the encoder, `out` a list then) and
    the failures TSV atomically. Returns {"stored", "failed"}."""
    if decoding.spec.encoder != encoder.name:
        raise ValueError(f"decoding was started for {decoding.spec.encoder!r}, not for the encoder {encoder.name!r}")
    outs = [out] if isinstance(out, (str, Path)) else list(out)
    if len(outs) != len(encoder.outputs):
        raise ValueError(f"{encoder.name} writes {len(encoder.outputs)} stores ({', '.join(encoder.outputs)}), "
                         f"got {len(outs)} output paths")
    video_ids, T1 = decoding.video_ids, decoding.spec.T1
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
            writer.close({**store_attrs(decoding), "n_failed": len(failures), **encoder.attrs(), "encoder": name})
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
    parser = subparsers.add_parser("extract", help="encode one shard of videos with one registered frozen encoder")
    add_spec_arguments(parser, "features, weights, device; with --encoder")
    parser.add_argument("--encoder", choices=EXTRACTED, help="with --config: the encoder whose spec to build")
    parser.add_argument("--shards", required=True, help="shards.json (python -m avqa shards)")
    parser.add_argument("--shard", required=True, help="a shard name of shards.json")
    parser.add_argument("--out", required=True, help="the .zarr store to write")
    parser.add_argument("--tokens-out", help="an encoder with a second store (clip_vit: clip_vit_tokens): its path")
    parser.add_argument("--failures", required=True, help="the failures .tsv to write")
    parser.add_argument("--threads", type=int, required=True, help="torch threads of the model process")
    parser.set_defaults(func=_run_extract)

    merge = subparsers.add_parser("failures", help="merge per-shard failure TSVs into one")
    merge.add_argument("inputs", nargs="*", help="per-shard failures .tsv files")
    merge.add_argument("--out", required=True)
    merge.set_defaults(func=_run_failures)


def _run_extract(args) -> None:
    from avqa.workflow import extract_spec

    if args.config is not None and args.encoder is None:
        raise SpecError("extract: --config needs --encoder (the encoder whose spec to build)")
    spec = spec_from_args(args, ExtractSpec, lambda config: extract_spec(config, args.encoder))
    torch.set_num_threads(args.threads)
    videos_dir, video_ids = read_shard(args.shards, args.shard)
    decoding = start_decoding(spec, video_ids, videos_dir)
    encoder = load_encoder(spec)
    if len(encoder.outputs) > 1 and not args.tokens_out:
        raise SpecError(f"extract: encoder {spec.encoder} also writes {list(encoder.outputs)[1]}: give --tokens-out")
    outs = [args.out, args.tokens_out] if len(encoder.outputs) > 1 else args.out
    result = extract_shard(encoder, decoding, outs, args.failures, desc=args.shard)
    print(f"{args.shard} {spec.encoder}: {result['stored']} stored, {result['failed']} failed")


def _run_failures(args) -> None:
    print(f"{merge_failures(args.inputs, args.out)} failures -> {args.out}")
