"""Where every output of the pipeline lives: one definition of the results layout, rooted at `results_dir`.

The Snakefile's rules, the run specs (avqa.workflow.run_config) and the tests all take their paths from here, so
the layout cannot drift between them. Every method returns a relative or absolute path string under the root;
a method given Snakemake wildcards ("{split}") returns the pattern, so the rules and the code share one template.

    {root}/synthetic/                          the generated dataset (dataset: synthetic; synthetic.out_dir moves
                                               it): videos/, avqa-{split}.json, scenes.json
    {root}/standins/                           stand-in clips per video id (music_avqa.standins: scale check)
    {root}/annotations/{split}.parquet         one row per question
    {root}/annotations/words.json              the train split's question-word vocabulary
    {root}/annotations/instruments.parquet     per-video instrument labels
    {root}/features/shards.json                the extraction shards
    {root}/features/{encoder}/{shard}.zarr     per-second features of one shard
    {root}/features/failures/{shard}.{encoder}.tsv, {root}/features/failures.tsv
    {root}/features/questions.zarr             question text features (CLIP-RN50)
    {root}/features/questions_clip_vit.zarr    CLIP ViT text features of the questions and their prompts
    {root}/pooled/{method}/{split}.zarr        T1 -> T pooled training features
    {root}/runs/{experiment}/{variant}/seed{seed}/   one training run (metrics.json, model_best.pt, ...)
    {root}/runs/{experiment}/{variant}/seed{seed}/pretrain/   its pre-training run, if the variant has one
    {root}/{table}.csv, {root}/{table}.md      the results tables
    {root}/plots/...                           the report's figures
    {root}/logs/..., {root}/benchmarks/...     per-rule logs and timings
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ROOT = "results"
RUN_FILES = ("metrics.json", "predictions.csv", "train_log.csv", "model_best.pt", "run_config.json")


@dataclass(frozen=True)
class Layout:
    root: str = DEFAULT_ROOT
    synthetic_root: str | None = None             # synthetic.out_dir; None: {root}/synthetic

    @classmethod
    def of(cls, config: dict) -> "Layout":
        """The layout of a run's config (`results_dir`, default `results`; `synthetic.out_dir` if set)."""
        root = str(config.get("results_dir", DEFAULT_ROOT)).rstrip("/") or DEFAULT_ROOT
        return cls(root, (config.get("synthetic") or {}).get("out_dir"))

    def _(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    # --- data and features ------------------------------------------------------------------------------------
    def synthetic(self) -> str:
        return self.synthetic_root or self._("synthetic")

    def synthetic_videos(self) -> str:
        return f"{self.synthetic()}/videos"

    def synthetic_annotations(self, split: str = "{split}") -> str:
        """The generated dataset's annotation JSON of a split, in MUSIC-AVQA's format."""
        return f"{self.synthetic()}/avqa-{split}.json"

    def synthetic_scenes(self) -> str:
        """What each generated video holds (its instruments: the source of the per-video labels)."""
        return f"{self.synthetic()}/scenes.json"

    def standins(self) -> str:
        """Stand-in clips for every annotated video id (bases/, videos/{video_id}.mp4)."""
        return self._("standins")

    def standin_videos(self) -> str:
        return f"{self.standins()}/videos"

    def annotations(self, split: str = "{split}") -> str:
        return self._("annotations", f"{split}.parquet")

    def words(self) -> str:
        """The train split's question-word vocabulary (AVST's question input)."""
        return self._("annotations", "words.json")

    def instruments(self) -> str:
        """Per-video instrument labels (SaSR-Net's source labels)."""
        return self._("annotations", "instruments.parquet")

    def shards(self) -> str:
        return self._("features", "shards.json")

    def features(self, encoder: str = "{encoder}", shard: str = "{shard}") -> str:
        return self._("features", encoder, f"{shard}.zarr")

    def shard_failures(self, shard: str = "{shard}", encoder: str = "{encoder}") -> str:
        return self._("features", "failures", f"{shard}.{encoder}.tsv")

    def failures(self) -> str:
        return self._("features", "failures.tsv")

    def questions(self) -> str:
        return self._("features", "questions.zarr")

    def questions_vit(self) -> str:
        """CLIP ViT text embeddings of every question and of its declarative prompt (TSPM)."""
        return self._("features", "questions_clip_vit.zarr")

    def pooled(self, method: str = "{method}", split: str = "{split}") -> str:
        return self._("pooled", method, f"{split}.zarr")

    # --- runs, tables, figures --------------------------------------------------------------------------------
    def run(self, experiment: str = "{experiment}", variant: str = "{variant}", seed: int | str = "{seed}") -> str:
        return self._("runs", experiment, variant, f"seed{seed}")

    def run_file(self, name: str, experiment: str = "{experiment}", variant: str = "{variant}",
                 seed: int | str = "{seed}") -> str:
        return f"{self.run(experiment, variant, seed)}/{name}"

    def pretrain(self, experiment: str = "{experiment}", variant: str = "{variant}", seed: int | str = "{seed}") -> str:
        """A variant's pre-training run (AVST's grounding), inside its QA run's folder."""
        return f"{self.run(experiment, variant, seed)}/pretrain"

    def pretrain_file(self, name: str, experiment: str = "{experiment}", variant: str = "{variant}",
                      seed: int | str = "{seed}") -> str:
        return f"{self.pretrain(experiment, variant, seed)}/{name}"

    def table(self, table: str = "{table}", suffix: str = "csv") -> str:
        return self._(f"{table}.{suffix}")

    def table_stats(self, table: str = "{table}") -> str:
        """The long statistics of a table: every cell's interval, every paired comparison (reporting.table_stats)."""
        return self._(f"{table}_stats.csv")

    def plot(self, table: str = "{table}", kind: str = "accuracy") -> str:
        return self._("plots", f"{table}_{kind}.png")

    def attention_plot(self, variant: str = "{variant}", seed: int | str = "{seed}") -> str:
        return self._("plots", "attention", f"{variant}_seed{seed}.png")

    # --- bookkeeping ------------------------------------------------------------------------------------------
    def log(self, *parts: str) -> str:
        """A rule's log: log("extract", "{encoder}", "{shard}") -> {root}/logs/extract/{encoder}/{shard}.log."""
        *dirs, name = parts
        return self._("logs", *dirs, f"{name}.log")

    def benchmark(self, *parts: str) -> str:
        *dirs, name = parts
        return self._("benchmarks", *dirs, f"{name}.tsv")
