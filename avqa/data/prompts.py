"""Declarative prompts of MUSIC-AVQA questions (TSPM's Text Prompt Constructor; Li, Du, Hu, ACM MM 2024, sec. 3.2).

CLIP's text tower was trained on captions, not questions, so TSPM turns every question into a declarative
sentence built from its template ("Is the <Object> in the video always playing?" -> "The <Object> is always
playing in this video.") and uses the prompt's embedding to find the question-relevant seconds.

PROMPTS maps each of the 33 templates to its declarative template, keyed on the NORMALISED template
('？' -> '?', surrounding whitespace stripped: avqa.data.annotations' normalisation). The public mapping is keyed
on the raw text, so the three quirky templates ('...sound? ', '...video？', '...instrument? ') fall through to a
default prompt there. Every declarative template holds exactly the question's placeholders in the same order, so
the question's templ_values fill it in order (avqa.data.annotations.fill_template). The sentences are ours; the
values stay as in the question text (e.g. 'acoustic_guitar') unless `spaces=True`.
Articles never precede <Object> ('a accordion' would be wrong for some values).
"""
from __future__ import annotations

import json
import re

from avqa.data.annotations import fill_template
from avqa.vocab import PLACEHOLDERS

_PLACEHOLDER = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))

# normalised question template -> declarative template (same placeholders, same order); grouped as vocab.TEMPLATES
PROMPTS: dict[str, str] = {
    # Audio / Counting
    "How many musical instruments were heard throughout the video?":
        "Musical instruments are heard throughout the video.",
    "Is there a <Object> sound?": "The sound of the <Object> is heard in the video.",
    "Are there <Object> and <Object> sound?": "The sounds of the <Object> and the <Object> are heard in the video.",
    # Audio / Comparative
    "Is the <Object> louder than the <Object>?": "The <Object> sounds louder than the <Object>.",
    "Is the <Object> more rhythmic than the <Object>?": "The <Object> sounds more rhythmic than the <Object>.",
    "Is the <Object> playing longer than the <Object>?": "The <Object> plays for longer than the <Object>.",
    # Visual / Counting
    "Is there a <Object> in the entire video?": "The <Object> is seen in the entire video.",
    "Are there <Object> and <Object> instruments in the video?":
        "The <Object> and the <Object> are both seen in the video.",
    "How many <Object> are in the entire video?": "Some <Object> instruments are seen in the entire video.",
    "How many types of musical instruments appeared in the entire video?":
        "Several types of musical instruments appear in the entire video.",
    # Visual / Location
    "Where is the performance?": "The musical performance takes place in this scene.",
    "What kind of musical instrument is it?": "A musical instrument is shown in the video.",
    "What kind of instrument is the <LRer> instrument?": "An instrument stands at the <LRer> position in the video.",
    "What is the instrument on the <LR> of <Object>?": "An instrument stands on the <LR> of the <Object>.",
    # Audio-Visual / Existential
    "Is there a voiceover?": "A voiceover is heard in the video.",
    "Is this sound from the instrument in the video?": "This sound comes from the instrument in the video.",
    "Is the <Object> in the video always playing?": "The <Object> is always playing in this video.",
    # Audio-Visual / Location
    "Where is the <LL> instrument?": "The <LL> instrument is located in the video.",
    "Is the <FL> sound coming from the <LR> instrument?": "The <FL> sound comes from the <LR> instrument.",
    "What is the <LR> instrument of the <FL> sounding instrument?":
        "An instrument stands on the <LR> of the <FL> sounding instrument.",
    "Which is the musical instrument that sounds at the same time as the <Object>?":
        "A musical instrument sounds at the same time as the <Object>.",
    # Audio-Visual / Counting
    "How many instruments are sounding in the video?": "Several instruments are sounding in the video.",
    "How many instruments in the video did not sound from beginning to end?":
        "Some instruments in the video do not sound from beginning to end.",
    "How many types of musical instruments sound in the video?":
        "Several types of musical instruments sound in the video.",
    "How many sounding <Object> in the video?": "Some sounding <Object> instruments are in the video.",
    # Audio-Visual / Comparative
    "Is the <Object> on the <LR> louder than the <Object> on the <LR>?":
        "The <Object> on the <LR> sounds louder than the <Object> on the <LR>.",
    "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?":
        "The <Object> on the <LR> sounds more rhythmic than the <Object> on the <LR>.",
    "Is the instrument on the <LR> louder than the instrument on the <LR>?":
        "The instrument on the <LR> sounds louder than the instrument on the <LR>.",
    "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?":
        "The instrument on the <LR> sounds more rhythmic than the instrument on the <LR>.",
    # Audio-Visual / Temporal
    "What is the <TH> instrument that comes in?": "An instrument is the <TH> to come in.",
    "Which <Object> makes the sound <FL>?": "One <Object> makes the sound <FL>.",
    "Which instrument makes sounds <BA> the <Object>?": "An instrument makes sounds <BA> the <Object>.",
    "Where is the <FL> sounding instrument?": "The <FL> sounding instrument is located in the video.",
}


def normalise_template(template: str) -> str:
    """The template as avqa.data.annotations normalises question text ('？' -> '?', surrounding whitespace
    stripped): the same fill_template, each placeholder filled with itself."""
    return fill_template(template, _PLACEHOLDER.findall(template))


def declarative_template(template: str) -> str:
    """The declarative template of a question template (raw or normalised); ValueError for an unknown one."""
    key = normalise_template(template)
    if key not in PROMPTS:
        raise ValueError(f"template {template!r} is not one of the {len(PROMPTS)} MUSIC-AVQA templates "
                         f"(avqa.data.prompts.PROMPTS)")
    return PROMPTS[key]


def prompt_for(template: str, templ_values, spaces: bool = False) -> str:
    """The declarative prompt of one question: its template's declarative form, placeholders filled in order.

    templ_values: the record's JSON-encoded list (as in the annotation files and tables) or a list of strings.
    spaces: write instrument values as words ('acoustic_guitar' -> 'acoustic guitar'); off by default, so the
    prompt names instruments as the question text does.
    """
    values = json.loads(templ_values) if isinstance(templ_values, str) else list(templ_values)
    if spaces:
        values = [v.replace("_", " ") for v in values]
    try:
        return fill_template(declarative_template(template), values)
    except ValueError as err:
        raise ValueError(f"template {template!r} with templ_values {templ_values!r}: {err}") from err


def prompts_for(templates, templ_values, spaces: bool = False) -> list[str]:
    """prompt_for over two equally long columns (e.g. an annotation table's template and templ_values)."""
    templates, templ_values = list(templates), list(templ_values)
    if len(templates) != len(templ_values):
        raise ValueError(f"{len(templates)} templates but {len(templ_values)} templ_values")
    return [prompt_for(t, v, spaces) for t, v in zip(templates, templ_values)]
