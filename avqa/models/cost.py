"""What a model costs: trainable parameters and forward GFLOPs per question, measured on the model itself.

GFLOPs are counted with torch.utils.flop_counter.FlopCounterMode on one question of one video (2 FLOPs per
multiply-add, the convention of FlopCounterMode and fvcore-style counters), plus the LSTMs, whose CPU kernel the
counter does not see: 2 x 4 gates x hidden x (input + hidden) per step, direction and layer. Frozen encoders are
not part of any model here, so neither count includes them (the papers' GFLOPs may: see the README).

A training run measures its model this way when it finishes (`measured_cost` at `input_shapes`, the shapes of
its own pooled test store) and records the result in its metrics.json, which the tables read.

The example batch follows the batch contract (avqa.models.__init__) at the given input shapes: T pooled
segments of H x W x C maps, a question of `words` words (CLIP tokens: words + 2, for the start and end tokens),
and every extra input a model may read (question_words, sources_*, visual_tokens, prompt, question_clip, and the
CLIP ViT word features question_tokens / question_token_mask: L = words + 2 tokens of width "word_width", default
"text").
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from avqa.models import build_model, count_trainable, default_options
from avqa.store import open_read
from avqa.vocab import INSTRUMENTS

DEFAULT_SHAPES = {"T": 10, "map": (7, 7, 2048), "words": 12, "audio": 128, "sentence": 1024, "token_width": 512}


def example_batch(shapes: dict | None = None, vocab_size: int = 100) -> dict[str, torch.Tensor]:
    """One question on one video at `shapes` ({"T", "map": visual per segment, "tokens": (N, D) per segment if
    any, "words", "audio", "sentence" and "token_width": the CLIP-RN50 question features' sizes, "text": the CLIP
    ViT text embedding's size}), with fixed seeded values."""
    shapes = {**DEFAULT_SHAPES, **(shapes or {})}
    text_dim = shapes.get("text", 512)
    T, words = shapes["T"], shapes["words"]
    gen = torch.Generator().manual_seed(0)
    L = words + 2
    batch = {
        "visual": torch.randn(1, T, *shapes["map"], generator=gen),
        "audio": torch.randn(1, T, shapes["audio"], generator=gen),
        "video_index": torch.zeros(1, dtype=torch.long),
        "sentence": torch.randn(1, shapes["sentence"], generator=gen),
        "tokens": torch.randn(1, L, shapes["token_width"], generator=gen),
        "token_mask": torch.ones(1, L, dtype=torch.bool),
        "target_mask": torch.zeros(1, L, dtype=torch.bool).index_fill_(1, torch.tensor([3]), True),
        "answer": torch.zeros(1, dtype=torch.long),
        "question_id": torch.zeros(1, dtype=torch.long),
        "question_words": torch.randint(2, vocab_size, (1, words), generator=gen),
        "sources_audio": torch.ones(1, len(INSTRUMENTS)),
        "sources_visual": torch.ones(1, len(INSTRUMENTS)),
        "prompt": torch.randn(1, text_dim, generator=gen),
        "question_clip": torch.randn(1, text_dim, generator=gen),
        "question_tokens": torch.randn(1, L, shapes.get("word_width", text_dim), generator=gen),
        "question_token_mask": torch.ones(1, L, dtype=torch.bool),
    }
    if shapes.get("tokens"):
        batch["visual_tokens"] = torch.randn(1, T, *shapes["tokens"], generator=gen)
    return batch


def _lstm_flops(module: nn.LSTM, steps: int, batch: int) -> int:
    directions = 2 if module.bidirectional else 1
    flops, width = 0, module.input_size
    for _ in range(module.num_layers):
        flops += 2 * 4 * module.hidden_size * (width + module.hidden_size) * steps * batch * directions
        width = module.hidden_size * directions
    return flops


@torch.no_grad()
def forward_gflops(model: nn.Module, batch: dict[str, torch.Tensor]) -> float:
    """GFLOPs of one forward pass of `model` in eval mode on `batch` (see the module docstring)."""
    lstm_flops = []

    def count_lstm(module, inputs, _output):
        x = inputs[0]
        if isinstance(x, nn.utils.rnn.PackedSequence):
            steps_times_batch = int(x.batch_sizes.sum())
            lstm_flops.append(_lstm_flops(module, steps_times_batch, 1))
        else:
            batch_size, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
            lstm_flops.append(_lstm_flops(module, steps, batch_size))

    hooks = [m.register_forward_hook(count_lstm) for m in model.modules() if isinstance(m, nn.LSTM)]
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(batch)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return (counter.get_total_flops() + sum(lstm_flops)) / 1e9


def default_shapes(model_name: str, options: dict) -> dict:
    """The paper-setting input shapes of a model with `options`: T = 10 pooled segments of 7x7 maps with its
    visual channels; for a model on per-frame features (frame_dim: TSPM, QA-TIGER) T1 = 60 seconds of frame
    embeddings with their merged tokens (and the question's 14 word tokens at word_dim)."""
    value = {**default_options(model_name), **options}
    audio = value.get("audio_dim", DEFAULT_SHAPES["audio"])
    if "frame_dim" in value:
        text = value.get("text_dim") or value["frame_dim"]
        return {"T": 60, "map": (value["frame_dim"],), "tokens": (value["n_tokens"], value["token_dim"]),
                "text": text, "word_width": value.get("word_dim") or text, "audio": audio}
    return {"map": (7, 7, value.get("visual_dim", 2048)), "audio": audio,
            "sentence": value.get("sentence_dim", DEFAULT_SHAPES["sentence"]),
            "token_width": value.get("token_dim", DEFAULT_SHAPES["token_width"])}


def model_cost(model_name: str, options: dict, shapes: dict | None = None) -> dict:
    """{"params": trainable parameters, "gflops": forward GFLOPs per question} of a registered model, at `shapes`
    (default: default_shapes)."""
    shapes = default_shapes(model_name, options) if shapes is None else shapes
    model = build_model(model_name, **options)
    batch = example_batch(shapes, vocab_size=options.get("vocab_size", 100))
    return {"params": count_trainable(model), "gflops": forward_gflops(model, batch)}


def input_shapes(pooled: str, clip_texts: str | None = None) -> dict:
    """The input shapes of a run's questions: T segments and the per-segment visual map (and tokens, if any) of
    its pooled store, and the CLIP ViT text width of its clip_texts store (for the models reading one)."""
    store = open_read(pooled)
    shapes = {"T": int(store["visual"].shape[1]), "map": tuple(store["visual"].shape[2:]),
              "tokens": tuple(store["visual_tokens"].shape[2:]) if "visual_tokens" in store else None}
    if clip_texts is not None:
        shapes["text"] = int(open_read(clip_texts)["prompt"].shape[1])
    return shapes


def measured_cost(model: nn.Module, shapes: dict) -> dict:
    """{"params": trainable parameters, "gflops": forward GFLOPs per question at `shapes`, "shapes": as JSON
    has them} of a built model."""
    # word ids must stay inside the model's word embedding, if it has one (AVST)
    vocab = next((m.num_embeddings for m in model.modules() if isinstance(m, nn.Embedding)), 100)
    return {"params": count_trainable(model), "gflops": forward_gflops(model, example_batch(shapes, vocab)),
            "shapes": {key: list(v) if isinstance(v, tuple) else v for key, v in shapes.items()}}
