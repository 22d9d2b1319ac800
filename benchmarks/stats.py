"""How long the tables' statistics take (avqa.reporting.stats, table_stats): prints JSON.

- `synthetic`: a 9,129-question test set (MUSIC-AVQA's json_update size) x `--rows` rows of random correctness:
  every cell's interval and every row's paired comparison with the first row, B = 10,000 resamples.
- `--results DIR`: every table of a finished results folder (the runs each table's CSV lists), the statistics
  alone (no parameter counting), as the table rule computes them.

    python benchmarks/stats.py [--rows 40] [--results results]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--results", type=Path, help="a finished results folder (every table of it)")
    args = parser.parse_args()
    out = [synthetic(args.rows)]
    if args.results:
        out.append(results_tables(args.results))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
