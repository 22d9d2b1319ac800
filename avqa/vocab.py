"""MUSIC-AVQA vocabulary: the 42 answers, the 9 question types in 3 groups, the template placeholders.

The answer order is the one recent public code uses (`ans2ix` in answer2idx.json, shipped in this package) so
that answer indices and checkpoints are comparable across implementations.
"""
from __future__ import annotations

import json
from importlib import resources

_ANS = json.loads(resources.files("avqa").joinpath("answer2idx.json").read_text())["ans2ix"]
ANSWERS: tuple[str, ...] = tuple(sorted(_ANS, key=_ANS.get))
ANSWER_TO_IDX: dict[str, int] = {a: i for i, a in enumerate(ANSWERS)}
N_ANSWERS = len(ANSWERS)  # 42

# (group, type, short key) in the column order of the paper's Table 1.
QUESTION_TYPES: tuple[tuple[str, str, str], ...] = (
    ("Audio", "Counting", "A-Count"),
    ("Audio", "Comparative", "A-Comp"),
    ("Visual", "Counting", "V-Count"),
    ("Visual", "Location", "V-Loc"),
    ("Audio-Visual", "Existential", "AV-Ext"),
    ("Audio-Visual", "Location", "AV-Loc"),
    ("Audio-Visual", "Counting", "AV-Count"),
    ("Audio-Visual", "Comparative", "AV-Comp"),
    ("Audio-Visual", "Temporal", "AV-Temp"),
)
GROUPS: tuple[str, ...] = ("Audio", "Visual", "Audio-Visual")
GROUP_KEYS: dict[str, str] = {"Audio": "A", "Visual": "V", "Audio-Visual": "AV"}
TYPE_KEY: dict[tuple[str, str], str] = {(g, t): k for g, t, k in QUESTION_TYPES}

INSTRUMENTS: tuple[str, ...] = (
    "accordion", "acoustic_guitar", "bagpipe", "banjo", "bassoon", "cello", "clarinet", "congas", "drum",
    "electric_bass", "erhu", "flute", "guzheng", "piano", "pipa", "saxophone", "suona", "trumpet", "tuba",
    "ukulele", "violin", "xylophone",
)
NUMBERS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "more than ten",
)
PLACEHOLDERS: tuple[str, ...] = ("<Object>", "<LR>", "<FL>", "<LL>", "<TH>", "<BA>", "<LRer>")

# The 33 templates of MUSIC-AVQA (json_update), keyed by (group, type). Exact strings, quirks included:
# a full-width question mark and two trailing spaces.
TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("Audio", "Counting"): (
        "How many musical instruments were heard throughout the video?",
        "Is there a <Object> sound?",
        "Are there <Object> and <Object> sound? ",
    ),
    ("Audio", "Comparative"): (
        "Is the <Object> louder than the <Object>?",
        "Is the <Object> more rhythmic than the <Object>?",
        "Is the <Object> playing longer than the <Object>?",
    ),
    ("Visual", "Counting"): (
        "Is there a <Object> in the entire video?",
        "Are there <Object> and <Object> instruments in the video?",
        "How many <Object> are in the entire video?",
        "How many types of musical instruments appeared in the entire video?",
    ),
    ("Visual", "Location"): (
        "Where is the performance?",
        "What kind of musical instrument is it?",
        "What kind of instrument is the <LRer> instrument? ",
        "What is the instrument on the <LR> of <Object>?",
    ),
    ("Audio-Visual", "Existential"): (
        "Is there a voiceover?",
        "Is this sound from the instrument in the video?",
        "Is the <Object> in the video always playing?",
    ),
    ("Audio-Visual", "Location"): (
        "Where is the <LL> instrument?",
        "Is the <FL> sound coming from the <LR> instrument?",
        "What is the <LR> instrument of the <FL> sounding instrument?",
        "Which is the musical instrument that sounds at the same time as the <Object>?",
    ),
    ("Audio-Visual", "Counting"): (
        "How many instruments are sounding in the video?",
        "How many instruments in the video did not sound from beginning to end?",
        "How many types of musical instruments sound in the video?",
        "How many sounding <Object> in the video？",
    ),
    ("Audio-Visual", "Comparative"): (
        "Is the <Object> on the <LR> louder than the <Object> on the <LR>?",
        "Is the <Object> on the <LR> more rhythmic than the <Object> on the <LR>?",
        "Is the instrument on the <LR> louder than the instrument on the <LR>?",
        "Is the instrument on the <LR> more rhythmic than the instrument on the <LR>?",
    ),
    ("Audio-Visual", "Temporal"): (
        "What is the <TH> instrument that comes in?",
        "Which <Object> makes the sound <FL>?",
        "Which instrument makes sounds <BA> the <Object>?",
        "Where is the <FL> sounding instrument?",
    ),
}
