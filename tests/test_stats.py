"""avqa.reporting.stats: bootstrap intervals, paired differences, the exact McNemar / sign test, Holm, and the
sampling interval of a published cell."""
import numpy as np
import pytest

from avqa.reporting import stats

KEYS = np.array(stats.TYPE_KEYS)


def type_keys(n_per_type: int) -> np.ndarray:
    return np.repeat(KEYS, n_per_type)


def test_mcnemar_by_hand():
    # 10 questions: A right & B wrong on 6 (b), A wrong & B right on 1 (c), 3 concordant.
    a = np.array([1, 1, 1, 1, 1, 1, 0, 1, 0, 1])
    b = np.array([0, 0, 0, 0, 0, 0, 1, 1, 0, 1])
    n_b, n_c, p = stats.sign_test(a, b)
    assert (n_b, n_c) == (6, 1)
    # exact two-sided: 2 * P(X <= 1), X ~ Binomial(7, 1/2) = 2 * (1 + 7) / 128
    assert p == pytest.approx(2 * 8 / 128)
    from statsmodels.stats.contingency_tables import mcnemar
    assert p == pytest.approx(mcnemar([[2, 6], [1, 1]], exact=True).pvalue)


def test_sign_test_without_discordant_questions():
    a = np.array([1, 0, 1])
    assert stats.sign_test(a, a) == (0, 0, 1.0)


def test_several_seeds_compare_mean_correctness():
    # Two seeds: question 0 1/2 vs 0 (A higher), question 1 1 vs 1/2 (A higher), question 2 equal.
    a = stats.question_scores([[1, 1, 0], [0, 1, 0]])
    b = stats.question_scores([[0, 1, 0], [0, 0, 0]])
    assert stats.sign_test(a, b)[:2] == (2, 0)


def test_paired_difference_by_hand():
    keys = type_keys(20)
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, keys.size)
    b = rng.integers(0, 2, keys.size)
    boot = stats.Bootstrap(keys, n_resamples=2000, seed=0)
    sa, sb = boot.type_sums(a), boot.type_sums(b)
    diff = boot.difference(sa, sb, stats.ALL)
    assert diff.estimate == pytest.approx(100 * (a.mean() - b.mean()))
    assert diff.low < diff.estimate < diff.high
    av = keys == "AV-Temp"
    cell = boot.difference(sa, sb, "AV-Temp")
    assert cell.estimate == pytest.approx(100 * (a[av].mean() - b[av].mean()))
    assert cell.n_questions == 20
    # A row against itself differs by exactly 0 under every resample.
    same = boot.difference(sa, sa, stats.ALL)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)


def test_group_cells_are_micro_averages_and_counts_are_fixed():
    keys = np.concatenate([np.repeat(["A-Count"], 30), np.repeat(["A-Comp"], 10), np.repeat(["V-Loc"], 5)])
    scores = np.concatenate([np.ones(30), np.zeros(10), np.ones(5)])
    boot = stats.Bootstrap(keys, n_resamples=500, seed=0)
    sums = boot.type_sums(scores)
    audio = boot.interval(sums, "Audio")
    assert audio.estimate == pytest.approx(75.0) and audio.n_questions == 40
    # Stratified by type: every resample keeps 30 A-Count (all right) and 10 A-Comp (all wrong) questions.
    assert audio.low == pytest.approx(75.0) and audio.high == pytest.approx(75.0)
    assert boot.interval(sums, "AV-Temp") is None


def test_same_seed_same_interval_other_seed_close():
    keys = type_keys(100)
    correct = np.random.default_rng(3).random(keys.size) < 0.7
    one = stats.Bootstrap(keys, n_resamples=1000, seed=5)
    two = stats.Bootstrap(keys, n_resamples=1000, seed=5)
    assert one.interval(one.type_sums(correct), stats.ALL) == two.interval(two.type_sums(correct), stats.ALL)


@pytest.mark.parametrize("p_true", [0.55, 0.8])
def test_interval_coverage_on_simulated_questions(p_true):
    """500 simulated runs on 360 Bernoulli questions: the 95% interval covers the true accuracy 93-97% of the time."""
    keys = type_keys(40)
    rng = np.random.default_rng(11)
    covered = 0
    boot = stats.Bootstrap(keys, n_resamples=1000, seed=0)
    for _ in range(500):
        correct = rng.random(keys.size) < p_true
        interval = boot.interval(boot.type_sums(correct), stats.ALL)
        covered += interval.low <= 100 * p_true <= interval.high
    assert 0.93 <= covered / 500 <= 0.97


def test_default_B_is_stable_to_005_points():
    """At B = 10,000 the interval ends of All on a 9,129-question test set move < 0.05 points between seeds."""
    rng = np.random.default_rng(0)
    keys = rng.choice(KEYS, 9129)
    correct = rng.random(9129) < 0.77
    ends = []
    for seed in (0, 1):
        boot = stats.Bootstrap(keys, seed=seed)
        interval = boot.interval(boot.type_sums(correct), stats.ALL)
        ends.append((interval.low, interval.high))
    assert abs(ends[0][0] - ends[1][0]) < 0.05 and abs(ends[0][1] - ends[1][1]) < 0.05
    # and the interval has the binomial width: about +-1.96 * sqrt(p (1-p) / n)
    half = 100 * 1.96 * np.sqrt(0.77 * 0.23 / 9129)
    assert ends[0][1] - ends[0][0] == pytest.approx(2 * half, rel=0.1)


def test_holm_matches_step_down_rule():
    p = [0.01, 0.04, 0.03]
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 with running max: 0.03, 0.06, 0.06
    assert stats.holm(p) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([]) == []


def test_binomial_interval_of_a_published_cell():
    low, high = stats.binomial_interval(77.0, 9129)
    assert low < 77.0 < high
    assert high - low == pytest.approx(2 * 100 * 1.96 * np.sqrt(0.77 * 0.23 / 9129), rel=0.05)
    with pytest.raises(ValueError, match="positive question count"):
        stats.binomial_interval(50.0, 0)


def test_unknown_type_key_is_an_error():
    with pytest.raises(ValueError, match="unknown question type keys"):
        stats.Bootstrap(["A-Count", "Z-Thing"], n_resamples=10)
    with pytest.raises(ValueError, match="unknown cell"):
        stats.cell_types("nonsense")


# --- tables' statistics from the runs' predictions (avqa.reporting.table_stats) ------------------------------------
def _rows(tmp_path):
    from run_fixtures import make_run

    from avqa.reporting.tables import TABLES, build_table, group_runs

    runs = [make_run(tmp_path, "tass", 0, 3), *(make_run(tmp_path, "three", s, k, label="three")
                                               for s, k in ((0, 1), (1, 2), (2, 3)))]
    return build_table(TABLES["table4"], group_runs([str(r) for r in runs]), full="tass", n_resamples=500), runs


def test_a_row_with_one_seed_and_a_row_with_three(tmp_path):
    table, _ = _rows(tmp_path)
    rows = table[table["source"] == "this run"].set_index("variant")
    assert rows.loc["tass", "n_seeds"] == 1 and rows.loc["three", "n_seeds"] == 3
    assert rows.loc["three", "All_Avg"] == 50.0 and rows.loc["three", "All_Avg_std"] == 25.0
    # per question the three seeds' mean is 1, 2/3, 1/3, 0 against 1, 1, 1, 0: behind on 18 questions, never ahead
    assert rows.loc["three", "All_diff"] == -25.0 and rows.loc["three", "All_diff_high"] < 0
    stats = table.attrs["stats"]
    three = stats[(stats["kind"] == "difference") & (stats["column"] == "All_Avg")].iloc[0]
    assert (three["b"], three["c"]) == (0, 18) and three["seeds"] == "0 1 2"
    assert three["p"] == pytest.approx(2 / 2 ** 18)


def test_same_inputs_same_intervals(tmp_path):
    first, runs = _rows(tmp_path / "a")
    second, _ = _rows(tmp_path / "b")
    columns = ["estimate", "low", "high", "p"]
    assert first.attrs["stats"][columns].equals(second.attrs["stats"][columns])


def test_a_predictions_file_that_misses_a_question_is_an_error_naming_it(tmp_path):
    import pandas as pd

    from avqa.reporting.tables import TABLES, build_table, group_runs
    from run_fixtures import make_run

    runs = [make_run(tmp_path, "tass", 0, 3), make_run(tmp_path, "gap", 0, 2, label="gap")]
    path = runs[1] / "predictions.csv"
    pd.read_csv(path).query("question_id != 7").to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"35 questions, .* but .*metrics.json counts 36"):
        build_table(TABLES["table4"], group_runs([str(r) for r in runs]), full="tass", n_resamples=100)
    # the same count but another question: the rows must answer the same questions
    frame = pd.read_csv(runs[0] / "predictions.csv")
    frame.loc[frame["question_id"] == 7, "question_id"] = 99
    frame.to_csv(runs[1] / "predictions.csv", index=False)
    metrics = __import__("json").loads((runs[0] / "metrics.json").read_text())
    (runs[1] / "metrics.json").write_text(__import__("json").dumps(dict(metrics, variant="gap", label="gap")))
    with pytest.raises(ValueError, match="question_id 7 is in .* but not in"):
        build_table(TABLES["table4"], group_runs([str(r) for r in runs]), full="tass", n_resamples=100)
