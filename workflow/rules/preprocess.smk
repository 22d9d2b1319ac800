# Parameter-free temporal pooling T1 -> T (avg) and the strided "w/o preprocessing" variant, one store per split.


rule pool:
    input:
        clip=shard_outputs(P.features(encoder="clip_rn50")),
        vggish=shard_outputs(P.features(encoder="vggish")),
        annotations=P.annotations(),
    output:
        directory(P.pooled()),
    params:
        T=config["preprocess"]["T"],
    log:
        P.log("pool", "{method}", "{split}"),
    shell:
        "python -m avqa pool --clip {input.clip:q} --vggish {input.vggish:q} --annotations {input.annotations:q} "
        "--split {wildcards.split} --T {params.T} --method {wildcards.method} --out {output:q} > {log:q} 2>&1"
