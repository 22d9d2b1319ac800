# Sharded feature extraction: each registered encoder (avqa/features/layout.py) per shard, question text features.


# Feature and pooling jobs go before any training job: on 2 cores a waiting 2-thread extraction (or a pooling job
# one training run needs) otherwise leaves a core idle behind the last training run (measured: 137 s and 220 s of
# the default run). Training runs then start longest recipe first (W.train_priority, below these values).
# Snakemake starts the ready jobs whose summed priority is largest (its MILP scheduler), so a 2-thread feature job
# must outrank two 1-thread ones: at 1000 each, two pooling jobs won both free cores, and a CLIP ViT shard then
# waited behind 1-thread training runs until the end (measured: +100 s on the default run).
FEATURE_PRIORITY = 1000                              # 1-thread feature jobs (pooling)
WIDE_FEATURE_PRIORITY = 2 * FEATURE_PRIORITY + 1     # 2-thread feature jobs (extraction, question features)


def synthetic_videos(wildcards):
    """The synthetic videos or the stand-ins are a rule output; real videos are just read (no rule makes them)."""
    return W.made_videos(config)


checkpoint shards:
    input:
        annotations=expand(P.annotations(), split=W.SPLITS),
        videos=synthetic_videos,
    output:
        P.shards(),
    params:
        spec=W.shards_spec(config).to_json(),
    log:
        P.log("shards"),
    benchmark:
        P.benchmark("shards")
    shell:
        "python -m avqa shards --annotations {input.annotations:q} --spec {params.spec:q} --out {output:q} "
        "> {log:q} 2>&1"


rule extract:
    input:
        # ancient: a rewritten shards.json never reruns a shard; a shard's name is a digest of its videos, so
        # changed videos make a new shard (avqa/features/shards.py)
        shards=ancient(P.shards()),
        videos=synthetic_videos,
    output:
        store=directory(P.features()),
        failures=P.shard_failures(),
    wildcard_constraints:
        encoder=W.encoder_pattern(),  # the registered encoders writing one store
    params:
        spec=lambda wc: W.extract_spec(config, wc.encoder).to_json(),
    priority: WIDE_FEATURE_PRIORITY
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("extract", "{encoder}", "{shard}"),
    benchmark:
        P.benchmark("extract", "{encoder}", "{shard}")
    shell:
        "python -m avqa extract --spec {params.spec:q} --shards {input.shards:q} --shard {wildcards.shard} "
        "--out {output.store:q} --failures {output.failures:q} --threads {threads} > {log:q} 2>&1"


rule extract_vit:
    """CLIP ViT on one shard (TSPM's features): the frame embeddings and, from the same forward pass, the patch
    tokens merged by ToMe, in two stores."""
    input:
        shards=ancient(P.shards()),
        videos=synthetic_videos,
    output:
        store=directory(P.features(encoder="clip_vit")),
        tokens=directory(P.features(encoder="clip_vit_tokens")),
        failures=P.shard_failures(encoder="clip_vit"),
    params:
        spec=W.extract_spec(config, "clip_vit").to_json(),
    priority: WIDE_FEATURE_PRIORITY
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("extract", "clip_vit", "{shard}"),
    benchmark:
        P.benchmark("extract", "clip_vit", "{shard}")
    shell:
        "python -m avqa extract --spec {params.spec:q} --shards {input.shards:q} --shard {wildcards.shard} "
        "--out {output.store:q} --tokens-out {output.tokens:q} --failures {output.failures:q} "
        "--threads {threads} > {log:q} 2>&1"


def shard_outputs(pattern):
    """All shards' outputs of one kind, known once the `shards` checkpoint has run."""

    def inputs(wildcards):
        names = W.shard_names(checkpoints.shards.get().output[0])
        return [pattern.format(shard=name, **wildcards) for name in names]

    return inputs


rule failures:
    input:
        clip=shard_outputs(P.shard_failures(encoder="clip_rn50")),
        vggish=shard_outputs(P.shard_failures(encoder="vggish")),
    output:
        P.failures(),
    log:
        P.log("failures"),
    benchmark:
        P.benchmark("failures")
    shell:
        "python -m avqa failures {input.clip:q} {input.vggish:q} --out {output:q} > {log:q} 2>&1"


rule questions:
    input:
        annotations=expand(P.annotations(), split=W.SPLITS),
    output:
        directory(P.questions()),
    params:
        spec=W.questions_spec(config).to_json(),
    priority: WIDE_FEATURE_PRIORITY
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("questions"),
    benchmark:
        P.benchmark("questions")
    shell:
        "python -m avqa questions --annotations {input.annotations:q} --spec {params.spec:q} --out {output:q} "
        "> {log:q} 2>&1"


rule questions_vit:
    """CLIP ViT text embeddings of every question and of its declarative prompt (TSPM's text inputs)."""
    input:
        annotations=expand(P.annotations(), split=W.SPLITS),
    output:
        directory(P.questions_vit()),
    params:
        spec=W.questions_vit_spec(config).to_json(),
    priority: WIDE_FEATURE_PRIORITY
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        P.log("questions_vit"),
    benchmark:
        P.benchmark("questions_vit")
    shell:
        "python -m avqa questions-vit --annotations {input.annotations:q} --spec {params.spec:q} --out {output:q} "
        "> {log:q} 2>&1"


rule features:
    """Every feature store: all shards of both encoders, the question features and the failures manifest."""
    input:
        shard_outputs(P.features(encoder="clip_rn50")),
        shard_outputs(P.features(encoder="vggish")),
        P.questions(),
        P.failures(),
