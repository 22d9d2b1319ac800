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
        logs=lambda wc: [f"{run}/train_log.csv" for run in W.table_runs(config, wc.table)],
        metrics=lambda wc: [f"{run}/metrics.json" for run in W.table_runs(config, wc.table)],
    output:
        report(P.plot(kind="curves"), caption="../report/curves.rst", category="Figures",
               subcategory="Training curves"),
    params:
        args=lambda wc: W.curves_args(config, wc.table),
    log:
        P.log("plots", "{table}_curves"),
    benchmark:
        P.benchmark("plots", "{table}_curves")
    shell:
        "python -m avqa plot-curves {params.args} --out {output:q} > {log:q} 2>&1"


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
        questions=config.get("attention_questions", 3),
    log:
        P.log("plots", "attention", "{variant}_seed{seed}"),
    benchmark:
        P.benchmark("plots", "attention", "{variant}_seed{seed}")
    shell:
        "python -m avqa plot-attention --run {params.run:q} --videos-dir {params.videos_dir:q} "
        "--questions {params.questions} --out {output:q} > {log:q} 2>&1"
