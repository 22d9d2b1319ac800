"""TSPM: Temporal-Spatial Perception Model (Li, Du & Hu, ACM MM 2024, "Boosting Audio Visual Question Answering
via Key Semantic-Aware Cues", arXiv 2407.20693; summary in the shared papers folder, 003_120ffb99af5272fa.txt).

Only a structured summary of the paper is available here (no equations or section numbers), so docstrings cite the
paper's block names and write each computation out; where the summary is silent the authors' public code
(GeWu-Lab/TSPM, nets/net.py, main_train.py, configs/arguments.py, scripts/) decides, and every departure from it
is listed below and is an option where that is cheap.

Batch keys (TSPM works on the T1 per-second features — a pooled store of method "none" — not on T pooled segments):
  visual        (U, T1, D)      float  CLIP ViT image embedding (projected, as encode_image) per 1-fps frame;
                                       D = 768 for ViT-L/14@336px (the paper's), 512 for ViT-B/32, ViT-B/16 -> frame_dim
  visual_tokens (U, T1, N, Dt)  float  each frame's patch tokens merged by ToMe to N = 14 tokens -> n_tokens; Dt is
                                       the ViT's width, NOT the projected embedding: the public code's tokens are
                                       (T, 14, 1024) and enter nn.Linear(1024, 512) -> token_dim (1024 for ViT-L,
                                       768 for ViT-B). (Public extractor: timm vit_large_patch16_384, r=25 for 23
                                       layers; the project's extractor uses the CLIP ViT's own trunk.)
  audio         (U, T1, 128)    float  VGGish per 1-s segment -> audio_dim
  prompt        (B, D)          float  CLIP ViT text embedding (encode_text) of the question's declarative prompt
                                       (Text Prompt Constructor) -> text_dim (default: frame_dim)
  question_clip (B, D)          float  CLIP ViT text embedding of the question sentence (placeholders filled in)
  video_index   (B,)            int64  row of each question's video (as in the contract); answer (B,) for the loss
TSPM uses no word-level question features: the public model reads one encode_text vector for the question and one
for the prompt (scripts/extract_clip_feat/extract_qst_ViT-L14@336px.py, extract_qaPrompt_ViT-L14@336px.py).

Pipeline (d = d_model = 512; k = top_k = 10 of T1 = 60 seconds; N = 14 merged tokens):
  inputs --InputProjection (standardise, LayerNorm, linear)--> audio, frames (U, T1, d); prompt, question (B, d)
  AudioVisualAttention(audio, frames)      self + cross attention per unique video -> f_a^av, f_v^av (U, T1, d)
  TemporalPerception(prompt, frames)       prompt-to-frame attention w (B, T1); top-k seconds in time order (B, k)
  SpatialPerception(tokens of the selected seconds, their audio)
                                           token self-attention, then audio-guided attention -> f_v^sp (B, k, d)
  QuestionTemporalGrounding(question, selected audio, f_v^sp)        -> f_a^q, f_v^q (B, d)
  FusionHead([f_a^q; mean f_a^av; mean f_a^sel; f_v^q; mean f_v^av; mean f_v^sp], question) -> logits (B, 42)
Loss: L = L_qa, cross-entropy (the public training script's only term; the summary names no other).

Departures from the public code (all deliberate, see each block):
  - The Spatial Perception Module reads the merged tokens of the SELECTED seconds, as the paper describes; the
    public TopKSegs copies segments 0..k-1 whatever was selected (segment_selection "first" reproduces that; with
    the public extractor's default of 10 sampled frames and top_k = 10 that is every sampled frame).
  - temporal_grad "straight_through" (default): the top-k choice stays exactly the paper's, but the selected
    seconds' features are scaled by 1 + w_t - sg(w_t) (exactly 1 forward), so the prompt-frame scorer and the
    prompt projection get gradients. In the public code the selection is an argsort, the attended feature of the
    temporal module is discarded, and so its attention and the prompt projection never receive a gradient: they
    stay at their random initialisation ("none" reproduces that).
  - The temporal module holds only the query and key projections its scores need (the public module also holds a
    value/out projection, FFN and LayerNorm whose output is discarded: 1,051,648 parameters that never train).
  - Inputs are standardised per channel with train-split statistics and LayerNorm'ed before the projections
    (input_norm "standardize_ln"); the public code projects the raw features ("none").
  - Multi-layer audio-visual attention feeds each layer the previous layer's output (the public loop always
    re-reads the inputs; identical at the default of one layer).
Kept from the public code: selection from the training-time dropout-perturbed attention weights (nn.MultiheadAttention
returns its weights after dropout; score_dropout), one audio-visual layer shared by both directions, one
question-grounding attention shared by audio and visual, head counts (1 for the audio-visual and token layers,
4 elsewhere), FFN width 512, dropout 0.1.

Efficiency: everything that depends on the video only runs once per unique video (U rows); the spatial module
runs once per distinct (video, second) pair among the questions' selections, and only those seconds' tokens are
projected (the 1024 -> 512 token projection is the largest input cost).
Attention arithmetic (scores, softmax) runs in float32 with autocast off (avqa.models.blocks.fp32).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import (FrameInputOptions, InputProjection, MultiHeadAttention, check_batch, check_choice,
                                feed_forward, fp32, option)

# Input sources of TSPM's standardisation (batch keys; the trainer fits per-channel train statistics of each:
# visual every second of every video, visual_tokens every merged token of every second, audio every second,
# prompt and question_clip every question).
TSPM_SOURCES = ("visual", "visual_tokens", "audio", "prompt", "question_clip")
SEGMENT_SELECTIONS = ("selected", "first")      # paper: the top-k seconds' tokens | public code: seconds 0..k-1
TEMPORAL_GRADS = ("straight_through", "none")   # gradient to the temporal scorer | public code: none


# --- attention building blocks (the attention itself: avqa.models.blocks.MultiHeadAttention) -----------------
class QueryAttention(nn.Module):
    """One query vector attending over a sequence, then a residual FFN (the public QstQueryAttn):

    x = MHA(query, keys, keys);  out = LayerNorm(x + FFN(x))   (no residual to the query itself).
    forward(query (R, d), keys (R, S, d)) -> (out (R, d), weights (R, S)).
    """

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.ffn = feed_forward(d_model, ffn_dim, dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, weights = self.attn(query[:, None], keys)
        x = x[:, 0]
        return self.norm(x + self.ffn(x)), weights[:, 0]


# --- audio-visual attention ------------------------------------------------------------------------------------
class AudioVisualLayer(nn.Module):
    """One audio-visual layer (the public AVHanLayer): for a sequence x and the other modality's sequence y,

    x' = LayerNorm(x + CrossAttn(x, y) + SelfAttn(x, x));  out = LayerNorm(x' + FFN(x')).
    """

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.dropout_cross = nn.Dropout(dropout)
        self.dropout_self = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = feed_forward(d_model, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout_cross(self.cross_attn(x, y)[0]) + self.dropout_self(self.self_attn(x, x)[0]))
        return self.norm2(x + self.ffn(x))


class AudioVisualAttention(nn.Module):
    """Audio-visual perception with self-modal and cross-modal attention over all T1 seconds (the public AV_Attn).

    Each layer is shared by the two directions (as the public code): f_a <- layer(f_a, f_v), f_v <- layer(f_v, f_a),
    both computed from the previous layer's pair. Run once per unique video: (U, T1, d) x 2 -> (U, T1, d) x 2.
    Only the time means of its outputs enter the fusion (as the public code).
    """

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float, layers: int = 1):
        super().__init__()
        self.layers = nn.ModuleList(AudioVisualLayer(d_model, heads, ffn_dim, dropout) for _ in range(layers))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U = audio.shape[0]
        for layer in self.layers:
            both = layer(torch.cat([audio, visual]), torch.cat([visual, audio]))  # both directions in one pass
            audio, visual = both[:U], both[U:]
        return audio, visual


# --- temporal perception -----------------------------------------------------------------------------------------
def select_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (..., k) of the k highest scores along the last axis, in increasing (time) order."""
    return scores.topk(k, dim=-1).indices.sort(dim=-1).values


class TemporalPerception(nn.Module):
    """Temporal Perception Module (TPM): the declarative prompt selects the key seconds.

    For question b over the frames f_v (T1, d) of its video, with H heads of width d_h = d / H:
      w_t = 1/H sum_h softmax_t( (W_q^h p_b) . (W_k^h f_v,t) / sqrt(d_h) )       (B, T1)
      selected = the k seconds with the largest w_t, in time order                (B, k)
    During training the per-head weights pass through dropout (score_dropout) before the head mean, as the public
    code ranks the weights nn.MultiheadAttention returns after its attention dropout. The keys depend on the video
    only and are computed once per unique video. Returns (w (B, T1) float32, selected (B, k) int64); k is
    min(top_k, T1).
    """

    def __init__(self, d_model: int, heads: int, top_k: int, score_dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        if top_k < 1:
            raise ValueError(f"top_k={top_k} must be at least 1")
        self.heads, self.top_k = heads, top_k
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(score_dropout)

    def forward(self, frames: torch.Tensor, prompt: torch.Tensor, video_index: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        U, T1, d = frames.shape
        h, dh = self.heads, d // self.heads
        keys = self.k(frames).reshape(U, T1, h, dh)
        query = self.q(prompt).reshape(-1, h, dh)
        with fp32(frames.device):
            scores = torch.einsum("bhe,bthe->bht", query.float(), keys.float()[video_index]) / math.sqrt(dh)
            weights = self.dropout(scores.softmax(-1)).mean(1)
        return weights, select_top_k(weights.detach(), min(self.top_k, T1))


# --- spatial perception ------------------------------------------------------------------------------------------
class TokenSelfAttention(nn.Module):
    """Self-attention among one frame's merged tokens (the public TokensSelfAttn):

    x' = LayerNorm(x + SelfAttn(x));  out = LayerNorm(x' + FFN(x')).   (R, N, d) -> (R, N, d).
    """

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = feed_forward(d_model, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm1(tokens + self.dropout(self.attn(tokens, tokens)[0]))
        return self.norm2(x + self.ffn(x))


class SpatialPerception(nn.Module):
    """Spatial Perception Module (SPM) over the ToMe-merged tokens of one selected second.

    The merged tokens (N, d) of the second (ToMe joins similar patches, so each token carries an object-level
    region) first exchange information by self-attention; then the second's audio feature queries them
    ("audio-guided" patch attention, perceiving the sound-aware areas):
      X' = TokenSelfAttention(X);  f_v^sp = LayerNorm(x + FFN(x)),  x = MHA(f_a,t, X', X').
    forward(tokens (R, N, d), audio (R, d)) -> (f_v^sp (R, d), attention over the tokens (R, N)), one row per
    (video, second) pair.
    """

    def __init__(self, d_model: int, heads: int, token_heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.token_attn = TokenSelfAttention(d_model, token_heads, ffn_dim, dropout)
        self.audio_guided = QueryAttention(d_model, heads, ffn_dim, dropout)

    def forward(self, tokens: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.audio_guided(audio, self.token_attn(tokens))


def distinct_pairs(video_index: torch.Tensor, token_segments: torch.Tensor, audio_segments: torch.Tensor,
                   T1: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct (video, token second, audio second) triples among the questions' selections.

    Returns the token rows (P,) and audio rows (P,) into the (U * T1)-row flattened features, and the inverse
    (B, k) mapping each question's j-th selection to its pair.
    """
    video = video_index[:, None]
    keys = (video * T1 + token_segments) * T1 + audio_segments
    pairs, inverse = torch.unique(keys, return_inverse=True)
    token_rows = pairs // T1
    audio_rows = (pairs // (T1 * T1)) * T1 + pairs % T1
    return token_rows, audio_rows, inverse


# --- question grounding, fusion, answer ----------------------------------------------------------------------------
class QuestionTemporalGrounding(nn.Module):
    """Question-query temporal grounding over the k selected seconds (the public QstTemporalGrounding).

    f_a^q = QueryAttention(f_q, f_a^sel),  f_v^q = QueryAttention(f_q, f_v^sp), one attention module shared by
    the two modalities (as the public code), both in one batched pass.
    Returns f_a^q, f_v^q (B, d) and their weights over the selected seconds (B, k) each.
    """

    def __init__(self, d_model: int, heads: int, ffn_dim: int, dropout: float):
        super().__init__()
        self.attn = QueryAttention(d_model, heads, ffn_dim, dropout)

    def forward(self, question: torch.Tensor, audio: torch.Tensor, visual: torch.Tensor):
        out, weights = self.attn(torch.cat([question, question]), torch.cat([audio, visual.to(audio.dtype)]))
        B = question.shape[0]
        return out[:B], out[B:], weights[:B], weights[B:]


class FusionHead(nn.Module):
    """Fusion and answer prediction (the public steps 6-7):

    f_av = FC(tanh([f_a^q; mean_t f_a^av; mean_j f_a^sel; f_v^q; mean_t f_v^av; mean_j f_v^sp]))   (6d -> d)
    logits = FC(tanh(f_av * f_q))   (d -> 42).
    """

    def __init__(self, d_model: int, n_answers: int):
        super().__init__()
        self.fuse = nn.Linear(6 * d_model, d_model)
        self.answer = nn.Linear(d_model, n_answers)

    def forward(self, features: list[torch.Tensor], question: torch.Tensor) -> torch.Tensor:
        dtype = features[0].dtype
        fused = self.fuse(torch.tanh(torch.cat([f.to(dtype) for f in features], -1)))
        return self.answer(torch.tanh(fused * question.to(fused.dtype)))


# --- the model -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TSPMOptions(FrameInputOptions):
    """TSPM's options (build_model("tspm", **options)); defaults: the paper's / public code's values."""

    d_model: int = option(512, "width d of every block")
    heads: int = option(4, "heads of the prompt, audio-guided and question attentions")
    av_heads: int = option(1, "heads of the audio-visual self / cross attention")
    token_heads: int = option(1, "heads of the merged tokens' self-attention")
    ffn_dim: int = option(512, "hidden width of every FFN")
    dropout: float = option(0.1, "dropout of the attention weights and FFNs")
    av_layers: int = option(1, "audio-visual attention layers")
    top_k: int = option(10, "seconds the Temporal Perception Module selects")
    score_dropout: float = option(0.1, "dropout on the temporal weights before ranking (training only; the public "
                                       "code ranks nn.MultiheadAttention's post-dropout weights)")
    segment_selection: str = option("selected", "whose tokens the spatial module reads: 'selected' (the top-k "
                                                "seconds, the paper) | 'first' (seconds 0..k-1, the public code)")
    temporal_grad: str = option("straight_through", "gradient to the temporal scorer: 'straight_through' | 'none' "
                                                    "(the public code: none)")

    def __post_init__(self):
        super().__post_init__()
        check_choice("segment_selection", self.segment_selection, SEGMENT_SELECTIONS)
        check_choice("temporal_grad", self.temporal_grad, TEMPORAL_GRADS)


class TSPM(nn.Module):
    """TSPM (see the module docstring). model(batch) returns a dict:

    logits (B, 42);
    temporal_attn_prompt (B, T1) float32: the prompt's attention over the seconds the top-k is taken from;
    selected_segments (B, k) int64: the selected seconds, increasing;
    token_segments (B, k) int64: the seconds whose tokens the spatial module read (= selected_segments, or 0..k-1
      for segment_selection "first");
    spatial_attn_tokens (B, k, N) float32: the audio-guided attention over each read second's merged tokens;
    grounding_attn_audio, grounding_attn_visual (B, k) float32: the question's attention over the selected seconds.
    (Named apart from TASS-Net's temporal_attn / spatial_attn, which avqa.reporting.attention reads with TASS-Net's
    meaning.)

    Options: TSPMOptions.
    """

    Options = TSPMOptions

    def __init__(self, options: TSPMOptions):
        super().__init__()
        d_model, input_norm = options.d_model, options.input_norm
        text_dim = options.frame_dim if options.text_dim is None else options.text_dim
        self.options = options
        self.dims = dict(frame_dim=options.frame_dim, token_dim=options.token_dim, n_tokens=options.n_tokens,
                         audio_dim=options.audio_dim, text_dim=text_dim)
        self.batch_shapes = {"visual": ("U", "T1", options.frame_dim),
                             "visual_tokens": ("U", "T1", options.n_tokens, options.token_dim),
                             "audio": ("U", "T1", options.audio_dim), "video_index": ("B",),
                             "prompt": ("B", text_dim), "question_clip": ("B", text_dim)}
        self.segment_selection, self.temporal_grad = options.segment_selection, options.temporal_grad
        self.audio_proj = InputProjection(options.audio_dim, d_model, "audio", input_norm)
        self.frame_proj = InputProjection(options.frame_dim, d_model, "visual", input_norm)
        self.token_proj = InputProjection(options.token_dim, d_model, "visual_tokens", input_norm)
        self.prompt_proj = InputProjection(text_dim, d_model, "prompt", input_norm)
        self.question_proj = InputProjection(text_dim, d_model, "question_clip", input_norm)
        heads, ffn_dim, dropout = options.heads, options.ffn_dim, options.dropout
        self.av_attention = AudioVisualAttention(d_model, options.av_heads, ffn_dim, dropout, options.av_layers)
        self.temporal = TemporalPerception(d_model, heads, options.top_k, options.score_dropout)
        self.spatial = SpatialPerception(d_model, heads, options.token_heads, ffn_dim, dropout)
        self.grounding = QuestionTemporalGrounding(d_model, heads, ffn_dim, dropout)
        self.head = FusionHead(d_model, options.n_answers)

    def perceive_space(self, frame_tokens: torch.Tensor, audio: torch.Tensor, video_index: torch.Tensor,
                       token_segments: torch.Tensor, audio_segments: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """SPM for every question's k selections: (B, k, d) features and (B, k, N) token attention.

        Only the distinct (video, second) pairs are projected and attended, then spread back to the questions.
        """
        U, T1, N, Dt = frame_tokens.shape
        token_rows, audio_rows, inverse = distinct_pairs(video_index, token_segments, audio_segments, T1)
        tokens = self.token_proj(frame_tokens.reshape(U * T1, N, Dt)[token_rows])         # (P, N, d)
        features, weights = self.spatial(tokens, audio.reshape(U * T1, -1)[audio_rows])   # (P, d), (P, N)
        return features[inverse], weights[inverse]

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "TSPM")
        index = batch["video_index"]
        audio = self.audio_proj(batch["audio"])            # (U, T1, d)
        frames = self.frame_proj(batch["visual"])                  # (U, T1, d)
        prompt = self.prompt_proj(batch["prompt"])                 # (B, d)
        question = self.question_proj(batch["question_clip"])      # (B, d)
        av_audio, av_visual = self.av_attention(audio, frames)     # (U, T1, d) each

        weights, selected = self.temporal(frames, prompt, index)  # (B, T1), (B, k)
        B, k = selected.shape
        token_segments = (selected if self.segment_selection == "selected"
                          else torch.arange(k, device=selected.device).expand(B, k))
        spatial, token_weights = self.perceive_space(batch["visual_tokens"], audio, index, token_segments, selected)
        chosen_audio = audio[index[:, None], selected]             # (B, k, d)
        if self.temporal_grad == "straight_through":
            # exactly 1 forward; d(loss)/d(w_t) = sum of d(loss)/d(feature) . feature over the selected seconds
            chosen = weights.gather(1, selected)
            factor = (1.0 + chosen - chosen.detach())[..., None]
            chosen_audio = chosen_audio * factor.to(chosen_audio.dtype)
            spatial = spatial * factor.to(spatial.dtype)

        audio_q, visual_q, ground_a, ground_v = self.grounding(question, chosen_audio, spatial)
        features = [audio_q, av_audio.mean(1)[index], chosen_audio.mean(1),
                    visual_q, av_visual.mean(1)[index], spatial.mean(1)]
        return {"logits": self.head(features, question),
                "temporal_attn_prompt": weights, "selected_segments": selected, "token_segments": token_segments,
                "spatial_attn_tokens": token_weights, "grounding_attn_audio": ground_a,
                "grounding_attn_visual": ground_v}

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_qa, cross-entropy over the 42 answers (the public training objective); (total, {"qa", "total"})."""
        return losses.total_loss({"qa": losses.qa_loss(out["logits"], batch["answer"])}, {"qa": 1.0})
