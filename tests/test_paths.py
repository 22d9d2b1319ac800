"""avqa.paths: the results layout other people's scripts rely on (../shared/design.md), defined once."""
from avqa.paths import Layout


def test_the_default_layout_is_the_documented_interface():
    P = Layout()
    assert P.annotations("test") == "results/annotations/test.parquet"
    assert P.features("clip_rn50", "shard000") == "results/features/clip_rn50/shard000.zarr"
    assert P.features("vggish", "shard001") == "results/features/vggish/shard001.zarr"
    assert P.questions() == "results/features/questions.zarr"
    assert P.failures() == "results/features/failures.tsv"
    assert P.shard_failures("shard000", "vggish") == "results/features/failures/shard000.vggish.tsv"
    assert P.pooled("avg", "train") == "results/pooled/avg/train.zarr"
    assert P.run_file("metrics.json", "synthetic", "tass", 0) == "results/runs/synthetic/tass/seed0/metrics.json"
    assert P.table("table1") == "results/table1.csv" and P.table("table1", "md") == "results/table1.md"
    assert P.plot("table2", "curves") == "results/plots/table2_curves.png"
    assert P.attention_plot("tass", 1) == "results/plots/attention/tass_seed1.png"
    assert P.log("extract", "{encoder}", "{shard}") == "results/logs/extract/{encoder}/{shard}.log"


def test_patterns_keep_their_wildcards_and_the_root_is_configurable():
    assert Layout().pooled() == "results/pooled/{method}/{split}.zarr"
    assert Layout().run_file("model_best.pt") == "results/runs/{experiment}/{variant}/seed{seed}/model_best.pt"
    assert Layout.of({"results_dir": "/scratch/avqa/"}).table("table3") == "/scratch/avqa/table3.csv"
    assert Layout.of({}).root == "results"


def test_the_synthetic_dataset_and_pretraining_paths_come_from_the_layout():
    P = Layout()
    assert P.synthetic_videos() == "results/synthetic/videos" and P.synthetic_scenes() == "results/synthetic/scenes.json"
    assert P.synthetic_annotations("val") == "results/synthetic/avqa-val.json"
    assert P.standin_videos() == "results/standins/videos"
    assert P.pretrain_file("model_best.pt", "exp", "avst", 1) == "results/runs/exp/avst/seed1/pretrain/model_best.pt"
    moved = Layout.of({"results_dir": "out", "synthetic": {"out_dir": "/data/syn"}})   # synthetic.out_dir
    assert moved.synthetic_annotations() == "/data/syn/avqa-{split}.json" and moved.table("table1") == "out/table1.csv"
