# The synthetic MUSIC-AVQA-format dataset (dataset: synthetic): mp4 videos, the three annotation JSONs, scenes.
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
