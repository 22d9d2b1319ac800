# The paper's results tables: every variant x seed of a table -> results/{table}.csv (+ a Markdown twin).


rule table:
    input:
        lambda wc: [f"{run}/metrics.json" for run in W.table_runs(config, wc.table)],
    output:
        csv=report("results/{table}.csv", caption="../report/table.rst", category="Tables",
                   subcategory="{table}"),
        md="results/{table}.md",
    params:
        args=lambda wc: W.table_args(config, wc.table),
    log:
        "results/logs/tables/{table}.log",
    shell:
        "python -m avqa table --table {wildcards.table} {params.args} --out {output.csv} 2> {log}"
