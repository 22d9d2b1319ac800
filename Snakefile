# avqa: MUSIC-AVQA audio-visual question answering as a Snakemake DAG (see README.md and ../shared/design.md).
# Rules are thin: inputs, outputs, params, resources, log; the work is `python -m avqa <command>`.
from snakemake.utils import min_version, validate

import shlex

from avqa import workflow as W

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
W.check_config(config)
P = W.Layout.of(config)  # every output path (avqa/paths.py), under results_dir


report: "workflow/report/workflow.rst"


wildcard_constraints:
    split="train|val|test",
    encoder="|".join(W.ENCODERS),
    shard=r"shard-[0-9a-f]+",
    method=W.pooled_key_pattern(),
    seed=r"\d+",
    experiment=W.experiment_pattern(config),
    variant=r"[A-Za-z0-9_.-]+",
    table=r"table\d+",


include: "workflow/rules/synthetic.smk"
include: "workflow/rules/annotations.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


rule all:
    """Every configured table and the report's figures (then: snakemake --report report.html)."""
    default_target: True
    input:
        W.all_targets(config),
