# The report's figures (snakemake --report report.html): per table an accuracy chart and the training curves of
# its runs, and the full model's attention in the style of the paper's Fig. 6.


rule plot_table:
    input:
        csv=P.table(),
        stats=P.table_stats(),
    output:
        report(P.plot(kind="accuracy"), caption="../report/accuracy.rst", category="Figures",
               subcategory="Accuracy per table"),
    log:
        P.log("plots", "{table}_accuracy"),
    benchmark:
        P.benchmark("plots", "{table}_accuracy")
    shell:
        "python -m avqa plot-table --table {wildcards.table} --csv {input.csv:q} --stats {input.stats:q} "
        "--out {output:q} > {log:q} 2>&1"


rule plot_curves:
    input:
        logs=lambda wc: W.table_run_files(config, wc.table, "train_log.csv"),
        metrics=lambda wc: W.table_run_files(config, wc.table, "metrics.json"),
        configs=lambda wc: W.table_run_files(config, wc.table, "run_config.json"),   # the rows' labels
    output:
        report(P.plot(kind="curves"), caption="../report/curves.rst", category="Figures",
               subcategory="Training curves"),
    params:
        spec=lambda wc: W.curves_spec(config, wc.table).to_json(),
    log:
        P.log("plots", "{table}_curves"),
    benchmark:
        P.benchmark("plots", "{table}_curves")
    shell:
        "python -m avqa plot-curves --table {wildcards.table} --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"


rule plot_attention:
    input:
        run=lambda wc: W.attention_inputs(config, wc.variant, wc.seed),
        questions=P.questions(),
        videos=synthetic_videos,
    output:
        report(P.attention_plot(), caption="../report/attention.rst", category="Figures",
               subcategory="Attention (Fig. 6 style)"),
    params:
        run=lambda wc: W.run_dir(config, wc.variant, wc.seed),
        videos_dir=W.videos_dir(config),
        spec=W.attention_spec(config).to_json(),
    log:
        P.log("plots", "attention", "{variant}_seed{seed}"),
    benchmark:
        P.benchmark("plots", "attention", "{variant}_seed{seed}")
    shell:
        "python -m avqa plot-attention --run {params.run:q} --videos-dir {params.videos_dir:q} "
        "--spec {params.spec:q} --out {output:q} > {log:q} 2>&1"
