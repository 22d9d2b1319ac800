"""Which questions to ask about each scene, chosen so that the question alone predicts little.

Every (template, values) a scene supports is a candidate (its answer computed by answers.answer). Per split, a
greedy balancer picks each video's questions one at a time (a template at most once per video while others
remain), minimising
    cost = (times the template was asked) + 2 * (excess of the answer among the template's answers so far)
           + 1 * (excess of the answer among the answers to the same template and values so far)
           + 2 * (excess of the answer among the template's answers with the same picture answer), Audio only
where excess = count - mean count of the answers seen. Each video offers several answers per template (yes for
one value, no for another; different positions, counts), so this drives every template's answers, and the
answers given the exact values, towards uniform: the question alone predicts little.

The picture answer of a question is its answer on the scene as the picture shows it: every visible object
sounding all the time, nothing offscreen (`picture_scene`). Without the last term most Audio questions were
answered by the picture (a visible instrument is usually a sounding one): TASS-Net without its audio input
still got 65% of them right against 68% with it. Balancing the answers within each picture answer leaves the
picture little to say about them, so the audio has to answer Audio questions.
"""
from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from avqa.data.synthetic.answers import ORDINALS, answer
from avqa.data.synthetic.scene import POSITIONS, instrument_sources
from avqa.vocab import TEMPLATES

TEMPLATE_TYPE: dict[str, tuple[str, str]] = {t: gt for gt, group in TEMPLATES.items() for t in group}
_PLACEHOLDER = re.compile(r"<[A-Za-z]+>")
POOLS: dict[str, tuple[str, ...]] = {
    "<LR>": POSITIONS, "<FL>": ("first", "last"), "<LL>": ("loudest", "lowest"), "<TH>": ORDINALS,
    "<BA>": ("before", "after"), "<LRer>": ("leftest", "rightest"),
}
ANSWER_WEIGHT = 2.0      # how much an over-represented answer costs, in units of "asked once more"
VALUE_WEIGHT = 1.0       # the same for the answer given the exact values
PICTURE_WEIGHT = 2.0     # the same for an Audio question's answer given its picture answer
MAX_SHARE = 0.58         # no answer above this share of its template's answers (after MIN_COUNT of them)
MIN_COUNT = 20
JITTER = 0.5             # random tie-breaking


@dataclass(frozen=True)
class Question:
    template: str
    values: tuple[str, ...]
    answer: str
    picture_answer: str | None = None   # the answer on picture_scene (None: ill-posed there)

    @property
    def group_type(self) -> tuple[str, str]:
        return TEMPLATE_TYPE[self.template]


def placeholders(template: str) -> list[str]:
    return _PLACEHOLDER.findall(template)


def _object_pairs(scene: dict, instruments: list[str]) -> list[tuple[str, str]]:
    """Ordered pairs of distinct types with at least one in the scene (both-absent pairs are trivially "no")."""
    present = {s["instrument"] for s in instrument_sources(scene)}
    return [(x, y) for x, y in itertools.permutations(instruments, 2) if x in present or y in present]


def value_space(scene: dict, template: str, instruments: list[str]) -> list[tuple[str, ...]]:
    """Every values tuple worth trying for this template on this scene (answer() filters the ill-posed)."""
    slots = placeholders(template)
    if slots.count("<Object>") == 2 and len(slots) == 4:  # <Object> on the <LR> ... <Object> on the <LR>
        return [(a["instrument"], a["position"], b["instrument"], b["position"])
                for a, b in itertools.permutations(scene["objects"], 2)]
    if slots == ["<Object>", "<Object>"]:
        return _object_pairs(scene, instruments)
    pools = [tuple(instruments) if s == "<Object>" else POOLS[s] for s in slots]
    return list(itertools.product(*pools))


def picture_scene(scene: dict) -> dict:
    """The scene as its picture shows it: every visible object sounding every second, nothing offscreen."""
    objects = [dict(o, sounding=[1] * len(o["sounding"])) for o in scene["objects"]]
    return dict(scene, objects=objects, offscreen=[])


def candidates(scene: dict, instruments: list[str]) -> list[Question]:
    """All well-posed questions about a scene (Audio ones with their picture answer)."""
    found = []
    picture = picture_scene(scene)
    for template in TEMPLATE_TYPE:
        audio = TEMPLATE_TYPE[template][0] == "Audio"
        for values in value_space(scene, template, instruments):
            word = answer(scene, template, values)
            if word is not None:
                shown = answer(picture, template, values) if audio else None
                found.append(Question(template, tuple(values), word, shown))
    return found


def _excess(counts: Counter, word: str) -> float:
    """How far `word` is above the mean count of the answers seen so far (itself included)."""
    n_answers = len(counts) + (word not in counts)
    return counts[word] - sum(counts.values()) / n_answers


@dataclass
class Balancer:
    """Running counts over one split; `pick` chooses a video's questions."""
    rng: np.random.Generator
    per_template: Counter = field(default_factory=Counter)
    per_answer: defaultdict = field(default_factory=lambda: defaultdict(Counter))   # template -> answers
    per_values: defaultdict = field(default_factory=lambda: defaultdict(Counter))   # (template, values) -> answers
    per_picture: defaultdict = field(default_factory=lambda: defaultdict(Counter))  # (template, picture) -> answers

    def cost(self, q: Question) -> float:
        cost = (self.per_template[q.template]
                + ANSWER_WEIGHT * _excess(self.per_answer[q.template], q.answer)
                + VALUE_WEIGHT * _excess(self.per_values[(q.template, q.values)], q.answer))
        if q.group_type[0] == "Audio":
            cost += PICTURE_WEIGHT * _excess(self.per_picture[(q.template, q.picture_answer)], q.answer)
        return cost

    def add(self, q: Question) -> None:
        self.per_template[q.template] += 1
        self.per_answer[q.template][q.answer] += 1
        self.per_values[(q.template, q.values)][q.answer] += 1
        if q.group_type[0] == "Audio":
            self.per_picture[(q.template, q.picture_answer)][q.answer] += 1

    def allowed(self, q: Question) -> bool:
        """False if asking q would give its answer more than MAX_SHARE of its template's answers (checked once
        the template has MIN_COUNT answers): a template whose other answers the scenes rarely offer is then
        asked less often instead of being answerable from the question alone."""
        counts = self.per_answer[q.template]
        total = sum(counts.values()) + 1
        return total <= MIN_COUNT or (counts[q.answer] + 1) / total <= MAX_SHARE

    def pick(self, pool: list[Question], n: int) -> list[Question]:
        """Up to n questions from a video's candidates, one per template while templates last."""
        chosen: list[Question] = []
        pool = list(pool)
        while len(chosen) < n:
            pool = [q for q in pool if self.allowed(q)]
            if not pool:
                break
            used = {q.template for q in chosen}
            fresh = [q for q in pool if q.template not in used] or pool
            jitter = self.rng.random(len(fresh)) * JITTER
            best = fresh[int(np.argmin([self.cost(q) + j for q, j in zip(fresh, jitter)]))]
            chosen.append(best)
            self.add(best)
            pool = [q for q in pool if (q.template, q.values) != (best.template, best.values)]
        return chosen


def record(video_id: str, question_id: int, q: Question) -> dict:
    """One annotation record in the exact MUSIC-AVQA format (7 keys, JSON-encoded strings, `anser`)."""
    return {
        "video_id": video_id,
        "question_id": question_id,
        "type": json.dumps(list(q.group_type)),
        "question_content": q.template,
        "templ_values": json.dumps(list(q.values)),
        "question_deleted": 0,
        "anser": q.answer,
    }
