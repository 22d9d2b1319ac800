"""How long the tables' statistics take (avqa.reporting.stats, table_stats): prints JSON.

- `synthetic`: a 9,129-question test set (MUSIC-AVQA's json_update size) x `--rows` rows of random correctness:
  every cell's interval and every row's paired comparison with the first row, B = 10,000 resamples.
- `--results DIR`: every table of a finished results folder (the runs each table's CSV lists), the statistics
  alone (no parameter counting), as the table rule computes them.
- `--grid CONFIG [OVERLAY ...]`: every table of a config's full grid at its shapes (each table's rows and seeds,
  each row compared with the table's first row and, in Table 1, also with a second reference), on random
  correctness over `--questions` test questions: what the statistics of that grid cost without training it.

    python benchmarks/stats.py [--rows 40] [--results results] [--grid config.yaml [overlay.yaml] --questions N]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from avqa.reporting import stats, table_stats


def synthetic(n_rows: int, n_questions: int = 9129, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    keys = rng.choice(np.array(stats.TYPE_KEYS), n_questions)
    rows = [table_stats.RowPredictions(f"row{i}", f"row{i}", "clip", [0], np.arange(n_questions), keys,
                                       (rng.random((1, n_questions)) < 0.7).astype(float)) for i in range(n_rows)]
    start, cpu = time.perf_counter(), time.process_time()
    frame = table_stats.compute(rows, list(table_stats.COLUMN_CELLS), [(r.variant, "row0") for r in rows[1:]])
    return {"case": "synthetic", "questions": n_questions, "rows": n_rows, "lines": len(frame),
            "seconds": round(time.perf_counter() - start, 2), "cpu_seconds": round(time.process_time() - cpu, 2)}


def results_tables(results: Path) -> dict:
    """Statistics of every table CSV under `results`, from the runs its rows name (variant -> run dirs)."""
    from avqa.reporting.tables import load_run

    timings, cpu = {}, time.process_time()
    for csv in sorted(results.glob("table[0-9]*.csv")):
        if csv.stem.endswith("_stats"):
            continue
        table = pd.read_csv(csv, dtype={"seeds": str})
        ours = table[table["source"] == "this run"]
        start = time.perf_counter()
        rows = []
        for variant, method, block, seeds in ours[["variant", "method", "block", "seeds"]].itertuples(index=False):
            records = [load_run(next(results.glob(f"runs/*/{variant}/seed{s}"))) for s in str(seeds).split()]
            rows.append(table_stats.row_predictions(method, variant, block, records))
        columns = [c for c in table_stats.COLUMN_CELLS if c in table.columns]
        table_stats.compute(rows, columns, [(r.variant, rows[0].variant) for r in rows[1:]])
        timings[csv.stem] = round(time.perf_counter() - start, 2)
    return {"case": "results", "folder": str(results), "seconds_per_table": timings,
            "seconds": round(sum(timings.values()), 2), "cpu_seconds": round(time.process_time() - cpu, 2)}


def _merged(base: dict, overlay: dict) -> dict:
    out = dict(base)
    for key, value in overlay.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def grid(configs: list[Path], n_questions: int, seed: int = 0) -> dict:
    """The statistics of every table of a config's grid, at its shapes, on random per-question correctness."""
    import yaml

    from avqa import workflow as W

    config: dict = {}
    for path in configs:
        config = _merged(config, yaml.safe_load(path.read_text()))
    rng = np.random.default_rng(seed)
    keys = rng.choice(np.array(stats.TYPE_KEYS), n_questions)
    timings, shapes, cpu = {}, {}, time.process_time()
    for table in config["tables"]:
        variants, seeds = W.table_variants(config, table), W.table_seeds(config, table)
        rows = [table_stats.RowPredictions(v, v, "clip", list(seeds), np.arange(n_questions), keys,
                                           (rng.random((len(seeds), n_questions)) < 0.7).astype(float))
                for v in variants]
        pairs = [(r.variant, rows[0].variant) for r in rows[1:]]
        if table == "table1" and len(rows) > 2:  # every row also against the question-only baseline
            pairs += [(r.variant, rows[-1].variant) for r in rows[:-1]]
        start = time.perf_counter()
        table_stats.compute(rows, list(table_stats.COLUMN_CELLS), pairs)
        timings[table] = round(time.perf_counter() - start, 2)
        shapes[table] = {"rows": len(rows), "seeds": len(seeds), "comparisons": len(pairs)}
    return {"case": "grid", "configs": [str(p) for p in configs], "questions": n_questions, "tables": shapes,
            "seconds_per_table": timings, "seconds": round(sum(timings.values()), 2),
            "cpu_seconds": round(time.process_time() - cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--results", type=Path, help="a finished results folder (every table of it)")
    parser.add_argument("--grid", type=Path, nargs="+", help="config.yaml [overlays]: every table at its shapes")
    parser.add_argument("--questions", type=int, default=9129, help="--grid: test questions (default 9,129)")
    args = parser.parse_args()
    out = [synthetic(args.rows)]
    if args.results:
        out.append(results_tables(args.results))
    if args.grid:
        out.append(grid(args.grid, args.questions))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
