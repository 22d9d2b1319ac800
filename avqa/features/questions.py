"""Question features from the CLIP-RN50 text tower: `python -m avqa questions` -> results/features/questions.zarr.

Per question: the sentence embedding f_q (1024-d, the EOT token projected, as CLIP's encode_text), the per-token
outputs after ln_final (512-d) with their mask, and the mask of the target word, the question's first <Object>
value, whose tokens give f_tgt for TASS-Net's target-aware attention s_q = softmax(f_tgt . f_v,m) (section 3).
`python -m avqa questions-vit` -> questions_clip_vit.zarr: the CLIP ViT text tower's question and prompt embeddings
(TSPM) and the question's per-token features (QA-TIGER's word features; run_vit).
torch and open_clip load only when the command runs (the CLI imports every stage module to build its parser).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from avqa.features.encoders.clip_text import text_forward, tokenize
from avqa.specs import add_spec_arguments, spec_from_args
from avqa.specs.features import QuestionsSpec, QuestionsVitSpec

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("question_id", "question", "template", "templ_values")
TARGET_PLACEHOLDER = "<Object>"
_PLACEHOLDER = re.compile(r"<[A-Za-z]+>")


# --- targets -----------------------------------------------------------------------------------------------
def first_object(template: str, templ_values: str, where: str = "") -> str | None:
    """The value filling the template's first <Object> placeholder (placeholders fill in order), or None."""
    placeholders = _PLACEHOLDER.findall(template)
    try:
        values = json.loads(templ_values) if templ_values else []
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: templ_values is not JSON ({templ_values!r}): {err}") from err
    if len(values) != len(placeholders):
        raise ValueError(f"{where}: template {template!r} has {len(placeholders)} placeholders "
                         f"but templ_values {templ_values!r} has {len(values)} values")
    return next((value for ph, value in zip(placeholders, values) if ph == TARGET_PLACEHOLDER), None)


def find_span(ids: list[int], word_ids: list[int]) -> slice | None:
    """The first occurrence of the token subsequence `word_ids` in `ids`."""
    n = len(word_ids)
    for start in range(len(ids) - n + 1) if n else ():
        if ids[start:start + n] == word_ids:
            return slice(start, start + n)
    return None


def target_masks(ids, tokenizer, target_words: list[str | None]) -> np.ndarray:
    """(N, L) bool: the tokens of each question's target word (tokenised alone, matched as a subsequence)."""
    masks = np.zeros(tuple(ids.shape), dtype=bool)
    missing = []
    for i, word in enumerate(target_words):
        if word is None:
            continue
        span = find_span(ids[i].tolist(), tokenizer.encode(word))
        if span is None:
            missing.append(i)
        else:
            masks[i, span] = True
    if missing:
        logger.warning("%d target words not found in their tokenised question (rows %s...): all-False masks",
                       len(missing), missing[:5])
    return masks


# --- encoding ----------------------------------------------------------------------------------------------
def encode_questions(model, tokenizer, texts: list[str], target_words: list[str | None], batch: int, device,
                     context_length: int | None = None) -> dict:
    """Question features: sentence (N, 1024) float32, tokens (N, L, 512) float16 (zero at padding),
    token_mask (N, L) bool (real tokens incl. SOT/EOT), target_mask (N, L) bool.

    L is `context_length` or, by default, the longest question's token count.
    """
    import torch

    if not texts or len(texts) != len(target_words):
        raise ValueError(f"{len(texts)} questions and {len(target_words)} target words: need as many, at least 1")
    from tqdm import tqdm

    ids = tokenize(tokenizer, texts, context_length)
    token_mask = (ids != 0).numpy()
    sentences, tokens = [], []
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), batch), desc="questions", unit="batch", disable=None):
            tok, sent = text_forward(model, ids[start:start + batch].to(device))
            tokens.append(tok.float().cpu().numpy().astype(np.float16))
            sentences.append(sent.float().cpu().numpy())
    tokens = np.concatenate(tokens)
    tokens[~token_mask] = 0  # padding positions carry nothing; the models read token_mask
    return {
        "sentence": np.concatenate(sentences),
        "tokens": tokens,
        "token_mask": token_mask,
        "target_mask": target_masks(ids, tokenizer, target_words),
    }


# --- CLI ---------------------------------------------------------------------------------------------------
def read_questions(paths: list[str]):
    """question_id, question and target word of every question in the parquet files, sorted by question_id."""
    import pandas as pd

    frames = []
    for path in paths:
        frame = pd.read_parquet(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        frame = frame.loc[:, list(REQUIRED_COLUMNS)].copy()
        frame["target"] = [first_object(t, v, f"{path}: question_id {q}")
                           for q, t, v in zip(frame.question_id, frame.template, frame.templ_values)]
        frames.append(frame)
    questions = pd.concat(frames, ignore_index=True).drop_duplicates(["question_id", "question"])
    repeated = questions.question_id[questions.question_id.duplicated()]
    if len(repeated):
        raise ValueError(f"{paths}: question_id {sorted(set(repeated))[:5]} appear with different questions")
    if questions.empty:
        raise ValueError(f"{paths}: no questions")
    return questions.sort_values("question_id", kind="stable").reset_index(drop=True)


def run(args) -> None:
    import open_clip
    import pandas as pd
    import torch

    from avqa.atomic import atomic_path
    from avqa.digest import record_digest
    from avqa import store
    from avqa.features import encoders
    from avqa.runtime import resolve_device
    from avqa.workflow import questions_spec

    spec = spec_from_args(args, QuestionsSpec, questions_spec)
    questions = read_questions(args.annotations)
    device = resolve_device(spec.device)
    weights = spec.weights
    model = encoders.load_clip(weights, spec.weights_seed, device)
    tokenizer = open_clip.get_tokenizer(encoders.CLIP_ARCH)
    texts, targets = questions.question.tolist(), [t if isinstance(t, str) else None for t in questions.target]
    n, n_ctx = len(texts), tokenize(tokenizer, texts).shape[1]
    # Questions repeat across videos (same template and values): encode each distinct (text, target) once.
    # MUSIC-AVQA-format splits hold ~10x fewer distinct questions than questions.
    keys = pd.Series([f"{text}\x00{target or ''}" for text, target in zip(texts, targets)])
    inverse, distinct = pd.factorize(keys)
    representative = np.unique(inverse, return_index=True)[1]  # the first question of each distinct key
    logger.info("%d questions, %d distinct", n, len(distinct))
    encoded = encode_questions(model, tokenizer, [texts[i] for i in representative],
                               [targets[i] for i in representative], spec.batch, device, context_length=n_ctx)
    rows = spec.batch
    with atomic_path(args.out) as tmp:
        group = store.open_new(tmp)
        group.create_array("question_id", data=questions.question_id.to_numpy(np.int64))
        arrays = {
            "sentence": group.create_array("sentence", shape=(n, 1024), dtype="float32", chunks=(rows, 1024)),
            "tokens": group.create_array("tokens", shape=(n, n_ctx, 512), dtype="float16", chunks=(rows, n_ctx, 512)),
            "token_mask": group.create_array("token_mask", shape=(n, n_ctx), dtype=bool, chunks=(rows, n_ctx)),
            "target_mask": group.create_array("target_mask", shape=(n, n_ctx), dtype=bool, chunks=(rows, n_ctx)),
        }
        for start in range(0, n, rows):
            for name, array in arrays.items():
                array[start:start + rows] = encoded[name][inverse[start:start + rows]]
        n_targets = int(encoded["target_mask"].any(axis=1)[inverse].sum())
        group.attrs.update({
            "encoder": f"open_clip {encoders.CLIP_ARCH} text tower (QuickGELU)",
            "weights": weights, "weights_seed": spec.weights_seed, "context_length": n_ctx,
            "n_questions": n, "n_with_target": n_targets,
            "annotations": [str(Path(p)) for p in args.annotations], "torch": torch.__version__,
        })
        record_digest(group)  # what a training run's resume identity reads (avqa.digest)
    print(f"{args.out}: {n} questions, context length {n_ctx}, {n_targets} with a target word")


def question_words(encoded: dict, question_text: np.ndarray) -> dict:
    """QA-TIGER's word features from clip_vit_text's output over the distinct texts: each distinct question text
    once, cut to the longest question's tokens (exact: the text tower is causal, so a longer prompt in the same
    batch changes no question token), and each question's row among them.

    question_text (Q,): each question's row in `encoded`. Returns question_tokens (Nq, L, width) float16 (zero at
    padding), question_token_mask (Nq, L) bool, question_token_row (Q,) int64.
    """
    rows, question_token_row = np.unique(question_text, return_inverse=True)
    mask = encoded["token_mask"][rows]
    L = int(mask.sum(axis=1).max())          # real tokens are a prefix: SOT, words, EOT
    return {"question_tokens": encoded["tokens"][rows, :L].astype(np.float16),
            "question_token_mask": mask[:, :L].astype(bool),
            "question_token_row": question_token_row.astype(np.int64)}


def run_vit(args) -> None:
    """`python -m avqa questions-vit`: TSPM's and QA-TIGER's text inputs, the CLIP ViT text embedding of every
    question and of its declarative prompt (avqa.data.prompts), each distinct text encoded once, and the
    question's per-token features (question_words: stored once per distinct question text, with each question's
    row, since MUSIC-AVQA's questions repeat ~7x across videos)."""
    import pandas as pd
    import torch

    from avqa.atomic import atomic_path
    from avqa.data.prompts import prompts_for
    from avqa.digest import record_digest
    from avqa import store
    from avqa.features import encoders
    from avqa.runtime import resolve_device
    from avqa.workflow import questions_vit_spec

    spec = spec_from_args(args, QuestionsVitSpec, questions_vit_spec)
    frames = []
    for path in args.annotations:
        frame = pd.read_parquet(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        frames.append(frame.loc[:, list(REQUIRED_COLUMNS)])
    questions = pd.concat(frames, ignore_index=True).drop_duplicates("question_id")
    questions = questions.sort_values("question_id", kind="stable").reset_index(drop=True)
    prompts = prompts_for(questions.template, [json.loads(v) if v else [] for v in questions.templ_values])
    device = resolve_device(spec.device)
    weights = spec.weights
    model = encoders.load_clip_vit(weights, spec.weights_seed, device, spec.backbone)
    tokenizer = encoders.clip_vit_tokenizer(spec.backbone)
    texts = pd.Series(questions.question.tolist() + prompts)
    inverse, distinct = pd.factorize(texts)
    logger.info("%d questions and prompts, %d distinct texts", len(texts), len(distinct))
    encoded = encoders.clip_vit_text(model, tokenizer, list(distinct), spec.batch)
    sentence = encoded["sentence"][inverse]
    n = len(questions)
    words = question_words(encoded, inverse[:n])
    n_texts, L, width = words["question_tokens"].shape
    with atomic_path(args.out) as tmp:
        group = store.open_new(tmp)
        group.create_array("question_id", data=questions.question_id.to_numpy(np.int64))
        group.create_array("question_clip", data=sentence[:n].astype(np.float32))
        group.create_array("prompt", data=sentence[n:].astype(np.float32))
        rows = spec.batch
        group.create_array("question_tokens", data=words["question_tokens"], chunks=(rows, L, width))
        group.create_array("question_token_mask", data=words["question_token_mask"], chunks=(rows, L))
        group.create_array("question_token_row", data=words["question_token_row"])
        group.attrs.update({"encoder": f"open_clip {spec.backbone} text tower", "weights": weights,
                            "weights_seed": spec.weights_seed, "n_questions": n, "torch": torch.__version__,
                            "n_question_texts": n_texts, "question_context_length": L,
                            "annotations": [str(Path(p)) for p in args.annotations]})
        record_digest(group)
    print(f"{args.out}: {n} questions and their prompts, {len(distinct)} distinct texts ({spec.backbone}); "
          f"word features of {n_texts} distinct questions, {L} tokens")


def register(subparsers) -> None:
    parser = subparsers.add_parser("questions", help="CLIP-RN50 text features of every question")
    parser.add_argument("--annotations", nargs="+", required=True, help="annotation parquet files (all splits)")
    add_spec_arguments(parser, "weights, weights_seed, device, features.text_batch")
    parser.add_argument("--out", required=True, help="output zarr store, e.g. results/features/questions.zarr")
    parser.set_defaults(func=run)

    vit = subparsers.add_parser("questions-vit", help="CLIP ViT text features of every question and its "
                                                      "declarative prompt (TSPM), and the question's per-token "
                                                      "features (QA-TIGER)")
    vit.add_argument("--annotations", nargs="+", required=True, help="annotation parquet files (all splits)")
    add_spec_arguments(vit, "features.clip_vit.backbone, weights, weights_seed, device, features.text_batch")
    vit.add_argument("--out", required=True, help="output zarr store, e.g. results/features/questions_clip_vit.zarr")
    vit.set_defaults(func=run_vit)
