# Sharded feature extraction: decode at 1 fps / 16 kHz, frozen CLIP-RN50 maps and VGGish per shard, question text.


def synthetic_videos(wildcards):
    """The synthetic videos folder is a rule output; real videos are just read (no rule makes them)."""
    return [W.videos_dir(config)] if config["dataset"] == "synthetic" else []


checkpoint shards:
    input:
        annotations=expand("results/annotations/{split}.parquet", split=W.SPLITS),
        videos=synthetic_videos,
    output:
        "results/features/shards.json",
    params:
        videos_dir=W.videos_dir(config),
        per_shard=config["features"]["videos_per_shard"],
    log:
        "results/logs/shards.log",
    shell:
        "python -m avqa shards --annotations {input.annotations} --videos-dir {params.videos_dir:q} "
        "--videos-per-shard {params.per_shard} --out {output} 2> {log}"


rule extract:
    input:
        shards="results/features/shards.json",
        videos=synthetic_videos,
    output:
        store=directory("results/features/{encoder}/{shard}.zarr"),
        failures="results/features/failures/{shard}.{encoder}.tsv",
    params:
        args=lambda wc: W.extract_args(config, wc.encoder),
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        "results/logs/extract/{encoder}/{shard}.log",
    benchmark:
        "results/benchmarks/extract/{encoder}/{shard}.tsv"
    shell:
        "python -m avqa extract --encoder {wildcards.encoder} --shards {input.shards} --shard {wildcards.shard} "
        "--out {output.store} --failures {output.failures} {params.args} --threads {threads} 2> {log}"


def shard_outputs(pattern):
    """All shards' outputs of one kind, known once the `shards` checkpoint has run."""

    def inputs(wildcards):
        names = W.shard_names(checkpoints.shards.get().output[0])
        return [pattern.format(shard=name, **wildcards) for name in names]

    return inputs


rule failures:
    input:
        clip=shard_outputs("results/features/failures/{shard}.clip_rn50.tsv"),
        vggish=shard_outputs("results/features/failures/{shard}.vggish.tsv"),
    output:
        "results/features/failures.tsv",
    log:
        "results/logs/failures.log",
    shell:
        "python -m avqa failures {input.clip} {input.vggish} --out {output} 2> {log}"


rule questions:
    input:
        annotations=expand("results/annotations/{split}.parquet", split=W.SPLITS),
    output:
        directory("results/features/questions.zarr"),
    params:
        args=W.questions_args(config),
    threads: 2
    resources:
        gpu=W.gpu_jobs(config),
    log:
        "results/logs/questions.log",
    shell:
        "python -m avqa questions --annotations {input.annotations} --out {output} {params.args} 2> {log}"


rule features:
    """Every feature store: all shards of both encoders, the question features and the failures manifest."""
    input:
        shard_outputs("results/features/clip_rn50/{shard}.zarr"),
        shard_outputs("results/features/vggish/{shard}.zarr"),
        "results/features/questions.zarr",
        "results/features/failures.tsv",
