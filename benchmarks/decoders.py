"""Frame decoders side by side (issue 21 item 1): decode CPU seconds per clip and fidelity, per backend and size.

Clips with real motion made here (encode_command: a moving lavfi source of tests/media_factory.py, default
testsrc2 under temporal noise like a sensor's; x264 High, preset veryfast, up to 3 B-frames in a pyramid, a keyframe
every 250 frames, CRF 23 under a YouTube-like bitrate cap; AAC), 60 s at 320x240, 640x360 and 1280x720, 25 and
29.97 fps, cached under --cache keyed on the command that makes them. All 60 seconds' frames of each clip are
decoded (T1 = 60), with one decoder thread, by
  decord_full              media.decode_frames() (the default: every frame, the frame nearest each centre),
  decord_skipping          media.decode_frames(skip=True) (reference frames / keyframes only, via ffmpeg),
  torchcodec_exact         decoders.torchcodec_frames(seek_mode="exact") (start times from a packet scan),
  torchcodec_approximate   decoders.torchcodec_frames(seek_mode="approximate") (start times from the header);
timed as process CPU seconds including children (ffprobe, ffmpeg): the machine is shared, so CPU, not wall,
is what compares (wall is reported too). Fidelity against decord_full, the exact full decode: per second, the
cosine between CLIP-RN50 layer4 maps (random weights, bn3 gamma from config.yaml, fp32; computed only where
the frames differ: identical frames score 1), and, because random weights compress one frame's change into
0.998-0.9999, the seconds whose frame is another one (its start differs by > 1 ms: seconds_off) and the
seconds that are bit-exact. Backends run interleaved, in a rotated order per repeat; the best repeat counts.
The audio track (the first T1 seconds, 16 kHz mono) is decoded the same way by both audio backends
(features.audio_backend): audio_ffmpeg (the ffmpeg binary, media.decode_audio) and audio_torchcodec
(decoders.torchcodec_audio), with whether their samples are identical (--no-audio skips them).
Short clips show the per-video overheads of a run like workflow/configs/scale.yaml's:
    python benchmarks/decoders.py --sizes 96x72 --fps 5 --seconds 2 --kind pan --repeats 20

Prints a Markdown table, then the JSON (also written atomically to --out).

    nice -n 10 python benchmarks/decoders.py                       # ~5 min on 2 shared cores (clips cached)
    python benchmarks/decoders.py --sizes 640x360 --fps 25 --repeats 3
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avqa.features import decoders, encoders, media

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from media_factory import moving_source, run_ffmpeg  # noqa: E402  (one definition of the moving pictures)

# name -> f(path, T1, features.decode of config.yaml) -> media.Decoded
BACKENDS = {
    "decord_full": lambda path, T1, decode: media.decode_frames(path, T1, pad=False),
    "decord_skipping": lambda path, T1, decode: media.decode_frames(
        path, T1, pad=False, skip=True, max_offset_s=decode["max_offset_s"], deblock=decode["deblock"]),
    "torchcodec_exact": lambda path, T1, decode: decoders.torchcodec_frames(path, T1, pad=False,
                                                                            seek_mode="exact"),
    "torchcodec_approximate": lambda path, T1, decode: decoders.torchcodec_frames(path, T1, pad=False,
                                                                                  seek_mode="approximate"),
}
REFERENCE = "decord_full"
SAMPLE_RATE = 16000
AUDIO_BACKENDS = {
    "audio_ffmpeg": lambda path, T1: media.decode_audio(path, SAMPLE_RATE, T1, pad=False),
    "audio_torchcodec": lambda path, T1: decoders.torchcodec_audio(path, SAMPLE_RATE, T1, pad=False),
}
FPS_LABELS = {"25": "25", "30": "30", "30000/1001": "29.97"}


def cpu_seconds() -> float:
    """User + system time of this process (time.process_time: os.times counts in 10-ms ticks, too coarse for a
    2-s clip) and of its finished children (ffprobe, ffmpeg)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def ffmpeg_version() -> str:
    return subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def youtube_kbps(size: tuple[int, int]) -> int:
    """A bitrate cap like YouTube's H.264 renditions (~330 kb/s at 320x240, 750 at 640x360, 2100 at 1280x720):
    decoding cost grows with the bitrate, and uncapped noise would cost 4x a crawled clip's (see the docs)."""
    return int(round(750 * (size[0] * size[1] / (640 * 360)) ** 0.75))


def encode_command(kind: str, size: tuple[int, int], fps: str, seconds: float) -> list[str]:
    """ffmpeg arguments for a crawled-looking clip: a moving lavfi source (media_factory.moving_source), x264 High
    (preset veryfast), up to 3 B-frames in a pyramid, a keyframe every 250 frames, CRF 23 under a YouTube-like
    bitrate cap; AAC 44.1 kHz stereo."""
    rate = f"{youtube_kbps(size)}k"
    return ["-f", "lavfi", "-i", moving_source(kind, size, fps, seconds),
            "-f", "lavfi", "-i", f"sine=f=440:r=44100:d={seconds}", "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-bf", "3",
            "-g", "250", "-crf", "23", "-maxrate", rate, "-bufsize", rate,
            "-c:a", "aac", "-b:a", "128k", "-ac", "2"]


def clip(cache: Path, kind: str, size: tuple[int, int], fps: str, seconds: float) -> Path:
    """The clip, made once: its name carries a hash of the ffmpeg command and ffmpeg's version, so a change to
    either makes a new clip; written under a temporary name, then renamed."""
    command = encode_command(kind, size, fps, seconds)
    key = hashlib.sha256(json.dumps([command, ffmpeg_version()]).encode()).hexdigest()[:12]
    path = cache / f"{kind}_{size[0]}x{size[1]}_{FPS_LABELS.get(fps, fps)}fps_{seconds:g}s_{key}.mp4"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
        try:
            run_ffmpeg(*command, str(partial))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def decode_all(path: Path, T1: int, backends: list[str], repeats: int, decode: dict | None,
               table: dict = BACKENDS) -> tuple[dict, dict, dict]:
    """(Decoded per backend, best CPU seconds, best wall seconds): every backend of `table` once per repeat, the
    order rotated so none always runs first (cold file cache) or last. decode None: audio (AUDIO_BACKENDS)."""
    decoded, cpu, wall = {}, {}, {}
    for repeat in range(repeats):
        for name in backends[repeat % len(backends):] + backends[:repeat % len(backends)]:
            start_cpu, start_wall = cpu_seconds(), time.perf_counter()
            decoded[name] = table[name](path, T1) if decode is None else table[name](path, T1, decode)
            cpu[name] = min(cpu.get(name, float("inf")), cpu_seconds() - start_cpu)
            wall[name] = min(wall.get(name, float("inf")), time.perf_counter() - start_wall)
    return decoded, cpu, wall


class ClipMaps:
    """CLIP-RN50 layer4 maps (random weights) of frames, flattened, on the caller's torch threads."""

    def __init__(self, bn3_gamma: float):
        self.model = encoders.load_clip("random", 0, "cpu", bn3_gamma=bn3_gamma)
        self.transform = encoders.clip_image_transform()

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return encoders.clip_maps(self.model, self.transform(frames), "fp32").float().reshape(len(frames), -1)


def fidelity(decoded: dict, reference: media.Decoded, maps: ClipMaps | None) -> dict:
    """Per backend: cosine of its maps with the reference's (min, mean; 1 where the frames are identical),
    the seconds whose frame is another frame (seconds_off) and the bit-exact seconds."""
    n = len(reference.data)
    same = {name: np.array([np.array_equal(d.data[k], reference.data[k]) for k in range(n)])
            for name, d in decoded.items()}
    cosines = {name: np.ones(n) for name in decoded}
    differing = sorted({k for name in decoded for k in np.flatnonzero(~same[name])})
    if maps is not None and differing:
        reference_maps = dict(zip(differing, maps(reference.data[differing])))
        for name, d in decoded.items():
            ks = np.flatnonzero(~same[name])
            if len(ks):
                ours = maps(d.data[ks])
                cosines[name][ks] = [float(torch.cosine_similarity(m, reference_maps[k], dim=0))
                                     for m, k in zip(ours, ks)]
    result = {}
    for name, d in decoded.items():
        off = np.abs(np.array(d.seconds.offsets) - np.array(reference.seconds.offsets)) > 1e-3
        result[name] = {"cos_min": round(float(cosines[name].min()), 4) if maps is not None else None,
                        "cos_mean": round(float(cosines[name].mean()), 4) if maps is not None else None,
                        "seconds_off": int(off.sum()), "bit_exact_seconds": int(same[name].sum()),
                        "max_offset_s": d.seconds.max_offset, "decode_path": d.seconds.decode_path}
    return result


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def markdown(result: dict) -> str:
    backends = result["backends"]
    lines = ["CPU seconds per clip (frames of all its seconds decoded, one decoder thread; best of "
             f"{result['repeats']}):", "",
             "| clip | " + " | ".join(backends) + " |", "|---|" + "---|" * len(backends)]
    for row in result["clips"]:
        lines.append(f"| {row['clip']} | " + " | ".join(f"{row['backends'][b]['cpu_s']:.3f}" for b in backends)
                     + " |")
    lines += ["", "Fidelity against decord_full: CLIP-map cos min / seconds off / bit-exact seconds (of n):", "",
              "| clip | n | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    for row in result["clips"]:
        cells = []
        for b in backends:
            cell = row["backends"][b]
            cos = "-" if cell["cos_min"] is None else f"{cell['cos_min']:.4f}"
            cells.append(f"{cos} / {cell['seconds_off']} / {cell['bit_exact_seconds']}")
        lines.append(f"| {row['clip']} | {row['seconds']} | " + " | ".join(cells) + " |")
    if result.get("audio_backends"):
        audio = result["audio_backends"]
        lines += ["", "Audio, CPU seconds per clip (its first T1 seconds to 16 kHz mono; best of "
                  f"{result['repeats']}) and whether the samples are identical:", "",
                  "| clip | " + " | ".join(audio) + " | identical |", "|---|" + "---|" * (len(audio) + 1)]
        for row in result["clips"]:
            cells = [f"{row['audio'][b]['cpu_s']:.3f}" for b in audio]
            lines.append(f"| {row['clip']} | " + " | ".join(cells) + f" | {row['audio']['identical']} |")
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".partial") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["320x240", "640x360", "1280x720"])
    parser.add_argument("--fps", nargs="+", default=["25", "30000/1001"], help="frame rates, as ffmpeg takes them")
    parser.add_argument("--seconds", type=float, default=60, help="clip length (s); all its seconds are decoded")
    parser.add_argument("--kind", default="noise", help="media_factory.moving_source: pan | zoom | life | noise")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--repeats", type=int, default=1, help="timing rounds per clip (the best counts)")
    parser.add_argument("--no-cosine", action="store_true", help="skip the CLIP maps (frame agreement only)")
    parser.add_argument("--no-audio", action="store_true", help="skip the audio backends")
    parser.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".clips",
                        help="generated clips, kept between runs")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml",
                        help="weights_bn3_gamma and features.decode (the skipping path's settings)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)

    import yaml
    config = yaml.safe_load(args.config.read_text())
    bn3_gamma, decode = config["weights_bn3_gamma"], config["features"]["decode"]
    threads = torch.get_num_threads()
    T1 = media.count_seconds(args.seconds)
    started = time.perf_counter()
    clips = [(size, fps, clip(args.cache, args.kind, parse_size(size), fps, args.seconds))
             for size in args.sizes for fps in args.fps]
    encode_s = time.perf_counter() - started
    maps = None if args.no_cosine else ClipMaps(bn3_gamma)
    rows = []
    for size, fps, path in clips:
        torch.set_num_threads(1)   # decoding as in a decode worker; the maps below use the caller's threads
        try:
            decoded, cpu, wall = decode_all(path, T1, args.backends, args.repeats, decode)
            reference = decoded.get(REFERENCE) or BACKENDS[REFERENCE](path, T1, decode)
        finally:
            torch.set_num_threads(threads)
        cells = fidelity(decoded, reference, maps)
        for name in decoded:
            cells[name].update(cpu_s=round(cpu[name], 3), wall_s=round(wall[name], 3))
        rows.append({"clip": f"{size} {FPS_LABELS.get(fps, fps)} fps", "file": path.name,
                     "seconds": len(reference.data), "backends": cells})
        if not args.no_audio:
            tracks, cpu, wall = decode_all(path, T1, list(AUDIO_BACKENDS), args.repeats, None, AUDIO_BACKENDS)
            rows[-1]["audio"] = {name: {"cpu_s": round(cpu[name], 4), "wall_s": round(wall[name], 4)}
                                 for name in tracks}
            first, *rest = tracks.values()
            rows[-1]["audio"]["identical"] = all(np.array_equal(first.data, t.data) and first.seconds == t.seconds
                                                 for t in rest)
        print(rows[-1]["clip"], json.dumps(cells), file=sys.stderr, flush=True)
    import decord
    import torchcodec
    result = {"date": time.strftime("%Y-%m-%d"), "kind": args.kind, "clip_seconds": args.seconds, "T1": T1,
              "repeats": args.repeats, "decoder_threads": 1, "backends": args.backends,
              "audio_backends": [] if args.no_audio else list(AUDIO_BACKENDS),
              "versions": {"torch": torch.__version__, "torchcodec": torchcodec.__version__,
                           "decord": decord.__version__, "ffmpeg": ffmpeg_version()},
              "encode_wall_s": round(encode_s, 1), "total_wall_s": round(time.perf_counter() - started, 1),
              "clips": rows}
    text = json.dumps(result, indent=1)
    if args.out:
        write_atomically(args.out, text + "\n")
    print(markdown(result), text, sep="\n\n")
    return result


if __name__ == "__main__":
    main()
