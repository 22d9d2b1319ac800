"""Per-stage cost of a finished run from its Snakemake `benchmark:` files and its folders' disk use.

    python benchmarks/scale_report.py results_scale            # a Markdown table
    python benchmarks/scale_report.py results_scale --json     # the same figures as JSON

A stage is the first folder under {results_dir}/benchmarks/ (pool/, train/, ...; extraction per encoder:
extract/clip_rn50, extract/vggish) or the file's own name (shards.tsv). Per stage: jobs, summed and longest wall time, summed CPU time, the largest peak RSS. Disk:
`du`-style bytes (hard links counted once) of each output folder under the results root.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

DISK_FOLDERS = ("standins", "synthetic", "annotations", "features/clip_rn50", "features/vggish",
                "features/clip_vit", "features/clip_vit_tokens", "features/resnet18", "features/questions.zarr",
                "features/questions_clip_vit.zarr", "pooled", "runs")


def stage_of(tsv: Path, root: Path) -> str:
    parts = tsv.relative_to(root).parts
    if parts[0] == "extract" and len(parts) > 2:  # one stage per encoder: their costs differ by an order
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else tsv.stem


def stage_costs(results_dir: str | Path) -> pd.DataFrame:
    """One row per stage: jobs, wall_s (sum), wall_max_s, cpu_s (sum), max_rss_mb (max)."""
    root = Path(results_dir) / "benchmarks"
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        bench = pd.read_csv(tsv, sep="\t")
        rows.append({"stage": stage_of(tsv, root), "wall_s": float(bench["s"].iloc[-1]),
                     "cpu_s": float(bench["cpu_time"].iloc[-1]), "max_rss_mb": float(bench["max_rss"].iloc[-1])})
    if not rows:
        raise SystemExit(f"{root}: no benchmark files (run the workflow first)")
    frame = pd.DataFrame(rows)
    return (frame.groupby("stage", sort=False)
            .agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"), wall_max_s=("wall_s", "max"),
                 cpu_s=("cpu_s", "sum"), max_rss_mb=("max_rss_mb", "max"))
            .reset_index())


def disk_bytes(path: Path) -> int:
    """Bytes under `path`, each inode once (the stand-ins are hard links to a few clips)."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def disk_use(results_dir: str | Path) -> dict[str, int]:
    root = Path(results_dir)
    return {name: disk_bytes(root / name) for name in DISK_FOLDERS if (root / name).exists()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", nargs="?", default="results_scale")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    costs, disk = stage_costs(args.results_dir), disk_use(args.results_dir)
    if args.json:
        print(json.dumps({"stages": costs.to_dict(orient="records"), "disk_bytes": disk}, indent=1))
        return 0
    print(costs.round(2).to_string(index=False))
    print()
    print(pd.DataFrame({"folder": list(disk), "MB": [round(b / 1e6, 1) for b in disk.values()]})
          .to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
