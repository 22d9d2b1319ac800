# One training run per (variant, seed): train, keep the best-on-val checkpoint, evaluate it on test.
import json


rule train:
    input:
        annotations=expand("results/annotations/{split}.parquet", split=W.SPLITS),
        pooled=lambda wc: expand(
            "results/pooled/{method}/{split}.zarr", method=W.variant_pooling(config, wc.variant), split=W.SPLITS
        ),
        questions="results/features/questions.zarr",
    output:
        metrics="results/runs/{experiment}/{variant}/seed{seed}/metrics.json",
        predictions="results/runs/{experiment}/{variant}/seed{seed}/predictions.csv",
        train_log="results/runs/{experiment}/{variant}/seed{seed}/train_log.csv",
        model="results/runs/{experiment}/{variant}/seed{seed}/model_best.pt",
    params:
        # The whole run spec as JSON: changing any hyperparameter of a variant retrains just that variant.
        spec=lambda wc: json.dumps(W.run_config(config, wc.variant, int(wc.seed)), sort_keys=True),
        out=lambda wc: W.run_dir(config, wc.variant, wc.seed),
    threads: config["train"]["threads"]
    resources:
        gpu=W.gpu_jobs(config),
    log:
        "results/logs/train/{experiment}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{variant}/seed{seed}.tsv"
    shell:
        "python -m avqa train --run-config-json {params.spec:q} --out {params.out} 2> {log}"
