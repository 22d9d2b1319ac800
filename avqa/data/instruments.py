"""Per-video instrument labels (which of the 22 categories are heard / seen), the targets of SaSR-Net's L_source.

One table, results/annotations/instruments.parquet, one row per video:
    video_id (str), audio (list of instrument names), visual (list), source ("scenes" | "annotations")
Names are avqa.vocab.INSTRUMENTS entries, listed in that order; `multi_hot` turns rows into (V, 22) arrays,
`source_targets` into L_source's targets with a per-video, per-modality mask of the labels that may be taught.

Which labels L_source may teach (`source_targets`, docs/sasr-net.md): a video's modality is labelled (mask 1)
when its row comes from the synthetic scenes (exact: an empty list there is a true "none"), or when the
annotation derivation found positive evidence for it: at least one instrument in that modality's list (after
vetoes), i.e. at least one of the video's train questions presupposes or confirms a named instrument. A video
whose questions name no instrument, or name one only in a negative answer ("Is there a X sound?" -> "no"), has
no positive evidence; its empty list would teach "no instrument here", which the annotations do not say, so
its mask is 0. A video without a row (the labels come from the train split's questions: val and test videos)
also has mask 0. Evaluation reads no labels.

Synthetic dataset (`labels_from_scenes`): exact, from the generator's scenes.json ({"meta", "videos": {id:
scene}}, see avqa.data.synthetic.scene): visual = the visible objects' instruments; audio = every instrument,
visible object or offscreen, that sounds for at least one second. The voiceover is not an instrument.

MUSIC-AVQA (`labels_from_annotations`): the authors never published their per-video labels (SaSR-Net's public
code reads an "items" field of an unreleased train file, built from PANNs audio tags and the questions), so
they are derived from the annotations: the instrument words in each question's <Object> values and in its
answer, for every question on the video. Rule: positive evidence only, per template (`RULES`):
  - A word counts when the question presupposes that instrument (a comparison "Is the X louder than the Y?"
    is only asked about two heard instruments) or when the answer confirms it ("Is there a X sound?" only
    with "yes"; "How many X are in the entire video?" only with a count other than "zero"). A "no" never
    counts: "Is there a X sound?" -> "no" shows X is absent, and "Are there X and Y ...?" -> "no" does not
    say which one is missing.
  - Audio evidence: the Audio templates, "sounds", "comes in", "makes sounds", "playing" (answered yes),
    "sounding X" (count > 0), the audio-visual comparisons. Visual evidence: the Visual templates, "in the
    video", positions (on the <LR>, the <LRer> instrument), answers to "what kind of instrument".
  - Explicit negatives ("Is there a X sound?" -> no: not heard; "Is there a X in the entire video?" -> no and
    "How many X are in the entire video?" -> zero: not seen) only veto a positive of the same modality on the
    same video (a contradiction within the annotations; counted and reported, see `derivation_report`).
The batch contract feeds one label set for both modalities on MUSIC-AVQA, as the paper does (one p_C in
L_source): by default audio = visual = the union of both kinds of evidence; `split_modalities=True` keeps
the audio and visual evidence apart.
Measured on json_update (tests/test_instruments.py): every instrument word maps onto INSTRUMENTS as spelled
(none unmapped). Videos with at least one label: val 2,250 of 3,815 (59%), test 4,132 of 6,399 (65%),
~1.5 labels per labelled video; split modalities: audio val 1,491 / test 2,854, visual 1,451 / 2,770 videos.
Coverage grows with the questions per video (val+test pooled: 55% of videos with one question, 81% with two,
91% with three or more). The two files share 2,296 videos; pooled, one positive is vetoed (video 00008152:
"Is there a banjo sound?" -> no).
"""
from __future__ import annotations

import argparse
import json
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from avqa.atomic import atomic_path
from avqa.data.annotations import load_annotations
from avqa.vocab import INSTRUMENTS, PLACEHOLDERS, TEMPLATES

logger = logging.getLogger(__name__)

COLUMNS = ("video_id", "audio", "visual", "source")
SOURCES = ("scenes", "annotations")
MODALITIES = ("audio", "visual")
INSTRUMENT_INDEX = {name: i for i, name in enumerate(INSTRUMENTS)}
_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))


class InstrumentLabelError(ValueError):
    """A scenes.json, annotation file or label table that cannot be read; the message names file and record."""


# --- the evidence rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Clause:
    """One piece of evidence a question gives: the instrument word(s) in `slot` ("object": every <Object>
    value, "answer": the answer) are present in `modality` when the answer satisfies `when`
    ("always" (presupposed by the question), "yes", "nonzero" (a count other than "zero"), "no", "zero")."""
    slot: str
    modality: str
    when: str = "always"


def _clauses(*items: tuple) -> tuple[Clause, ...]:
    return tuple(Clause(*item) for item in items)


A, V = "audio", "visual"
# template (exactly as in vocab.TEMPLATES) -> positive evidence. Templates that name no instrument are absent.
RULES: dict[str, tuple[Clause, ...]] = {
    # Audio Counting: only a "yes" confirms the sound.
    "Is there a <Object> sound?": _clauses(("object", A, "yes")),
    "Are there <Object> and <Object> sound? ": _clauses(("object", A, "yes")),
    # Audio Comparative: comparing two sounds presupposes both are heard, whatever the answer.
    "Is the <Object> louder than the <Object>?": _clauses(("object", A)),
    "Is the <Object> more rhythmic than the <Object>?": _clauses(("object", A)),
    "Is the <Object> playing longer than the <Object>?": _clauses(("object", A)),
    # Visual Counting
    "Is there a <Object> in the entire video?": _clauses(("object", V, "yes")),
    "Are there <Object> and <Object> instruments in the video?": _clauses(("object", V, "yes")),
    "How many <Object> are in the entire video?": _clauses(("object", V, "nonzero")),
    # Visual Location: the answer is the instrument seen (at a position); the reference object is seen too.
    "What kind of musical instrument is it?": _clauses(("answer", V)),
    "What kind of instrument is the <LRer> instrument? ": _clauses(("answer", V)),
    "What is the instrument on the <LR> of <Object>?": _clauses(("object", V), ("answer", V)),
    # Audio-Visual Existential: "the X in the video" is seen; "always playing" -> yes: it sounds.
    "Is the <Object> in the video always playing?": _clauses(("object", V), ("object", A, "yes")),
    # Audio-Visual Location
    "What is the <LR> instrument of the <FL> sounding instrument?": _clauses(("answer", V)),
    "Which is the musical instrument that sounds at the same time as the <Object>?":
        _clauses(("object", A), ("answer", A)),
    # Audio-Visual Counting: a sounding X in the video, if the count is not zero.
    "How many sounding <Object> in the video？": _clauses(("object", A, "nonzero"), ("object", V, "nonzero")),
    # Audio-Visual Comparative: two positioned, sounding objects.
    "Is the <Object> on the <LR> louder than the <Object> on the <LR>?": _clauses(("object", A), ("object", V)),
    "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?":
        _clauses(("object", A), ("object", V)),
    # Audio-Visual Temporal
    "What is the <TH> instrument that comes in?": _clauses(("answer", A)),
    "Which <Object> makes the sound <FL>?": _clauses(("object", A), ("object", V)),
    "Which instrument makes sounds <BA> the <Object>?": _clauses(("object", A), ("answer", A)),
}
# Explicit negatives: used only to veto contradicting positives (see the module docstring).
NEGATIVES: dict[str, tuple[Clause, ...]] = {
    "Is there a <Object> sound?": _clauses(("object", A, "no")),
    "Is there a <Object> in the entire video?": _clauses(("object", V, "no")),
    "How many <Object> are in the entire video?": _clauses(("object", V, "zero")),
}
ALL_TEMPLATES = tuple(t for group in TEMPLATES.values() for t in group)


def _template_key(template: str) -> str:
    """Templates compared without surrounding whitespace and with '？' as '?' (the files keep the quirks)."""
    return template.replace("？", "?").strip()


_TEMPLATE_BY_KEY = {_template_key(t): t for t in ALL_TEMPLATES}


def canonical_template(template: str) -> str | None:
    """The vocab.TEMPLATES string of an annotation template, None if it is not one of the 33."""
    return _TEMPLATE_BY_KEY.get(_template_key(template))


def instrument_name(word: str) -> str | None:
    """An annotation word as an INSTRUMENTS name ('Acoustic Guitar', 'acoustic-guitar' -> 'acoustic_guitar'),
    None if it names no instrument category."""
    name = re.sub(r"[\s\-]+", "_", str(word).strip().lower())
    return name if name in INSTRUMENT_INDEX else None


def _holds(when: str, answer: str) -> bool:
    if when == "always":
        return True
    if when == "nonzero":
        return answer != "zero"
    return answer == when


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=INSTRUMENT_INDEX.__getitem__)


# --- MUSIC-AVQA: labels from the annotations ------------------------------------------------------------------------
@dataclass
class Derivation:
    """Per-video evidence and what could not be used."""
    positive: dict[str, dict[str, set[str]]]     # video -> modality -> instruments
    negative: dict[str, dict[str, set[str]]]
    videos: list[str]                            # every video of the files, in first-seen order
    unmapped: Counter                            # (template, slot, word) -> count: a word that names no category
    vetoed: Counter                              # modality -> number of (video, instrument) positives vetoed


def _slot_words(template: str, values: list[str], answer: str, slot: str) -> list[str]:
    if slot == "answer":
        return [answer]
    return [v for s, v in zip(_PLACEHOLDER.findall(template), values) if s == "<Object>"]


def collect_evidence(table: pd.DataFrame, path: str | Path = "<table>") -> Derivation:
    """Positive and negative evidence per video from an annotations table (load_annotations' columns)."""
    positive: dict = defaultdict(lambda: defaultdict(set))
    negative: dict = defaultdict(lambda: defaultdict(set))
    unmapped: Counter = Counter()
    videos: dict[str, None] = {}
    for row in table[["question_id", "video_id", "template", "templ_values", "answer"]].itertuples(index=False):
        videos.setdefault(row.video_id)
        template = canonical_template(row.template)
        if template is None:
            raise InstrumentLabelError(f"{path}: question_id {row.question_id}: template {row.template!r} is not "
                                       f"one of the 33 MUSIC-AVQA templates")
        values = json.loads(row.templ_values)
        for rules, target in ((RULES, positive), (NEGATIVES, negative)):
            for clause in rules.get(template, ()):
                if not _holds(clause.when, row.answer):
                    continue
                for word in _slot_words(template, values, row.answer, clause.slot):
                    name = instrument_name(word)
                    if name is None:
                        unmapped[(template, clause.slot, word)] += 1
                    else:
                        target[row.video_id][clause.modality].add(name)
    vetoed: Counter = Counter()
    for video, evidence in negative.items():
        for modality, names in evidence.items():
            contradicted = positive[video][modality] & names
            vetoed[modality] += len(contradicted)
            positive[video][modality] -= contradicted
    return Derivation(positive, negative, list(videos), unmapped, vetoed)


def labels_from_annotations(paths: Sequence[str | Path], split_modalities: bool = False,
                            drop_conflicting_duplicates: bool = False) -> tuple[pd.DataFrame, Derivation]:
    """The label table of every video in the MUSIC-AVQA annotation file(s), and the derivation's details.

    split_modalities False (default, the paper's single p_C and the batch contract): audio = visual = the union
    of the audio and visual evidence; True: each modality keeps its own evidence. A video in several files
    gets the evidence of all its questions.
    """
    # A parquet is the annotation stage's output (release and duplicates already handled); JSON is parsed here.
    tables = [pd.read_parquet(p) if str(p).endswith(".parquet") else
              load_annotations(p, drop_conflicting_duplicates=drop_conflicting_duplicates) for p in paths]
    if not tables:
        raise InstrumentLabelError("labels_from_annotations: no annotation file given")
    table = pd.concat(tables, ignore_index=True)
    derivation = collect_evidence(table, ", ".join(str(p) for p in paths))
    rows = []
    for video in derivation.videos:
        audio = derivation.positive[video]["audio"]
        visual = derivation.positive[video]["visual"]
        if not split_modalities:
            audio = visual = audio | visual
        rows.append({"video_id": video, "audio": _ordered(audio), "visual": _ordered(visual),
                     "source": "annotations"})
    for (template, slot, word), count in sorted(derivation.unmapped.items()):
        logger.warning("unmapped instrument word %r (%s of %r) in %d question(s)", word, slot, template, count)
    return _frame(rows), derivation


# --- synthetic dataset: exact labels from scenes.json -------------------------------------------------------------
def _scene_instrument(path: Path, video: str, source: dict) -> str:
    name = source.get("instrument") if isinstance(source, dict) else None
    if name not in INSTRUMENT_INDEX:
        raise InstrumentLabelError(f"{path}: video {video}: instrument {name!r} is not one of the 22 categories "
                                   f"{list(INSTRUMENTS)}")
    return name


def _sounds(path: Path, video: str, source: dict) -> bool:
    sounding = source.get("sounding")
    if not isinstance(sounding, list) or any(s not in (0, 1) for s in sounding):
        raise InstrumentLabelError(f"{path}: video {video}: {source.get('instrument')!r} has no per-second 0/1 "
                                   f"'sounding' list")
    return any(sounding)


def labels_from_scenes(path: str | Path) -> pd.DataFrame:
    """Exact labels of every video in a synthetic scenes.json (see the module docstring)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InstrumentLabelError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}") \
            from err
    videos = document.get("videos") if isinstance(document, dict) else None
    if not isinstance(videos, dict):
        raise InstrumentLabelError(f"{path}: expected an object with a 'videos' mapping (video_id -> scene)")
    rows = []
    for video, scene in videos.items():
        missing = [k for k in ("objects", "offscreen") if not isinstance(scene, dict) or k not in scene]
        if missing:
            raise InstrumentLabelError(f"{path}: video {video}: scene lacks {missing}")
        visual = [_scene_instrument(path, video, o) for o in scene["objects"]]
        audio = [_scene_instrument(path, video, s) for s in scene["objects"] + scene["offscreen"]
                 if _sounds(path, video, s)]
        rows.append({"video_id": str(video), "audio": _ordered(audio), "visual": _ordered(visual),
                     "source": "scenes"})
    return _frame(rows)


def instrument_labels(scenes: str | Path | None = None, annotations: Sequence[str | Path] | None = None,
                      split_modalities: bool = False, drop_conflicting_duplicates: bool = False) -> pd.DataFrame:
    """The label table from exactly one source: a synthetic scenes.json, or MUSIC-AVQA annotation files."""
    if (scenes is None) == (not annotations):
        raise ValueError("instrument_labels: give exactly one of scenes= (synthetic) or annotations= (MUSIC-AVQA)")
    if scenes is not None:
        return labels_from_scenes(scenes)
    return labels_from_annotations(annotations, split_modalities, drop_conflicting_duplicates)[0]


# --- the table and its arrays ------------------------------------------------------------------------------------
def _frame(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return table.astype({"video_id": str, "source": str})


def write_labels(table: pd.DataFrame, path: str | Path) -> None:
    """Write the table atomically with explicit types (list<string> even when every list is empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("video_id", pa.string()), ("audio", pa.list_(pa.string())),
                        ("visual", pa.list_(pa.string())), ("source", pa.string())])
    arrow = pa.Table.from_pandas(table[list(COLUMNS)], schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_labels(path: str | Path) -> pd.DataFrame:
    """An instruments.parquet, checked: the columns, unique video ids, known sources and names."""
    path = Path(path)
    table = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InstrumentLabelError(f"{path}: lacks column(s) {missing}; expected {list(COLUMNS)}")
    table["video_id"] = table["video_id"].astype(str)
    duplicated = table["video_id"][table["video_id"].duplicated()].tolist()
    if duplicated:
        raise InstrumentLabelError(f"{path}: video_id(s) listed twice: {duplicated[:10]}")
    bad_source = sorted(set(table["source"]) - set(SOURCES))
    if bad_source:
        raise InstrumentLabelError(f"{path}: unknown source(s) {bad_source}; expected one of {list(SOURCES)}")
    for modality in MODALITIES:
        table[modality] = table[modality].map(list)   # parquet gives numpy arrays
        for video, names in zip(table["video_id"], table[modality]):
            unknown = [n for n in names if n not in INSTRUMENT_INDEX]
            if unknown:
                raise InstrumentLabelError(f"{path}: video {video}: {modality} names {unknown} are not categories")
    return table


def multi_hot(table: pd.DataFrame, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(audio, visual) float32 arrays (V, 22) in INSTRUMENTS order for `video_ids` (a missing id is an error)."""
    rows = pd.Index(table["video_id"].astype(str)).get_indexer([str(v) for v in video_ids])
    if (rows < 0).any():
        missing = [v for v, r in zip(video_ids, rows) if r < 0]
        raise KeyError(f"no instrument labels for {len(missing)} video(s), e.g. {missing[:5]}")
    arrays = []
    for modality in MODALITIES:
        hot = np.zeros((len(rows), len(INSTRUMENTS)), dtype=np.float32)
        column = table[modality].to_numpy()
        for i, row in enumerate(rows):
            hot[i, [INSTRUMENT_INDEX[n] for n in column[row]]] = 1.0
        arrays.append(hot)
    return arrays[0], arrays[1]


def labelled(table: pd.DataFrame, modality: str) -> np.ndarray:
    """Per row, whether `modality`'s list may be taught as the full label set: exact scene labels, or annotation
    labels with positive evidence (a non-empty list; see the module docstring)."""
    exact = (table["source"] == "scenes").to_numpy()
    evidenced = table[modality].map(len).to_numpy() > 0
    return exact | evidenced


def source_targets(table: pd.DataFrame, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """L_source's targets for `video_ids`: sources_audio / sources_visual (V, 22) float32 multi-hot (zeros where
    unknown) and sources_mask_audio / sources_mask_visual (V,) float32, 1 where the video has a row that is
    labelled in that modality (`labelled`), 0 for a video without a row or without positive evidence."""
    ids = [str(v) for v in video_ids]
    rows = pd.Index(table["video_id"].astype(str)).get_indexer(ids)
    present = rows >= 0
    known = table.iloc[rows[present]].reset_index(drop=True)
    hot = dict(zip(MODALITIES, multi_hot(known, known["video_id"].tolist())))
    targets = {}
    for modality in MODALITIES:
        labels = np.zeros((len(ids), len(INSTRUMENTS)), dtype=np.float32)
        mask = np.zeros(len(ids), dtype=np.float32)
        labels[present] = hot[modality]
        mask[present] = labelled(known, modality)
        targets[f"sources_{modality}"] = labels
        targets[f"sources_mask_{modality}"] = mask
    return targets


def coverage(table: pd.DataFrame) -> dict:
    """Videos, videos with at least one label (audio, visual, either), mean labels per video (audio, visual,
    either) and mean labels per video that has any."""
    audio = table["audio"].map(len)
    visual = table["visual"].map(len)
    either = [len(set(a) | set(v)) for a, v in zip(table["audio"], table["visual"])]
    return {"videos": len(table),
            "with_audio": int((audio > 0).sum()), "with_visual": int((visual > 0).sum()),
            "with_any": int(sum(n > 0 for n in either)),
            "mean_audio": float(audio.mean()) if len(table) else 0.0,
            "mean_visual": float(visual.mean()) if len(table) else 0.0,
            "mean_any": float(np.mean(either)) if len(table) else 0.0,
            "mean_any_labelled": float(np.mean([n for n in either if n])) if any(either) else 0.0}


def derivation_report(derivation: Derivation) -> dict:
    """What the annotation derivation could not use: unmapped words and vetoed contradicting positives."""
    return {"unmapped_words": sum(derivation.unmapped.values()),
            "unmapped": sorted({word for _, _, word in derivation.unmapped}),
            "vetoed": {modality: derivation.vetoed[modality] for modality in MODALITIES}}


# --- CLI ---------------------------------------------------------------------------------------------------------
def _cli(args: argparse.Namespace) -> None:
    if args.scenes:
        table = labels_from_scenes(args.scenes)
    else:
        # the pipeline's labels: audio = visual = the union (the paper's single p_C); duplicates were handled by
        # the annotation stage whose parquet this reads
        table, derivation = labels_from_annotations(args.annotations)
        logger.info("annotation evidence: %s", derivation_report(derivation))
    logger.info("instrument labels: %s", coverage(table))
    write_labels(table, args.out)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "instruments", help="per-video instrument labels (SaSR-Net's L_source) -> instruments.parquet")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenes", help="a synthetic dataset's scenes.json (exact labels)")
    source.add_argument("--annotations", nargs="+", help="MUSIC-AVQA annotation file(s): avqa-{split}.json, or the "
                                                         "annotation stage's {split}.parquet")
    parser.add_argument("--out", required=True, help="output parquet (results/annotations/instruments.parquet)")
    parser.set_defaults(func=_cli)
