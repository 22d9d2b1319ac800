# MUSIC-AVQA JSON (real or synthetic) -> {results_dir}/annotations/{split}.parquet


rule annotations:
    input:
        json=lambda wc: W.annotation_json(config, wc.split),
    output:
        P.annotations(),
    params:
        drop="--drop-conflicting-duplicates" if config["music_avqa"]["drop_conflicting_duplicates"] else "",
    log:
        P.log("annotations", "{split}"),
    shell:
        "python -m avqa annotations --json {input.json:q} --split {wildcards.split} --out {output:q} "
        "{params.drop} > {log:q} 2>&1"
