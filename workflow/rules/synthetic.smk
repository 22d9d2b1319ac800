# Generated inputs: the synthetic MUSIC-AVQA-format dataset (dataset: synthetic): mp4 videos, the three annotation
# JSONs, scenes; and stand-in clips for every annotated video id (music_avqa.standins: the scale check).
rule synthesize:
    output:
        videos=directory(P.synthetic_videos()),
        annotations=expand(P.synthetic_annotations(), split=W.SPLITS),
        scenes=P.synthetic_scenes(),
    params:
        out_dir=P.synthetic(),
        spec=W.synthesize_spec(config).to_json(),
    threads: 2
    log:
        P.log("synthesize"),
    benchmark:
        P.benchmark("synthesize")
    shell:
        "python -m avqa synthesize --out-dir {params.out_dir:q} --spec {params.spec:q} --workers {threads} "
        "> {log:q} 2>&1"


rule standins:
    """Short stand-in clips, one hard link per annotated video id (workflow/configs/scale.yaml)."""
    input:
        expand(P.annotations(), split=W.SPLITS),
    output:
        directory(P.standins()),
    params:
        spec=lambda wc: W.standins_spec(config).to_json(),
    log:
        P.log("standins"),
    benchmark:
        P.benchmark("standins")
    shell:
        "python -m avqa standins --annotations {input:q} --out {output:q} --spec {params.spec:q} > {log:q} 2>&1"
