# Parameter-free temporal pooling T1 -> T (avg), the strided "w/o preprocessing" variant, or every second (none),
# of one visual encoder's features with VGGish, one store per split: results/pooled/{method}/{split}.zarr with
# {method} = avg | stride | none, suffixed -{encoder} for a visual encoder other than CLIP-RN50.


def pool_inputs(kind):
    """The shard stores a pooled store reads: its visual encoder's, its tokens' (if any), VGGish's."""

    def inputs(wildcards):
        visual, tokens = W.visual_stores(wildcards.method)
        encoder = {"visual": visual, "tokens": tokens, "vggish": "vggish"}[kind]
        return shard_outputs(P.features(encoder=encoder))(wildcards) if encoder else []

    return inputs


rule pool:
    input:
        visual=pool_inputs("visual"),
        tokens=pool_inputs("tokens"),
        vggish=pool_inputs("vggish"),
        annotations=P.annotations(),
    output:
        directory(P.pooled()),
    params:
        spec=lambda wc: W.pool_spec(config, wc.method).to_json(),
        tokens=lambda wc, input: f"--tokens {' '.join(map(shlex.quote, input.tokens))}" if input.tokens else "",
    priority: FEATURE_PRIORITY
    log:
        P.log("pool", "{method}", "{split}"),
    benchmark:
        P.benchmark("pool", "{method}", "{split}")
    shell:
        "python -m avqa pool --visual {input.visual:q} {params.tokens} --vggish {input.vggish:q} "
        "--annotations {input.annotations:q} --split {wildcards.split} --spec {params.spec:q} --out {output:q} "
        "> {log:q} 2>&1"
