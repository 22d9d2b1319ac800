# The paper's results tables: every variant x seed of a table -> {results_dir}/{table}.csv (+ a Markdown twin).


rule table:
    input:
        # metrics.json (the cells) and predictions.csv (the statistics' per-question source of truth)
        lambda wc: [f"{run}/{name}" for run in W.table_runs(config, wc.table) for name in ("metrics.json", "predictions.csv")],
    output:
        csv=report(P.table(), caption="../report/table.rst", category="Tables", subcategory="{table}"),
        md=P.table(suffix="md"),
        stats=P.table_stats(),
    params:
        args=lambda wc: W.table_args(config, wc.table),
    log:
        P.log("tables", "{table}"),
    benchmark:
        P.benchmark("tables", "{table}")
    shell:
        "python -m avqa table --table {wildcards.table} {params.args} --out {output.csv:q} > {log:q} 2>&1"
