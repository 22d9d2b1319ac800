# MUSIC-AVQA JSON (real or synthetic) -> results/annotations/{split}.parquet


rule annotations:
    input:
        json=lambda wc: W.annotation_json(config, wc.split),
    output:
        "results/annotations/{split}.parquet",
    params:
        drop="--drop-conflicting-duplicates" if config["music_avqa"]["drop_conflicting_duplicates"] else "",
    log:
        "results/logs/annotations/{split}.log",
    shell:
        "python -m avqa annotations --json {input.json:q} --split {wildcards.split} --out {output} "
        "{params.drop} 2> {log}"
