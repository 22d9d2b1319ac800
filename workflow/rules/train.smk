# One training run per (variant, seed): train, keep the best-on-val checkpoint, evaluate it on test.
import json


rule train:
    input:
        annotations=expand(P.annotations(), split=W.SPLITS),
        pooled=lambda wc: expand(P.pooled(), method=W.variant_pooling(config, wc.variant), split=W.SPLITS),
        questions=P.questions(),
        extra=lambda wc: list(W.extra_inputs(config, config["variants"][wc.variant]["model"]).values()),
        # the checkpoint the run starts from: its own pre-training or another variant's (init: TASS-Net from AVST)
        pretrained=lambda wc: W.init_checkpoints(config, wc.variant, wc.seed),
    output:
        metrics=P.run_file("metrics.json"),
        predictions=P.run_file("predictions.csv"),
        train_log=P.run_file("train_log.csv"),
        model=P.run_file("model_best.pt"),
        run_config=P.run_file("run_config.json"),
    params:
        # The whole run spec as JSON: changing any hyperparameter of a variant retrains just that variant.
        spec=lambda wc: json.dumps(W.run_config(config, wc.variant, int(wc.seed)), sort_keys=True),
        out=lambda wc: P.run(wc.experiment, wc.variant, wc.seed),
    priority: lambda wc: W.train_priority(config, wc.variant)
    threads: config["train"]["threads"]
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("train", "{experiment}", "{variant}", "seed{seed}"),
    benchmark:
        P.benchmark("train", "{experiment}", "{variant}", "seed{seed}")
    shell:
        "python -m avqa train --run-config-json {params.spec:q} --out {params.out:q} > {log:q} 2>&1"


rule pretrain:
    """A variant's pre-training run (AVST's audio-visual grounding, `pretrain:` in its variant), whose final weights
    initialise its QA run (the run spec's init_from)."""
    input:
        annotations=expand(P.annotations(), split=W.SPLITS),
        pooled=lambda wc: expand(P.pooled(), method=W.variant_pooling(config, wc.variant), split=W.SPLITS),
        questions=P.questions(),
        extra=lambda wc: list(W.extra_inputs(config, config["variants"][wc.variant]["model"]).values()),
    output:
        model=P.pretrain_file("model_best.pt"),
        metrics=P.pretrain_file("metrics.json"),
        run_config=P.pretrain_file("run_config.json"),
    params:
        spec=lambda wc: json.dumps(W.pretrain_config(config, wc.variant, int(wc.seed)), sort_keys=True),
        out=lambda wc: W.pretrain_dir(config, wc.variant, wc.seed),
    priority: lambda wc: W.train_priority(config, wc.variant, pretrain=True)
    threads: config["train"]["threads"]
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("pretrain", "{experiment}", "{variant}", "seed{seed}"),
    benchmark:
        P.benchmark("pretrain", "{experiment}", "{variant}", "seed{seed}")
    shell:
        "python -m avqa train --run-config-json {params.spec:q} --out {params.out:q} > {log:q} 2>&1"
