"""How much the question alone gives away: answer distributions and the question-only (prior) accuracy.

The best a question-only model can do is predict, for each (template, templ_values), the answer most frequent in
training (falling back to the template's most frequent answer for values never seen in training).
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict

from avqa.vocab import TYPE_KEY


def _key(record: dict) -> tuple[str, str]:
    return record["question_content"], record["templ_values"]


def answer_distribution(records: list[dict]) -> dict[str, Counter]:
    """template -> Counter of answers."""
    dist: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        dist[r["question_content"]][r["anser"]] += 1
    return dict(dist)


def _majority(counter: Counter) -> str:
    # Ties broken by the answer word so that the number is deterministic.
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def question_only_accuracy(train: list[dict], test: list[dict]) -> dict[str, float]:
    """Percent correct on `test` of the per-(template, values) training majority, overall and per type key."""
    by_values: dict[tuple, Counter] = defaultdict(Counter)
    by_template: dict[str, Counter] = defaultdict(Counter)
    for r in train:
        by_values[_key(r)][r["anser"]] += 1
        by_template[r["question_content"]][r["anser"]] += 1
    correct: Counter = Counter()
    count: Counter = Counter()
    for r in test:
        if _key(r) in by_values:
            guess = _majority(by_values[_key(r)])
        elif r["question_content"] in by_template:
            guess = _majority(by_template[r["question_content"]])
        else:
            guess = None
        type_key = TYPE_KEY[tuple(json.loads(r["type"]))]
        for key in ("overall", type_key):
            count[key] += 1
            correct[key] += guess == r["anser"]
    return {key: 100.0 * correct[key] / count[key] for key in count}
