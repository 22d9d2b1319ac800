# Generated inputs: the synthetic MUSIC-AVQA-format dataset (dataset: synthetic): mp4 videos, the three annotation
# JSONs, scenes; and stand-in clips for every annotated video id (music_avqa.standins: the scale check).
SYN_DIR = W.synthetic_dir(config)


rule synthesize:
    output:
        videos=directory(f"{SYN_DIR}/videos"),
        annotations=expand(f"{SYN_DIR}/avqa-{{split}}.json", split=W.SPLITS),
        scenes=f"{SYN_DIR}/scenes.json",
    params:
        args=W.synthesize_args(config),
    threads: 2
    log:
        P.log("synthesize"),
    benchmark:
        P.benchmark("synthesize")
    shell:
        "python -m avqa synthesize {params.args} --workers {threads} > {log:q} 2>&1"


rule standins:
    """Short stand-in clips, one hard link per annotated video id (workflow/configs/scale.yaml)."""
    input:
        expand(P.annotations(), split=W.SPLITS),
    output:
        directory(P.standins()),
    params:
        args=W.standins_args(config) if W.standins(config) else "",
    log:
        P.log("standins"),
    benchmark:
        P.benchmark("standins")
    shell:
        "python -m avqa standins --annotations {input:q} --out {output:q} {params.args} > {log:q} 2>&1"
