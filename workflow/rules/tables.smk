# The paper's results tables: every variant x seed of a table -> {results_dir}/{table}.csv (+ a Markdown twin).


rule table:
    input:
        # metrics.json (the cells, the model's cost), predictions.csv (the statistics' per-question source of
        # truth), run_config.json (variant, label, encoder block, provenance)
        lambda wc: W.table_run_files(config, wc.table, "metrics.json", "predictions.csv", "run_config.json"),
    output:
        csv=report(P.table(), caption="../report/table.rst", category="Tables", subcategory="{table}"),
        md=P.table(suffix="md"),
        stats=P.table_stats(),
    params:
        spec=lambda wc: W.table_spec(config, wc.table).to_json(),
    log:
        P.log("tables", "{table}"),
    benchmark:
        P.benchmark("tables", "{table}")
    shell:
        "python -m avqa table --table {wildcards.table} --spec {params.spec:q} --out {output.csv:q} > {log:q} 2>&1"
