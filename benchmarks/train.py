"""Training-step speed of TASS-Net on this machine: precision, questions per video, threads, parallel runs.

Synthetic batches with the default synthetic run's shapes (T = 10 segments of 7 x 7 x 2048 maps, 128-d audio,
CLIP text features, 64 questions per batch) on random values: the step's cost does not depend on the values.
Compared side by side in one run (ratios, because the machine is shared and noisy):
  - fp32 vs bf16 autocast, at 1 thread;
  - questions_per_video k = 4 vs 16 (16 / 4 unique videos per batch of 64), bf16, 1 thread;
  - one process with 2 threads vs 2 processes with 1 thread each (throughput: steps per second in all).
Prints one JSON object: seconds per step (best of --repeats rounds) and the ratios behind config.yaml's
train.precision.cpu, train.questions_per_video and train.threads.

    python benchmarks/train.py [--steps 6] [--repeats 2]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import time

import torch

from avqa.models import build_model

T, L, BATCH = 10, 21, 64


def make_batch(videos: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    token_mask = torch.arange(L)[None] < torch.randint(8, L + 1, (BATCH, 1), generator=g)
    return {
        "visual": torch.randn(videos, T, 7, 7, 2048, generator=g),
        "audio": torch.randn(videos, T, 128, generator=g),
        "video_index": torch.arange(BATCH) % videos,
        "sentence": torch.randn(BATCH, 1024, generator=g),
        "tokens": torch.randn(BATCH, L, 512, generator=g),
        "token_mask": token_mask,
        "target_mask": token_mask & (torch.arange(L)[None] == 3),
        "answer": torch.randint(0, 42, (BATCH,), generator=g),
    }


def seconds_per_step(precision: str, k: int, threads: int, steps: int) -> float:
    """Mean wall seconds of a training step (forward, loss, backward, Adam) after one warm-up step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model("tass").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
    batch = make_batch(BATCH // k)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext

    def step():
        with autocast():
            out = model(batch)
            loss, _ = model.loss(batch, out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def _worker(args: tuple) -> float:
    return seconds_per_step(*args)


def parallel_steps_per_second(processes: int, threads: int, steps: int) -> float:
    """Steps per second of `processes` runs side by side (bf16, k = 16), `threads` each."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        per_step = pool.map(_worker, [("bf16", 16, threads, steps)] * processes)
    return sum(1.0 / s for s in per_step)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2, help="rounds (best kept; the parts interleaved)")
    args = parser.parse_args(argv)
    single = {"fp32_k16_1thread": ("fp32", 16, 1), "bf16_k16_1thread": ("bf16", 16, 1),
              "bf16_k4_1thread": ("bf16", 4, 1)}
    best = dict.fromkeys([*single, "steps_per_s_1proc_2threads", "steps_per_s_2procs_1thread"], None)
    for _ in range(args.repeats):
        for name, setting in single.items():
            value = seconds_per_step(*setting, args.steps)
            best[name] = value if best[name] is None else min(best[name], value)
        for name, (procs, threads) in {"steps_per_s_1proc_2threads": (1, 2),
                                       "steps_per_s_2procs_1thread": (2, 1)}.items():
            value = parallel_steps_per_second(procs, threads, args.steps)
            best[name] = value if best[name] is None else max(best[name], value)
    report = {
        "seconds_per_step": {k: round(v, 4) for k, v in best.items() if not k.startswith("steps")},
        "steps_per_second": {k: round(v, 3) for k, v in best.items() if k.startswith("steps")},
        "ratios": {
            "fp32_over_bf16": round(best["fp32_k16_1thread"] / best["bf16_k16_1thread"], 2),
            "k4_over_k16": round(best["bf16_k4_1thread"] / best["bf16_k16_1thread"], 2),
            "two_1thread_runs_over_one_2thread_run": round(
                best["steps_per_s_2procs_1thread"] / best["steps_per_s_1proc_2threads"], 2),
        },
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
