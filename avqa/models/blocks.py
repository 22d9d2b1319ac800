"""Blocks shared by the AVQA models: option fields, the batch check, input normalisation and projections,
multi-head attention, the audio-visual match head, the single stream's token orders and the answer head.

The projections, match head and answer head are TASS-Net's (Jiang & Yin 2024, arXiv 2405.07451: sec. 3.2 and 4.1
inputs, sec. 3.3 eq. 7 match classifier, sec. 3.5 eq. 20 answer) and are reused by the question-only baseline,
AVST and SaSR-Net; the attention and the generic input projection serve TASS-Net's JTG, TSPM and QA-TIGER.
Model-specific blocks live beside their model (avqa.models.tass_blocks for TSG+ and JTG).

Shapes: B questions, U unique videos, T segments, P map positions, L tokens, d = d_model.
Attention-type arithmetic (similarities, softmax) runs in float32 with autocast disabled (fp32), so the models
give the same attention under torch.autocast(cpu, bfloat16) as in fp32 up to the projections' rounding.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from avqa.vocab import ANSWERS

ORDERS = ("IL(V;A)", "IL(A;V)", "Cat(V;A)", "Cat(A;V)")    # token orders of the single stream (eq. 13, Table 6)
INPUT_NORMS = ("standardize_ln", "none")           # project's input normalisation | the papers' plain projections


def fp32(device: torch.device):
    """Context that turns autocast off, for numerically delicate attention arithmetic."""
    return torch.autocast(device_type=device.type, enabled=False)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"option {name}={value!r} is not one of {list(choices)}")


# --- model options ------------------------------------------------------------------------------------------------
def option(default=dataclasses.MISSING, doc: str = ""):
    """A field of a model's options dataclass: its default (none: required) and a one-line description."""
    return dataclasses.field(default=default, metadata={"doc": doc})


def options_table(options_class) -> str:
    """Markdown table (option, default, meaning) of an options dataclass ('|' escaped): the model's own fields,
    then those of the option groups it derives from, each in declaration order."""
    own = options_class.__dict__.get("__annotations__", {})
    fields = dataclasses.fields(options_class)
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for f in [f for f in fields if f.name in own] + [f for f in fields if f.name not in own]:
        default = "required" if f.default is dataclasses.MISSING else f"`{f.default!r}`"
        meaning = f.metadata.get("doc", "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | {default} | {meaning} |")
    return "\n".join(rows)


# Option groups several models read; a model's options dataclass derives from those of its inputs.
@dataclasses.dataclass(frozen=True, kw_only=True)
class AnswerOptions:
    n_answers: int = option(len(ANSWERS), "answer classes")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MapInputOptions(AnswerOptions):
    """Pooled visual maps and VGGish audio (TASS-Net, AVST, SaSR-Net)."""

    visual_dim: int = option(2048, "channels of the visual maps (CLIP-RN50 2048, ResNet-18 512)")
    audio_dim: int = option(128, "audio feature size (VGGish 128)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SentenceOptions:
    """The CLIP-RN50 sentence embedding of the question (TASS-Net, question-only, SaSR-Net)."""

    sentence_dim: int = option(1024, "CLIP-RN50 sentence embedding size")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FrameInputOptions(AnswerOptions):
    """Per-second CLIP ViT frames with their merged tokens, VGGish audio and CLIP ViT text (TSPM, QA-TIGER)."""

    input_norm: str = option("standardize_ln", "'standardize_ln' (standardise + LayerNorm before the projections) | "
                                               "'none' (the public code's raw projections)")
    frame_dim: int = option(768, "CLIP ViT frame embedding size (ViT-L/14@336px 768)")
    token_dim: int = option(1024, "width of the merged patch tokens (the ViT's width: 1024 for ViT-L)")
    n_tokens: int = option(14, "merged tokens per frame (ToMe)")
    audio_dim: int = option(128, "audio feature size (VGGish 128)")
    text_dim: int | None = option(None, "CLIP ViT text embedding size (question; TSPM's prompt too); None: frame_dim")

    def __post_init__(self):
        check_choice("input_norm", self.input_norm, INPUT_NORMS)


# --- the batch check ------------------------------------------------------------------------------------------------
def _describe(shape: tuple, sizes: dict[str, int]) -> str:
    names = ["*" if s is None else f"{s}={sizes[s]}" if isinstance(s, str) and s in sizes else str(s) for s in shape]
    return f"({', '.join(names)})"


def check_batch(batch: dict, expected: dict[str, tuple], model: str) -> dict[str, int]:
    """Clear errors for a batch that breaks `model`'s part of the batch contract (avqa/models/__init__.py).

    expected: {key: shape}, checked in order; each entry of a shape is an int (that size), a letter naming a
    size that must agree across keys (U unique videos, B questions, T segments, L tokens, ...) or None (any).
    A missing key is a KeyError naming every missing one; a wrong shape a ValueError naming the key, its shape
    and the expected one. When expected holds "video_index" and U is bound, its values must index the U rows.
    Returns the letters' sizes.
    """
    missing = [k for k in expected if k not in batch]
    if missing:
        raise KeyError(f"batch lacks {missing}; {model} needs {list(expected)}")
    sizes: dict[str, int] = {}
    for key, shape in expected.items():
        actual = tuple(batch[key].shape)
        fits = len(actual) == len(shape)
        for size, want in zip(actual, shape) if fits else ():
            if isinstance(want, str):
                fits = fits and sizes.setdefault(want, size) == size
            elif want is not None:
                fits = fits and size == want
        if not fits:
            raise ValueError(f"batch[{key!r}] has shape {actual}, expected {_describe(shape, sizes)} ({model})")
    if "video_index" in expected and "U" in sizes:
        index, U = batch["video_index"], sizes["U"]
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= U):
            raise ValueError(f"batch['video_index'] holds values outside [0, {U}) (U = rows of batch['visual'])")
    return sizes


# --- input projections (sec. 3.2 and 4.1: "projected ... with a linear layer") ----------------------------------
# input_norm "standardize_ln" (default; a departure from the papers, which feed the frozen features straight into
# the projections): per channel with train-split statistics (Standardize), then a LayerNorm without affine part
# per position (the linear layer after it absorbs scale and shift). Random-encoder features are tiny values on a
# large common offset, which a LayerNorm alone leaves as a small ripple (measured in docs/models.md).
# input_norm "none": the papers' plain projections of the raw features.
# The batch keys a Standardize may standardise (the data pipeline computes their per-channel train statistics:
# avqa.training.dataset.AVQADataset.input_stats): TASS-Net's four, and CLIP ViT's per-frame tokens and text embeddings.
INPUT_SOURCES = ("visual", "audio", "sentence", "tokens", "visual_tokens", "question_clip", "prompt",
                 "question_tokens")


class Standardize(nn.Module):
    """x -> (x - mean) / std per channel, with `mean` and `std` of one input `source` fitted on the training split.

    The statistics are buffers (saved in every checkpoint, so a trained model carries its own normalisation);
    until fitted it is the identity. Channels with (near) zero spread, e.g. an input removed by zeroing, keep
    scale 1.
    """

    def __init__(self, dim: int, source: str):
        super().__init__()
        check_choice("source", source, INPUT_SOURCES)
        self.source = source
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    @torch.no_grad()
    def fit(self, mean, std, min_std: float = 1e-12) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean.shape != self.mean.shape or std.shape != self.scale.shape:
            raise ValueError(f"Standardize({self.source}): statistics of shape {tuple(mean.shape)} / "
                             f"{tuple(std.shape)}, expected ({self.mean.numel()},)")
        self.mean.copy_(mean)
        self.scale.copy_(torch.where(std > min_std, 1.0 / std.clamp_min(min_std), torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) * self.scale.to(x.dtype)


def fit_input_stats(model: nn.Module, stats: dict[str, tuple]) -> list[str]:
    """Fit every Standardize of `model` from stats {source: (mean, std)}; returns the sources fitted."""
    fitted = []
    for module in model.modules():
        if isinstance(module, Standardize):
            if module.source not in stats:
                raise KeyError(f"no input statistics for {module.source!r}; have {sorted(stats)}")
            module.fit(*stats[module.source])
            fitted.append(module.source)
    return fitted


def input_sources(model: nn.Module) -> set[str]:
    """The inputs whose statistics `model` needs (its Standardize sources)."""
    return {m.source for m in model.modules() if isinstance(m, Standardize)}


def input_normalisers(dim: int, source: str, input_norm: str) -> tuple[nn.Module, nn.Module]:
    """(standardize, norm) modules of an input projection for `input_norm` (see the comment above)."""
    check_choice("input_norm", input_norm, INPUT_NORMS)
    if input_norm == "none":
        return nn.Identity(), nn.Identity()
    return Standardize(dim, source), nn.LayerNorm(dim, elementwise_affine=False)


class InputProjection(nn.Module):
    """A frozen feature (..., in_dim) of batch key `source` -> (..., d): the input normalisation of `input_norm`
    (standardised and LayerNorm'ed, "standardize_ln"; raw, "none"), then one linear layer (sec. 4.1: "projected
    ... with a linear layer"; TSPM's and QA-TIGER's input_a, input_v, ... of their public code)."""

    def __init__(self, in_dim: int, d_model: int, source: str, input_norm: str = "standardize_ln"):
        super().__init__()
        self.standardize, self.norm = input_normalisers(in_dim, source, input_norm)
        self.proj = nn.Linear(in_dim, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(self.standardize(x.float())))


class VisualProjection(InputProjection):
    """f_v,m: the C channels of each map position mapped to d (sec. 4.1; InputProjection of "visual").

    Applied to the U unique videos' maps once per batch: (U, T, H, W, C) -> (U, T, H * W, d).
    """

    def __init__(self, in_dim: int, d_model: int, input_norm: str = "standardize_ln"):
        super().__init__(in_dim, d_model, "visual", input_norm)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        u, t = maps.shape[:2]
        return super().forward(maps.reshape(u, t, -1, maps.shape[-1]))


class AudioProjection(nn.Module):
    """f_a: the 128 VGGish dims "projected into a 512-D feature vector" (sec. 4.1) by linear -> ReLU -> linear
    (TJSTG's fc_a1, fc_a2), after the input normalisation of `input_norm` (as InputProjection)."""

    def __init__(self, in_dim: int, d_model: int, input_norm: str = "standardize_ln"):
        super().__init__()
        self.standardize, self.norm = input_normalisers(in_dim, "audio", input_norm)
        self.mlp = nn.Sequential(nn.Linear(in_dim, d_model), nn.ReLU(), nn.Linear(d_model, d_model))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(self.standardize(audio)))


class QuestionProjection(InputProjection):
    """f_q (sec. 3.2): the CLIP-RN50 sentence embedding mapped to d (InputProjection of "sentence"). The paper's
    f_q is "512-D"; RN50's sentence embedding is 1024-d, so a learned projection is needed either way."""

    def __init__(self, in_dim: int, d_model: int, input_norm: str = "standardize_ln"):
        super().__init__(in_dim, d_model, "sentence", input_norm)


# --- attention ------------------------------------------------------------------------------------------------------
class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017) with nn.MultiheadAttention's parameters:

      head_i = softmax(Q W_q^i (K W_k^i)^T / sqrt(d_h)) V W_v^i,   out = W_o [head_1; ...; head_H]
    (TASS-Net's eq. 15 in TJSTG's multi-head form; TSPM's and QA-TIGER's attention layers). Scores and softmax in
    float32; dropout on the attention weights. Written out rather than nn.MultiheadAttention (whose packed
    in_proj would rename the checkpoints' q, k, v entries) or F.scaled_dot_product_attention (whose CPU kernel
    FlopCounterMode does not count, avqa.models.cost, and which returns no weights).

    forward(query (R, Lq, d), x (R, Lk, d), key_mask (R, Lk) bool, True = real, or None) -> (output (R, Lq, d),
    weights (R, Lq, Lk): the softmax averaged over heads, before dropout). keys(x) -> (k, v) each (R, H, Lk, d_h)
    projects the keys once for several queries, attend(query, k, v, key_mask) attends over them.
    """

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.heads = heads
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        R, L, d = x.shape
        return x.reshape(R, L, self.heads, d // self.heads).transpose(1, 2)

    def keys(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split(self.k(x)), self._split(self.v(x))

    def _mix(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        R, H, Lq, dh = q.shape
        with fp32(q.device):
            scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(dh)               # (R, H, Lq, Lk)
            if key_mask is not None:
                scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
            weights = scores.softmax(-1)
        out = self.dropout(weights).to(v.dtype) @ v
        return self.out(out.transpose(1, 2).reshape(R, Lq, H * dh)), weights.mean(1)

    def attend(self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               key_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._mix(self._split(self.q(query)), k, v, key_mask)

    def forward(self, query: torch.Tensor, x: torch.Tensor, key_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        q = self._split(self.q(query))
        return self._mix(q, *self.keys(x), key_mask)


def feed_forward(d_model: int, ffn_dim: int, dropout: float) -> nn.Sequential:
    """Linear -> ReLU -> dropout -> linear -> dropout (the transformer FFN; TSPM's linear1 / linear2 pairs)."""
    return nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model),
                         nn.Dropout(dropout))


# --- heads ----------------------------------------------------------------------------------------------------------
class MatchHead(nn.Module):
    """L_s classifier (sec. 3.3, eq. 7): y_hat = MLP([f_a ; f_v]) -> matched / unmatched logits (TJSTG's fc1..fc4)."""

    def __init__(self, d_model: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * d_model, d_model), nn.ReLU(),
            nn.Linear(d_model, d_model // 2), nn.ReLU(),
            nn.Linear(d_model // 2, d_model // 4), nn.ReLU(),
            nn.Linear(d_model // 4, 2))

    def forward(self, f_a: torch.Tensor, f_v: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([f_a, f_v], -1))


# --- token orders for the single stream ------------------------------------------------------------------------
def token_positions(order: str, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the visual and audio tokens in the 2T-token sequence of `order` (sec. 3.4, eq. 13, Table 6).

    IL(V;A) = [v1; a1; ...; vT; aT]: v_t at 2t, a_t at 2t+1; IL(A;V) swaps them; Cat(V;A) = [v1..vT; a1..aT]
    puts v_t at t and a_t at T+t; Cat(A;V) the reverse (t counted from 0). Eqs. 18-19 (w_v = {w_2i},
    w_a = {w_2i-1}, 1-based) contradict eq. 13's interleave; this follows eq. 13 (JS is symmetric, so L_cms is
    the same either way).
    """
    check_choice("order", order, ORDERS)
    t = torch.arange(T)
    if order.startswith("IL"):
        first, second = 2 * t, 2 * t + 1
    else:
        first, second = t, T + t
    return (first, second) if order.endswith("(V;A)") else (second, first)


def arrange_tokens(visual: torch.Tensor, audio: torch.Tensor, order: str) -> torch.Tensor:
    """(B, T, d) visual and audio tokens -> (B, 2T, d) in `order` (IL(V;A) is the paper's interleave)."""
    B, T, d = visual.shape
    v_pos, a_pos = token_positions(order, T)
    tokens = visual.new_empty(B, 2 * T, d)
    tokens[:, v_pos.to(visual.device)] = visual
    tokens[:, a_pos.to(visual.device)] = audio.to(visual.dtype)
    return tokens


def split_tokens(values: torch.Tensor, order: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of arrange_tokens along axis 1: (B, 2T, ...) -> visual (B, T, ...), audio (B, T, ...)."""
    v_pos, a_pos = token_positions(order, values.shape[1] // 2)
    return values[:, v_pos.to(values.device)], values[:, a_pos.to(values.device)]


class AnswerHead(nn.Module):
    """Answer prediction (sec. 3.5, eq. 20): e = f_av^q * f_q (element-wise), logits = FC(e) over the 42 answers.

    tanh: True (this class's default, kept for the question-only model; TJSTG's form): logits = FC(tanh(e));
    False (the paper's eq. 20, "a linear layer and softmax"): logits = FC(e). TASS-Net passes its answer_tanh.
    """

    def __init__(self, d_model: int, n_answers: int, tanh: bool = True):
        super().__init__()
        self.tanh = bool(tanh)
        self.fc = nn.Linear(d_model, n_answers)

    def forward(self, fused: torch.Tensor, f_q: torch.Tensor) -> torch.Tensor:
        e = fused * f_q
        return self.fc(torch.tanh(e) if self.tanh else e)
