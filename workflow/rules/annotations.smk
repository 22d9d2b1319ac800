# MUSIC-AVQA JSON (real or synthetic) -> {results_dir}/annotations/{split}.parquet


rule annotations:
    input:
        json=lambda wc: W.annotation_json(config, wc.split),
    output:
        P.annotations(),
    params:
        spec=W.annotations_spec(config).to_json(),
    log:
        P.log("annotations", "{split}"),
    benchmark:
        P.benchmark("annotations", "{split}")
    shell:
        "python -m avqa annotations --json {input.json:q} --split {wildcards.split} --spec {params.spec:q} "
        "--out {output:q} > {log:q} 2>&1"


rule words:
    """The train split's question-word vocabulary (AVST's LSTM question encoder)."""
    input:
        P.annotations("train"),
    output:
        P.words(),
    log:
        P.log("words"),
    benchmark:
        P.benchmark("words")
    shell:
        "python -m avqa words --annotations {input:q} --out {output:q} > {log:q} 2>&1"


rule instruments:
    """Per-video instrument labels (SaSR-Net's source losses): exact from the synthetic scenes, derived from the
    train split's questions and answers on MUSIC-AVQA (never from the val / test answers)."""
    input:
        W.instrument_source(config),
    output:
        P.instruments(),
    params:
        flag="--scenes" if config["dataset"] == "synthetic" else "--annotations",
    log:
        P.log("instruments"),
    benchmark:
        P.benchmark("instruments")
    shell:
        "python -m avqa instruments {params.flag} {input:q} --out {output:q} > {log:q} 2>&1"
