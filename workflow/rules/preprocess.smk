# Parameter-free temporal pooling T1 -> T (avg) and the strided "w/o preprocessing" variant, one store per split.


rule pool:
    input:
        clip=shard_outputs("results/features/clip_rn50/{shard}.zarr"),
        vggish=shard_outputs("results/features/vggish/{shard}.zarr"),
        annotations="results/annotations/{split}.parquet",
    output:
        directory("results/pooled/{method}/{split}.zarr"),
    params:
        T=config["preprocess"]["T"],
    log:
        "results/logs/pool/{method}/{split}.log",
    shell:
        "python -m avqa pool --clip {input.clip} --vggish {input.vggish} --annotations {input.annotations} "
        "--split {wildcards.split} --T {params.T} --method {wildcards.method} --out {output} 2> {log}"
