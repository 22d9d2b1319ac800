"""Declarative prompts (TSPM's Text Prompt Constructor): every MUSIC-AVQA template, quirks included, maps to a
filled declarative sentence; checked on the real val/test annotation files when they are present."""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from avqa.data.annotations import fill_template, load_annotations
from avqa.data.prompts import PROMPTS, declarative_template, normalise_template, prompt_for, prompts_for
from avqa.vocab import PLACEHOLDERS, TEMPLATES
from conftest import MUSIC_AVQA_DIR

DATA = MUSIC_AVQA_DIR
ALL_TEMPLATES = [t for group in TEMPLATES.values() for t in group]
QUIRKY = ("Are there <Object> and <Object> sound? ", "How many sounding <Object> in the video？",
          "What kind of instrument is the <LRer> instrument? ")
_SLOT = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
# questions per template, in vocab.TEMPLATES order (json_update files)
COUNTS = {
    "val": (190, 168, 153, 140, 86, 69, 139, 123, 176, 162, 151, 133, 135, 194, 219, 133, 143, 110, 134, 41, 176,
            143, 148, 139, 203, 163, 122, 161, 103, 172, 84, 53, 102),
    "test": (364, 350, 303, 307, 158, 129, 269, 273, 358, 297, 323, 276, 286, 340, 433, 267, 288, 232, 262, 81,
             345, 275, 281, 282, 427, 291, 244, 322, 244, 361, 176, 100, 185),
}


@pytest.fixture(scope="module", params=["val", "test"])
def split(request):
    path = DATA / f"avqa-{request.param}.json"
    if not path.is_file():
        pytest.skip(f"{path} absent: the real MUSIC-AVQA annotations are not on this machine")
    return request.param, load_annotations(path)


def test_mapping_covers_the_33_normalised_templates_in_vocab_order():
    assert len(ALL_TEMPLATES) == 33 and list(PROMPTS) == [normalise_template(t) for t in ALL_TEMPLATES]
    assert len(set(PROMPTS.values())) == 33          # one prompt per template: no two questions types conflated


def test_normalisation_is_the_question_text_normalisation():
    for template in ALL_TEMPLATES:
        values = [f"v{i}" for i in range(len(_SLOT.findall(template)))]
        assert fill_template(normalise_template(template), values) == fill_template(template, values)
    assert normalise_template("How many sounding <Object> in the video？") == \
        "How many sounding <Object> in the video?"
    assert normalise_template("Are there <Object> and <Object> sound? ") == "Are there <Object> and <Object> sound?"


def test_declarative_templates_keep_the_placeholders_in_order_and_are_statements():
    for template, declarative in PROMPTS.items():
        assert _SLOT.findall(declarative) == _SLOT.findall(template), template
        assert declarative.endswith(".") and "?" not in declarative and declarative[0].isupper(), declarative
        assert not re.search(r"\ban? <Object>", declarative), declarative   # 'a accordion'


def test_quirky_templates_map_to_their_own_prompts():
    prompts = {t: prompt_for(t, json.dumps(["violin", "cello"][: len(_SLOT.findall(t))])) for t in QUIRKY}
    assert prompts == {
        QUIRKY[0]: "The sounds of the violin and the cello are heard in the video.",
        QUIRKY[1]: "Some sounding violin instruments are in the video.",
        QUIRKY[2]: "An instrument stands at the violin position in the video.",
    }
    assert declarative_template(QUIRKY[1]) == declarative_template("How many sounding <Object> in the video?")


def test_prompt_for_fills_in_order_and_the_example_of_the_brief():
    assert prompt_for("Is the <Object> in the video always playing?", '["violin"]') == \
        "The violin is always playing in this video."
    got = prompt_for("Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
                     ["saxophone", "right", "acoustic_guitar", "left"])
    assert got == "The saxophone on the right sounds louder than the acoustic_guitar on the left."
    spaced = prompt_for("Which instrument makes sounds <BA> the <Object>?", '["before", "acoustic_guitar"]',
                        spaces=True)
    assert spaced == "An instrument makes sounds before the acoustic guitar."


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="not one of the 33 MUSIC-AVQA templates"):
        prompt_for("Is the <Object> purple?", '["violin"]')
    with pytest.raises(ValueError, match=r"templ_values \['violin'\].*2 placeholders but templ_values has 1"):
        prompt_for("Is the <Object> louder than the <Object>?", ["violin"])
    with pytest.raises(ValueError, match="2 templates but 1 templ_values"):
        prompts_for(ALL_TEMPLATES[:2], ["[]"])


def test_every_question_of_the_real_files_maps(split):
    name, table = split
    prompts = prompts_for(table.template, table.templ_values)
    assert len(prompts) == len(table) == sum(COUNTS[name])
    assert not any(_SLOT.search(p) or "<" in p or ">" in p or "?" in p or "？" in p for p in prompts)
    assert not any("  " in p or p != p.strip() for p in prompts)
    # every value of the question appears in its prompt
    for prompt, values in zip(prompts, table.templ_values):
        assert all(v in prompt for v in json.loads(values)), (prompt, values)


def test_counts_per_template_on_the_real_files(split):
    name, table = split
    per_template = Counter(table.template.map(normalise_template))
    assert tuple(per_template[normalise_template(t)] for t in ALL_TEMPLATES) == COUNTS[name]
    per_prompt_template = Counter(table.template.map(declarative_template))
    assert sorted(per_prompt_template.values()) == sorted(COUNTS[name])   # one prompt template per template
    quirky = sum(per_template[normalise_template(t)] for t in QUIRKY)
    assert quirky == {"val": 491, "test": 1016}[name]                     # the questions the raw keying loses
    raw = set(table.template)
    assert set(QUIRKY) <= raw                                             # the files really carry the quirks
