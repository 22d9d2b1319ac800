"""AVST: the audio-visual spatial-temporal grounding network of MUSIC-AVQA (Li et al., CVPR 2022, "Learning to
Answer Questions in Dynamic Audio-Visual Scenarios", sec. 4), on the avqa model batch contract.

Sections cited (the paper's method section): 4.1 representations of the modalities, 4.2 spatial grounding
module, 4.3 temporal grounding module, 4.4 multimodal fusion and answer prediction (with the training objective).
The paper's text is not stored here, so these numbers are not re-checked against it and equation numbers are not
cited; each block writes its formula out instead, following the authors' public code
(GeWu-Lab/MUSIC-AVQA: net_grd_avst/net_avst.py, main_avst.py; the grounding pre-training grounding_gen/
main_grd_gen.py with its net AVQA_AVatt_Grounding), which is authoritative where the two could differ.

Pipeline per batch (B questions over U unique videos, T segments, P = H x W map positions, d = 512):
  question_words (B, Lw) --QuestionEncoder--> f_q (B, d)                                       [4.1]
  audio (U, T, 128) --AudioProjection (fc_a1, ReLU, fc_a2)--> f_a (U, T, d)                     [4.1]
  visual (U, T, H, W, C) --VisualProjection--> maps (U, T, P, d)                                [4.1]
  SpatialGrounding(maps, f_a) --> f_v (U, T, d), spatial attention (U, T, P)   once per video   [4.2]
  AVMatch on (f_a, f_v) pairs: matched (own visual), mismatched (the previous video's audio)   [4.2]
  TemporalGrounding(f_q, f_a[video_index], f_v[video_index]) --> h_a, h_v (B, d)               [4.3]
  AnswerPrediction(h_a + mean_t f_a, h_v + mean_t f_v, f_q) --> logits (B, 42)                  [4.4]
Loss: objective "qa": L = L_qa + 0.5 L_match (main_avst.py); "grounding": L = L_match alone (the pre-training
of main_grd_gen.py). The spatial grounding is audio-guided only, so it and the match pairs depend on the video,
not on the question: they run once per unique video (U rows), and only the temporal attention and the answer
head run per question.

Grounding pre-training: AVST trains its grounding blocks with L_match first, then starts the QA run from them
(main_avst.py loads fc_a1, fc_a2, fc_gl, fc1..fc4 from the grounding checkpoint). Here: train a run with
objective="grounding", then build the QA model and call load_grounding(model, checkpoint["model"]): it loads
grounding_state(...) = the parameters and buffers of GROUNDING_BLOCKS (visual_proj, audio_proj,
spatial_grounding, match_head) with strict=False and checks that every one of them was taken.

Departures from the public code (each for the batch contract or the project's inputs):
  - inputs are standardised with train-split statistics and LayerNorm'd (VisualProjection / AudioProjection of
    avqa.models.blocks), and the visual maps always get a linear map C -> d (AVST feeds its 512-channel
    ResNet-18 maps unprojected; its unused fc_v = Linear(2048, 512) is this layer for 2048-channel maps);
  - the question LSTM stops at each question's last word (packed sequence); the public code runs it over the
    padding up to 14 tokens, so its question feature depends on the padding;
  - mismatched pairs: video u's visual with video u-1's audio at the same segment (a fixed roll within the
    batch), and L_match is averaged over the U*T segment pairs of each kind; the public code draws a random
    frame of a random other train video per segment and averages over the B*T pairs of its B questions;
  - modules the public net defines but never uses (fc_v, fc_st, fc, fc_aq, fc_vq, fc_a1_pure, fc_a2_pure,
    norm3, the dropout of 0.5, and the ResNet-18 it does not run on precomputed maps) are left out;
  - attention arithmetic (cosines, softmax, the multi-head attention) runs in float32 under autocast.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from avqa.vocab import ANSWERS
from avqa.models import losses
from avqa.models.blocks import (AudioProjection, MapInputOptions, MatchHead, VisualProjection, arrange_tokens,
                                check_batch, check_choice, fp32, option)

OBJECTIVES = ("qa", "grounding")
# Top-level blocks trained by the grounding pre-training; the QA run takes exactly these from its checkpoint.
GROUNDING_BLOCKS = ("visual_proj", "audio_proj", "spatial_grounding", "match_head")


class QuestionEncoder(nn.Module):
    """Question representation (sec. 4.1; the public code's QstEncoder).

    x = tanh(Embedding(words)); (h, c) = the LSTM's final hidden and cell states after the question's last word;
    f_q = FC(tanh([h ; c])) (hidden and cell of every layer concatenated, as the public code). `words` (B, Lw)
    holds ids with 0 = padding at the end; the packed sequence makes the result independent of the padding.
    """

    def __init__(self, vocab_size: int, word_dim: int = 512, hidden_dim: int = 512, layers: int = 1,
                 d_model: int = 512):
        super().__init__()
        self.vocab_size = int(vocab_size)
        self.embed = nn.Embedding(self.vocab_size, word_dim, padding_idx=0)
        self.lstm = nn.LSTM(word_dim, hidden_dim, layers, batch_first=True)
        self.fc = nn.Linear(2 * layers * hidden_dim, d_model)

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        real = words != 0
        lengths = real.sum(1)
        x = torch.tanh(self.embed(words))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (hidden, cell) = self.lstm(packed)                     # (layers, B, hidden) each, in batch order
        states = torch.cat([hidden, cell], -1).transpose(0, 1).reshape(words.shape[0], -1)
        return self.fc(torch.tanh(states))


class SpatialGrounding(nn.Module):
    """Audio-guided spatial grounding (sec. 4.2; the public code's "posi" path with fc_gl).

    For each video row and segment t, with the unit vectors m_p = f_v,m[p] / |f_v,m[p]| of the projected map:
      attention_p = softmax_p(cos(f_a, f_v,m[p])),   attended = sum_p attention_p * m_p  (the L2-normalised map),
      f_v = FC(tanh([mean_p f_v,m ; attended]))      (mean of the un-normalised map: the global feature).
    No temperature on the cosines (as the public code). `audio` (U, T, d) grounds each row's own map; (K, U, T, d)
    grounds every row's map with K audio sequences at once (matched and mismatched). Returns f_v and the
    attention with the audio's leading shape: (U, T, d), (U, T, P) or (K, U, T, d), (K, U, T, P).
    """

    def __init__(self, d_model: int = 512):
        super().__init__()
        self.fc_gl = nn.Linear(2 * d_model, d_model)

    def forward(self, maps: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with fp32(maps.device):
            unit_maps = F.normalize(maps.float(), dim=-1)
            unit_audio = F.normalize(audio.float(), dim=-1)
            attention = torch.einsum("utpd,...utd->...utp", unit_maps, unit_audio).softmax(-1)
            attended = torch.einsum("...utp,utpd->...utd", attention, unit_maps)
        pooled = maps.mean(2).expand(*attended.shape[:-1], maps.shape[-1])
        f_v = self.fc_gl(torch.tanh(torch.cat([pooled, attended.to(pooled.dtype)], -1)))
        return f_v, attention


class QuestionGuidedAttention(nn.Module):
    """Question-guided temporal attention over one modality (sec. 4.3; attn_a / attn_v of the public code).

    x = MultiheadAttention(query f_q, keys = values = the T segment features); h = LayerNorm(x + FFN(x)) with
    FFN = FC -> ReLU -> dropout -> FC and dropout on its output. Returns h (B, d) and the attention over the T
    segments (B, T), averaged over heads: the clean softmax in eval mode; in train mode PyTorch returns it after
    attention dropout.
    """

    def __init__(self, d_model: int = 512, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(d_model, d_model))
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, f_q: torch.Tensor, sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with fp32(sequence.device):
            seq = sequence.float()
            x, weights = self.attn(f_q.float()[:, None], seq, seq, need_weights=True)
        x = x[:, 0]
        return self.norm(x + self.dropout(self.ffn(x))), weights[:, 0]


class TemporalGrounding(nn.Module):
    """Temporal grounding (sec. 4.3): the question attends over the audio segments and, separately, over the
    spatially grounded visual segments. Returns h_a, h_v (B, d) and their attention (B, T) each."""

    def __init__(self, d_model: int = 512, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
        self.audio = QuestionGuidedAttention(d_model, heads, dropout)
        self.visual = QuestionGuidedAttention(d_model, heads, dropout)

    def forward(self, f_q: torch.Tensor, f_a: torch.Tensor, f_v: torch.Tensor):
        h_a, audio_weights = self.audio(f_q, f_a)
        h_v, visual_weights = self.visual(f_q, f_v)
        return h_a, h_v, audio_weights, visual_weights


class AnswerPrediction(nn.Module):
    """Multimodal fusion and answer prediction (sec. 4.4; fc_fusion and fc_ans of the public code).

    f_av = FC(tanh([h_a + mean_t f_a ; h_v + mean_t f_v])),  e = tanh(f_av * f_q),  logits = FC(e) (42 answers).
    """

    def __init__(self, d_model: int = 512, n_answers: int = len(ANSWERS)):
        super().__init__()
        self.fc_fusion = nn.Linear(2 * d_model, d_model)
        self.fc_ans = nn.Linear(d_model, n_answers)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, f_q: torch.Tensor) -> torch.Tensor:
        f_av = self.fc_fusion(torch.tanh(torch.cat([audio, visual], -1)))
        return self.fc_ans(torch.tanh(f_av * f_q))


def check_question_words(words: torch.Tensor, vocab_size: int) -> None:
    """Clear errors for question word ids that the question encoder cannot read (beyond their shape)."""
    if words.dtype != torch.int64:
        raise ValueError(f"batch['question_words'] is {words.dtype}, expected int64 word ids")
    if words.numel() and (int(words.min()) < 0 or int(words.max()) >= vocab_size):
        raise ValueError(f"batch['question_words'] holds ids outside [0, {vocab_size}): option vocab_size must be "
                         f"the length of the vocabulary the ids come from (avqa.data.words)")
    real = words != 0
    if bool((real[:, 1:] & ~real[:, :-1]).any()):
        raise ValueError("batch['question_words'] has padding (0) before a word: pad only at the end")
    if words.shape[0] and (words.shape[1] == 0 or not bool(real[:, 0].all())):
        raise ValueError("batch['question_words'] has a question without any word (all padding)")


@dataclass(frozen=True, kw_only=True)
class AVSTOptions(MapInputOptions):
    """AVST's options (build_model("avst", **options)); defaults: the public code's values."""

    vocab_size: int = option(doc="length of the question-word vocabulary (avqa.data.words), '<pad>' and '<unk>' "
                                 "included")
    d_model: int = option(512, "width d of every block")
    word_dim: int = option(512, "word embedding size of the question encoder")
    lstm_hidden: int = option(512, "hidden size of the question LSTM")
    lstm_layers: int = option(1, "layers of the question LSTM")
    heads: int = option(4, "heads of the temporal grounding's nn.MultiheadAttention")
    dropout: float = option(0.1, "dropout of the temporal grounding (attention weights, FFN)")
    match_weight: float = option(0.5, "weight of L_match in the QA objective (main_avst.py: 0.5)")
    objective: str = option("qa", "'qa' (L_qa + match_weight L_match) | 'grounding' (L_match only, the grounding "
                                  "pre-training; the QA path runs without gradients)")

    def __post_init__(self):
        check_choice("objective", self.objective, OBJECTIVES)
        if int(self.vocab_size) < 3:
            raise ValueError(f"vocab_size={self.vocab_size}: the vocabulary holds '<pad>', '<unk>' and at least one "
                             f"word")


class AVST(nn.Module):
    """AVST (see the module docstring). model(batch) returns a dict:

    logits (B, 42); spatial_attn (B, T, P): the audio-guided attention over the map positions of each question's
    own video (P = H*W); temporal_attn_audio, temporal_attn_visual (B, T): the question's attention over the
    audio and over the grounded visual segments; temporal_attn (B, 2T): both in the IL(V;A) token order, each
    halved (the layout avqa.reporting.attention draws); match_logits (U, T, 2): the match classifier on each
    video's own audio-visual segment pairs; mismatch_logits (U, T, 2) on video u's visual with video u-1's audio
    (only when U >= 2). Options: AVSTOptions.
    """

    Options = AVSTOptions

    def __init__(self, options: AVSTOptions):
        super().__init__()
        d_model, vocab_size = options.d_model, int(options.vocab_size)
        self.options = options
        self.objective = options.objective
        self.dims = dict(visual_dim=options.visual_dim, audio_dim=options.audio_dim, vocab_size=vocab_size)
        self.batch_shapes = {"visual": ("U", "T", None, None, options.visual_dim),
                             "audio": ("U", "T", options.audio_dim), "video_index": ("B",),
                             "question_words": ("B", None)}
        self.loss_weights = ({"qa": 1.0, "match": float(options.match_weight)} if options.objective == "qa"
                             else {"match": 1.0})
        self.visual_proj = VisualProjection(options.visual_dim, d_model)
        self.audio_proj = AudioProjection(options.audio_dim, d_model)
        self.spatial_grounding = SpatialGrounding(d_model)
        self.match_head = MatchHead(d_model)          # AVST's fc1..fc4: 2d -> d -> d/2 -> d/4 -> 2
        self.question_encoder = QuestionEncoder(vocab_size, options.word_dim, options.lstm_hidden,
                                                options.lstm_layers, d_model)
        self.temporal_grounding = TemporalGrounding(d_model, options.heads, options.dropout)
        self.answer = AnswerPrediction(d_model, options.n_answers)

    def grounding(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per unique video: f_a, f_v (U, T, d), the spatial attention and the match / mismatch logits."""
        maps = self.visual_proj(batch["visual"])                          # (U, T, P, d)
        f_a = self.audio_proj(batch["audio"])                             # (U, T, d)
        out = {"f_a": f_a}
        if maps.shape[0] > 1:
            # Row 1: video u's map grounded with video u-1's audio (rolling the audio, not the larger maps).
            other_audio = f_a.roll(1, 0)
            both, attention = self.spatial_grounding(maps, torch.stack([f_a, other_audio]))
            out["f_v"], out["attention"] = both[0], attention[0]
            out["mismatch_logits"] = self.match_head(other_audio, both[1])
        else:
            out["f_v"], out["attention"] = self.spatial_grounding(maps, f_a)
        out["match_logits"] = self.match_head(f_a, out["f_v"])
        return out

    def answer_logits(self, batch: dict[str, torch.Tensor], f_a: torch.Tensor, f_v: torch.Tensor):
        """Per question: the temporal grounding over its video's segments and the answer logits."""
        index = batch["video_index"]
        f_q = self.question_encoder(batch["question_words"])
        f_a, f_v = f_a[index], f_v[index]
        h_a, h_v, audio_w, visual_w = self.temporal_grounding(f_q, f_a, f_v)
        logits = self.answer(h_a + f_a.mean(1), h_v + f_v.mean(1), f_q)
        return logits, audio_w, visual_w

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "AVST")
        check_question_words(batch["question_words"], self.dims["vocab_size"])
        grounded = self.grounding(batch)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.objective == "qa"):
            logits, audio_w, visual_w = self.answer_logits(batch, grounded["f_a"], grounded["f_v"])
        out = {"logits": logits, "spatial_attn": grounded["attention"][batch["video_index"]],
               "temporal_attn_audio": audio_w, "temporal_attn_visual": visual_w,
               "temporal_attn": arrange_tokens(visual_w[..., None], audio_w[..., None], "IL(V;A)")[..., 0] / 2,
               "match_logits": grounded["match_logits"]}
        if "mismatch_logits" in grounded:
            out["mismatch_logits"] = grounded["mismatch_logits"]
        return out

    def load_pretrained(self, state_dict: dict[str, torch.Tensor]) -> list[str]:
        """The QA run's start from a grounding run (the trainer's init_from): its grounding blocks only."""
        return load_grounding(self, state_dict)

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """objective "qa": L_qa + match_weight L_match (sec. 4.4, main_avst.py: 0.5); "grounding": L_match.

        L_match = cross-entropy of the match classifier, label 1 on the U*T matched and 0 on the U*T mismatched
        segment pairs. With one unique video in the batch there are no mismatched pairs: L_match is 0 (in
        "grounding" a zero attached to the graph, so backward runs and every gradient is 0).
        Returns (total, {"qa", "match", "total"}) or, for "grounding", (total, {"match", "total"}).
        """
        if "mismatch_logits" in out:
            match = losses.match_loss(out["match_logits"], out["mismatch_logits"])
        else:
            match = out["match_logits"].float().sum() * 0.0
        if self.objective == "grounding":
            return losses.total_loss({"match": match}, self.loss_weights)
        qa = losses.qa_loss(out["logits"], batch["answer"])
        return losses.total_loss({"qa": qa, "match": match}, self.loss_weights)


def grounding_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of a (grounding run's) state dict that a QA run starts from: those of GROUNDING_BLOCKS
    (visual_proj, audio_proj, spatial_grounding, match_head: weights and the Standardize statistics)."""
    return {k: v for k, v in state_dict.items() if k.split(".", 1)[0] in GROUNDING_BLOCKS}


def load_grounding(model: AVST, state_dict: dict[str, torch.Tensor], source: str = "grounding checkpoint"
                   ) -> list[str]:
    """Initialise `model`'s grounding blocks from `state_dict` (strict=False for the rest); returns the keys.

    Every grounding entry of the model must be present with its shape (a different visual_dim or d_model is an
    error naming the key); the question encoder, temporal grounding and answer head keep their initialisation.
    """
    state = grounding_state(state_dict)
    expected = set(grounding_state(model.state_dict()))
    missing = sorted(expected - set(state))
    if missing:
        raise ValueError(f"{source}: lacks grounding entries {missing[:5]} (of {len(missing)}); "
                         f"is it an AVST state dict?")
    shapes = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(shapes[k].shape)}" for k, v in state.items()
             if k in shapes and v.shape != shapes[k].shape]
    if wrong:
        raise ValueError(f"{source}: entries of another shape than the model's: {wrong[:3]}")
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{source}: entries the model does not have: {result.unexpected_keys[:5]}")
    return sorted(state)
