"""Small seeded batches and models for the model tests, one maker per batch layout (the batch contract:
avqa/models/__init__.py). Features are tiny values on a large common offset where the models standardise their
inputs, like random-encoder features.

SMALL[name] holds each registered model's small sizes; small_model(name, seed, **options) builds it with a seed.
"""
from __future__ import annotations

import torch

from avqa.vocab import INSTRUMENTS
from avqa.models import build_model

SMALL = {
    "tass": dict(d_model=16, heads=2, dropout=0.0, visual_dim=24, audio_dim=8, sentence_dim=20, token_dim=12),
    "qonly": dict(d_model=16, sentence_dim=20),
    "avst": dict(vocab_size=12, d_model=16, word_dim=8, lstm_hidden=12, heads=2, dropout=0.0, visual_dim=24,
                 audio_dim=8),
    "sasr": dict(d_model=16, dropout=0.0, visual_dim=24, audio_dim=8, sentence_dim=20),
    "tspm": dict(d_model=16, heads=2, ffn_dim=16, dropout=0.0, score_dropout=0.0, top_k=4, frame_dim=12,
                 token_dim=10, n_tokens=5, audio_dim=8),
    "qa_tiger": dict(d_model=16, heads=2, dropout=0.0, frame_dim=12, token_dim=10, n_tokens=5, audio_dim=8,
                     word_dim=6),
}


def small_model(name: str, seed: int = 0, **options):
    """Registered model `name` at its SMALL sizes (overridden by `options`), initialised after manual_seed(seed)."""
    torch.manual_seed(seed)
    return build_model(name, **{**SMALL[name], **options})


def _index(B: int, U: int, video_index) -> torch.Tensor:
    return (torch.arange(B) % U if video_index is None else torch.as_tensor(video_index)).long()


def tass_batch(U=3, B=5, T=4, L=6, visual_dim=24, audio_dim=8, sentence_dim=20, token_dim=12, seed=0,
               video_index=None):
    """The contract's batch (TASS-Net, question-only): 7x7 maps, VGGish audio, CLIP-RN50 sentence and tokens."""
    g = torch.Generator().manual_seed(seed)
    index = _index(B, U, video_index)
    lengths = torch.randint(2, L + 1, (B, 1), generator=g)
    token_mask = torch.arange(L)[None] < lengths
    target_mask = token_mask & (torch.arange(L)[None] == 1)
    target_mask[0] = False  # a question that names no object
    return {
        "visual": 1e-3 * torch.randn(U, T, 7, 7, visual_dim, generator=g) + 0.7,
        "audio": torch.randn(U, T, audio_dim, generator=g),
        "video_index": index,
        "sentence": torch.randn(B, sentence_dim, generator=g),
        "tokens": torch.randn(B, L, token_dim, generator=g) * token_mask[..., None],
        "token_mask": token_mask,
        "target_mask": target_mask,
        "answer": torch.randint(0, 42, (B,), generator=g),
        "question_id": torch.arange(B),
    }


def avst_batch(U=3, B=7, T=4, side=7, visual_dim=24, audio_dim=8, vocab_size=12, Lw=6, seed=0, video_index=None):
    """AVST's batch: maps of side x side, audio and the question's word ids (0 = padding at the end)."""
    g = torch.Generator().manual_seed(seed)
    index = _index(B, U, video_index)
    lengths = torch.randint(1, Lw + 1, (B, 1), generator=g)
    lengths[0] = Lw
    words = torch.randint(1, vocab_size, (B, Lw), generator=g) * (torch.arange(Lw)[None] < lengths)
    return {
        "visual": 1e-3 * torch.randn(U, T, side, side, visual_dim, generator=g) + 0.7,
        "audio": torch.randn(U, T, audio_dim, generator=g),
        "video_index": index,
        "question_words": words,
        "answer": torch.randint(0, 42, (B,), generator=g),
        "question_id": torch.arange(B),
    }


def sasr_batch(U=3, B=5, T=4, H=7, visual_dim=24, audio_dim=8, sentence_dim=20, seed=0, video_index=None):
    """SaSR-Net's batch: H x H maps, audio, the sentence and the per-video instrument labels."""
    g = torch.Generator().manual_seed(seed)
    index = torch.tensor([0, 0, 1, 2, 2][:B]) if video_index is None else torch.as_tensor(video_index)
    C = len(INSTRUMENTS)
    return {
        "visual": 1e-3 * torch.randn(U, T, H, H, visual_dim, generator=g) + 0.7,
        "audio": torch.randn(U, T, audio_dim, generator=g),
        "video_index": index.long(),
        "sentence": torch.randn(B, sentence_dim, generator=g),
        "answer": torch.randint(0, 42, (B,), generator=g),
        "question_id": torch.arange(B),
        "sources_audio": (torch.rand(U, C, generator=g) < 0.2).float(),
        "sources_visual": (torch.rand(U, C, generator=g) < 0.2).float(),
    }


def tspm_batch(U=3, B=5, T1=20, frame_dim=12, token_dim=10, n_tokens=5, audio_dim=8, seed=0, video_index=None):
    """TSPM's per-second batch: frame embeddings, merged tokens, audio, the prompt and the question."""
    g = torch.Generator().manual_seed(seed)
    index = _index(B, U, video_index)
    return {
        "visual": 1e-3 * torch.randn(U, T1, frame_dim, generator=g) + 0.5,
        "visual_tokens": torch.randn(U, T1, n_tokens, token_dim, generator=g),
        "audio": 0.1 * torch.randn(U, T1, audio_dim, generator=g) + 2.0,
        "prompt": torch.randn(B, frame_dim, generator=g),
        "question_clip": torch.randn(B, frame_dim, generator=g),
        "video_index": index,
        "answer": torch.randint(0, 42, (B,), generator=g),
        "question_id": torch.arange(B),
    }


def qa_tiger_batch(U=3, B=5, T1=20, L=7, lengths=None, seed=0, video_index=None):
    """QA-TIGER's batch at SMALL["qa_tiger"]'s sizes: TSPM's inputs plus the question's word features and mask."""
    small = SMALL["qa_tiger"]
    g = torch.Generator().manual_seed(seed)
    index = _index(B, U, video_index)
    lengths = torch.randint(2, L + 1, (B,), generator=g) if lengths is None else torch.as_tensor(lengths)
    mask = torch.arange(L)[None] < lengths[:, None]
    return {
        "visual": 1e-3 * torch.randn(U, T1, small["frame_dim"], generator=g) + 0.5,
        "visual_tokens": torch.randn(U, T1, small["n_tokens"], small["token_dim"], generator=g),
        "audio": 0.1 * torch.randn(U, T1, small["audio_dim"], generator=g) + 2.0,
        "question_clip": torch.randn(B, small["frame_dim"], generator=g),
        "prompt": torch.randn(B, small["frame_dim"], generator=g),
        "question_tokens": torch.randn(B, L, small["word_dim"], generator=g) * mask[..., None],
        "question_token_mask": mask,
        "video_index": index,
        "answer": torch.randint(0, 42, (B,), generator=g),
        "question_id": torch.arange(B),
    }


BATCHES = {"tass": tass_batch, "qonly": tass_batch, "avst": avst_batch, "sasr": sasr_batch, "tspm": tspm_batch,
           "qa_tiger": qa_tiger_batch}


def input_stats(batch: dict, sources) -> dict:
    """Per-channel (mean, std) of the batch's own inputs for `sources`, as the trainer computes them on the train
    split (question_tokens over the real tokens only)."""
    def stats(x):
        x = x.reshape(-1, x.shape[-1])
        return x.mean(0), x.std(0)
    out = {}
    for key in sources:
        x = batch[key]
        if key == "question_tokens":
            x = x[batch["question_token_mask"]]
        out[key] = stats(x)
    return out


def adam_steps(model, batch: dict, steps: int, lr: float) -> list[dict]:
    """`steps` Adam steps of the model's own loss on one fixed batch: each step's loss terms (the model keeps the
    last step's gradients, for tests that look at them)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        total, terms = model.loss(batch, model(batch))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(terms)
    return history
