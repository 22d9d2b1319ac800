# The report's figures (snakemake --report report.html): per table an accuracy chart and the training curves of
# its runs, and the full model's attention in the style of the paper's Fig. 6.


rule plot_table:
    input:
        "results/{table}.csv",
    output:
        report("results/plots/{table}_accuracy.png", caption="../report/accuracy.rst", category="Figures",
               subcategory="Accuracy per table"),
    log:
        "results/logs/plots/{table}_accuracy.log",
    shell:
        "python -m avqa plot-table --table {wildcards.table} --csv {input} --out {output} 2> {log}"


rule plot_curves:
    input:
        logs=lambda wc: [f"{run}/train_log.csv" for run in W.table_runs(config, wc.table)],
        metrics=lambda wc: [f"{run}/metrics.json" for run in W.table_runs(config, wc.table)],
    output:
        report("results/plots/{table}_curves.png", caption="../report/curves.rst", category="Figures",
               subcategory="Training curves"),
    params:
        args=lambda wc: W.curves_args(config, wc.table),
    log:
        "results/logs/plots/{table}_curves.log",
    shell:
        "python -m avqa plot-curves {params.args} --out {output} 2> {log}"


rule plot_attention:
    input:
        run=lambda wc: W.attention_inputs(config, wc.variant, wc.seed),
        questions="results/features/questions.zarr",
        videos=synthetic_videos,
    output:
        report("results/plots/attention/{variant}_seed{seed}.png", caption="../report/attention.rst",
               category="Figures", subcategory="Attention (Fig. 6 style)"),
    params:
        run=lambda wc: W.run_dir(config, wc.variant, wc.seed),
        videos_dir=W.videos_dir(config),
        questions=config.get("attention_questions", 3),
    log:
        "results/logs/plots/attention/{variant}_seed{seed}.log",
    shell:
        "python -m avqa plot-attention --run {params.run} --videos-dir {params.videos_dir:q} "
        "--questions {params.questions} --out {output} 2> {log}"
