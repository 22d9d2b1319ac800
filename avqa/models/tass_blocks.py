"""TASS-Net's own blocks: the target word, TSG+ (eqs. 2-5), JTG (eqs. 13-16) and the 'w/o JTG' mean fusion.

Paper: Jiang & Yin, "CLIP-Powered TASS: Target-Aware Single-Stream Network for Audio-Visual Question Answering"
(arXiv 2405.07451; text in the shared papers folder, 001_20b6c203a3c35687.txt). Sections: 3.2 inputs and
pre-processing, 3.3 TSG+ (eqs. 2-7), 3.4 CMS loss and JTG (eqs. 8-19), 3.5 answer prediction (eq. 20).
The block structure where the paper is silent follows its predecessor TJSTG (arXiv 2305.12397, code
Bravo5542/TJSTG, net_tjstg/tsjt_net.py). Every place where the code departs from the paper is an option
(avqa.models.tass.TASSOptions) whose default is the paper's form, except the target word's selection, which the
paper does not describe; each option's docstring says which form is the paper's and which is TJSTG's.
The blocks TASS-Net shares with the other models (input projections, attention, match and answer heads, token
orders) are in avqa.models.blocks.

Shapes: B questions, U unique videos, T segments, P = 7 x 7 = 49 map positions, L question tokens, d = d_model.
Attention-type arithmetic (similarities, softmax, thresholds) runs in float32 with autocast disabled.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from avqa.models.blocks import (ORDERS, MultiHeadAttention, arrange_tokens, check_choice, fp32, input_normalisers,
                                split_tokens)

COMBINES = ("add", "mul", "max")
STREAMS = ("single", "dual")
POSITIONALS = ("none", "sinusoidal")
TARGETS = ("attention", "mask")
# Option values; the first of each is the default (the paper's form where the paper states one).
SIMILARITIES = ("dot", "cosine", "scaled_dot")     # TSG+ eqs. 3-4: paper dot | TJSTG cosine | dot / sqrt(d)
TARGET_TOKENS = ("words", "all")                   # target-word candidates: word tokens | also CLIP's SOT and EOT
TARGET_GRADS = ("straight_through", "none")        # target-word gradient: STE | TJSTG's hard argmax
MEAN_FUSIONS = ("paper", "tjstg")                  # eq. 16's MLP(Avg(f_av)) | TJSTG's FC(tanh([mean f_a; mean f_v]))
# Threshold tau of TSG+ per combination (paper Table 4/5: 0.025 ~ 1/49 for add; the mul row uses 0.02).
DEFAULT_TAU = {"add": 0.025, "max": 0.025, "mul": 0.02}
_EPS = 1e-8


# --- the target word (not in the paper; TJSTG's mechanism on CLIP tokens) ----------------------------------------
def word_token_mask(token_mask: torch.Tensor) -> torch.Tensor:
    """The word tokens of each question: `token_mask` (B, L) minus CLIP's start-of-text token (position 0) and
    end-of-text token (the last real position). SOT's output is the same for every question (causal attention)
    and EOT's is the sentence summary f_q is built from, so neither names a target. A question with no token
    left (only SOT and EOT) keeps all its real tokens."""
    positions = torch.arange(token_mask.shape[-1], device=token_mask.device)
    last = (positions * token_mask).argmax(-1, keepdim=True)         # index of the last True (EOT)
    words = token_mask & (positions != 0) & (positions != last)
    return torch.where(words.any(-1, keepdim=True), words, token_mask)


class TargetWord(nn.Module):
    """f_tgt, the question's target word feature (TSG+'s "interesting target feature", sec. 3.3).

    The paper does not say how the target is chosen (sec. 3.2 only tokenises the question); this is TJSTG's
    question-encoder mechanism adapted to CLIP tokens, not a form the paper states.
    mode "attention": the question summary f_q scores the candidate tokens (scaled dot product of a query
    projection of f_q with the projected token features); the argmax token is the target (as TJSTG's argmax of
    its question-LSTM attention). mode "mask" (own): the mean of the candidate tokens in `target_mask` (the
    question's first <Object> value); questions that name no object fall back to the attention choice.
    target_tokens: "words" (default): the candidates are word_token_mask(token_mask), never SOT or EOT; "all"
    (the project's earlier behaviour): every real token, SOT and EOT included.
    target_grad: "straight_through" (default): the forward value is exactly the argmax token, and the scorer
    gets the softmax's gradient (one-hot + (softmax - softmax.detach())), so the selector can learn;
    "none": TJSTG's hard argmax, no gradient reaches the scorer. The paper is silent on both.
    The chosen feature goes through a two-layer MLP (TJSTG's fc1, fc2). Returns (f_tgt (B, d), weights (B, L)).
    """

    def __init__(self, token_dim: int, d_model: int, mode: str = "attention", target_tokens: str = "words",
                 target_grad: str = "straight_through", input_norm: str = "standardize_ln"):
        super().__init__()
        check_choice("target", mode, TARGETS)
        check_choice("target_tokens", target_tokens, TARGET_TOKENS)
        check_choice("target_grad", target_grad, TARGET_GRADS)
        self.mode, self.target_tokens, self.target_grad = mode, target_tokens, target_grad
        self.standardize, self.norm = input_normalisers(token_dim, "tokens", input_norm)
        self.token_proj = nn.Linear(token_dim, d_model)
        self.query = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, d_model))

    def candidates(self, token_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: the tokens the target may be chosen from."""
        return word_token_mask(token_mask) if self.target_tokens == "words" else token_mask

    def selection(self, words: torch.Tensor, f_q: torch.Tensor, token_mask: torch.Tensor,
                  target_mask: torch.Tensor) -> torch.Tensor:
        candidates = self.candidates(token_mask)
        with fp32(words.device):
            scores = torch.einsum("bld,bd->bl", words.float(), self.query(f_q.float())) / math.sqrt(words.shape[-1])
            scores = scores.masked_fill(~candidates, float("-inf"))
            soft = scores.softmax(-1)
            hard = F.one_hot(scores.argmax(-1), scores.shape[-1]).to(soft.dtype)
            if self.target_grad == "straight_through":
                weights = hard + (soft - soft.detach())  # exactly `hard` forward, soft gradient backward
            else:
                weights = hard
            if self.mode == "mask":
                named = target_mask & candidates
                counts = named.sum(-1, keepdim=True)
                mean = named.to(soft.dtype) / counts.clamp_min(1)
                weights = torch.where(counts > 0, mean, weights)
        return weights

    def forward(self, tokens: torch.Tensor, f_q: torch.Tensor, token_mask: torch.Tensor,
                target_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        words = self.token_proj(self.norm(self.standardize(tokens)))
        weights = self.selection(words, f_q, token_mask, target_mask)
        chosen = torch.einsum("bl,bld->bd", weights.to(words.dtype), words)
        return self.mlp(chosen), weights


# --- TSG+ ------------------------------------------------------------------------------------------------------
def combine_attention(s_a: torch.Tensor, s_q: torch.Tensor | None, combine: str = "add",
                      tau: float = 0.025) -> torch.Tensor:
    """TSG+ spatial attention from the audio and target distributions over positions (sec. 3.3, eqs. 2 and 5).

    Eq. 5: s_q_hat = s_q * I(s_q - tau), I(x) = 1 for x >= 0 (the threshold is on s_q alone; TJSTG instead
    thresholds the sum s_a + s_q at 0.01). Eq. 2's weights: softmax(s_a + s_q_hat) ("add", the paper's choice),
    softmax(s_a * s_q_hat) ("mul") or softmax(max(s_a, s_q_hat)) ("max") (Table 4), over the last axis.
    s_q None (not target-aware, Table 2 "w/o T-A"): softmax(s_a), i.e. eq. 2 with s_q_hat removed. The outer
    softmax takes probabilities, so its max/min over positions is at most e^2 whatever the similarity.
    """
    check_choice("combine", combine, COMBINES)
    if s_q is None:
        return s_a.softmax(-1)
    s_q_hat = s_q * (s_q >= tau).to(s_q.dtype)
    if combine == "add":
        scores = s_a + s_q_hat
    elif combine == "mul":
        scores = s_a * s_q_hat
    else:
        scores = torch.maximum(s_a, s_q_hat)
    return scores.softmax(-1)


class TSGPlus(nn.Module):
    """Target-aware spatial grounding TSG+ (sec. 3.3, eqs. 2-5).

    For each question b and segment t, over the P map positions of visual video v(b) with the audio of video a(b):
      (3) s_a = softmax_p(sim(f_a, f_v,m)),  (4) s_q = softmax_p(sim(f_tgt, f_v,m)),
      (5), (2) attention = combine_attention(s_a, s_q, combine, tau)  (s_q dropped when not target-aware),
      f_v,i = sum_p attention * f_v,m (over the unnormalised maps, as eq. 2),
      f_v = FC(tanh([f_v,g ; f_v,i])) with f_v,g = mean_p f_v,m (the text after eq. 5).
    similarity: "dot" (default, the paper's eqs. 3-4: plain (f_a^t)^T f_v,m^t, no scaling, unlike eqs. 8-9);
    "cosine" (TJSTG: L2-normalised features; at init the cosines spread so little over the 49 positions that s_q
    never reaches tau = 0.025, which switches the target path off); "scaled_dot": dot / sqrt(d).
    `maps` (U, T, P, d) holds the unique videos' projected maps, `f_a` (U, T, d) their audio; `audio_index` (B,)
    picks each question's audio video and `visual_index` (B,) or (K, B) its visual video(s): K = 2 computes the
    matched features (row 0 = the question's video) and the unmatched ones for L_s (row 1 = another video) in
    one pass.
    Efficiency: nothing of size (B, T, P, d) is gathered; the similarities of every query with every unique
    video are one batched matrix product per segment (U is small), and the attended feature is a product of
    the attention scattered over (U, P) with the maps, so backward needs no index_put on the maps.
    Returns f_v (B, T, d) and the attention (B, T, P), or (K, B, T, d) and (K, B, T, P) for a 2-D visual_index.
    """

    def __init__(self, d_model: int, target_aware: bool = True, combine: str = "add", tau: float = 0.025,
                 similarity: str = "dot"):
        super().__init__()
        check_choice("combine", combine, COMBINES)
        check_choice("similarity", similarity, SIMILARITIES)
        self.target_aware = bool(target_aware)
        self.combine = combine
        self.tau = float(tau)
        self.similarity = similarity
        self.fc = nn.Linear(2 * d_model, d_model)

    def distributions(self, maps: torch.Tensor, f_a: torch.Tensor, f_tgt: torch.Tensor | None,
                      audio_index: torch.Tensor, visual_index: torch.Tensor) -> torch.Tensor:
        """Eqs. 3-4 for visual_index (K, B): s (T, Q, K, B, P) in float32, s[:, 0] = s_a and, when target-aware,
        s[:, 1] = s_q (Q = 2; otherwise Q = 1)."""
        U, T, P, d = maps.shape
        B = visual_index.shape[1]
        with fp32(maps.device):
            keys, audio = maps.float(), f_a.float()
            target = f_tgt.float() if self.target_aware else None
            if self.similarity == "cosine":
                keys, audio = F.normalize(keys, dim=-1), F.normalize(audio, dim=-1)
                target = F.normalize(target, dim=-1) if self.target_aware else None
            keys = keys.transpose(0, 1).reshape(T, U * P, d)
            queries = [audio[audio_index].transpose(0, 1)]                                      # (T, B, d)
            if self.target_aware:
                queries.append(target.expand(T, B, d))
            logits = torch.bmm(torch.cat(queries, 1), keys.transpose(1, 2)).view(T, len(queries), B, U, P)
            if self.similarity == "scaled_dot":
                logits = logits / math.sqrt(d)
            rows = torch.arange(B, device=maps.device)
            return logits[:, :, rows, visual_index].softmax(-1)

    def attention(self, maps: torch.Tensor, f_a: torch.Tensor, f_tgt: torch.Tensor | None,
                  audio_index: torch.Tensor, visual_index: torch.Tensor) -> torch.Tensor:
        """Spatial attention (T, K, B, P) in float32 for visual_index (K, B) (eqs. 2 and 5)."""
        s = self.distributions(maps, f_a, f_tgt, audio_index, visual_index)
        with fp32(maps.device):
            return combine_attention(s[:, 0], s[:, 1] if self.target_aware else None, self.combine, self.tau)

    def forward(self, maps: torch.Tensor, f_a: torch.Tensor, f_tgt: torch.Tensor | None,
                audio_index: torch.Tensor, visual_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        single = visual_index.dim() == 1
        visual_index = visual_index.reshape(-1, len(audio_index))
        U, T, P, d = maps.shape
        K, B = visual_index.shape
        attention = self.attention(maps, f_a, f_tgt, audio_index, visual_index)             # (T, K, B, P)
        onehot = F.one_hot(visual_index, U).to(attention.dtype)                              # (K, B, U)
        scattered = torch.einsum("kbu,tkbp->tkbup", onehot, attention).reshape(T, K * B, U * P)
        attended = torch.bmm(scattered.to(maps.dtype), maps.transpose(0, 1).reshape(T, U * P, d))
        attended = attended.view(T, K, B, d).permute(1, 2, 0, 3)                             # (K, B, T, d)
        pooled = maps.mean(2)[visual_index]                                                  # (K, B, T, d)
        f_v = self.fc(torch.tanh(torch.cat([pooled, attended.to(pooled.dtype)], -1)))
        attention = attention.permute(1, 2, 0, 3)
        return (f_v[0], attention[0]) if single else (f_v, attention)


def sinusoidal_positions(n: int, d: int, device=None) -> torch.Tensor:
    """Fixed sine/cosine position codes (n, d) (Vaswani et al. 2017); neighbours get similar codes."""
    position = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    codes = torch.zeros(n, d, device=device)
    codes[:, 0::2] = torch.sin(position * freq)
    codes[:, 1::2] = torch.cos(position * freq[: d // 2])
    return codes


# --- JTG ---------------------------------------------------------------------------------------------------------
def question_query(attention: MultiHeadAttention, f_q: torch.Tensor, tokens: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 14-15: the question f_q (B, d) as the one query of `attention` over `tokens` (B, S, d) -> the attended
    feature (B, d) and the head-averaged weights (B, S). Eq. 15 is written without heads or scaling; this is
    TJSTG's nn.MultiheadAttention form (scaled per head); the CMS loss reads the weights before dropout."""
    x, weights = attention(f_q[:, None], tokens)
    return x[:, 0], weights[:, 0]


class JTG(nn.Module):
    """Joint audio-visual temporal grounding JTG (sec. 3.4, eqs. 13-16).

    An LSTM per modality (bidirectional, d/2 per direction, as TJSTG; the paper gives no size); single stream
    (eq. 13): the 2T post-LSTM tokens in `order` (IL(V;A) = [v1; a1; ...; vT; aT]), optionally plus sinusoidal
    position codes, and one question-query multi-head attention over them (eqs. 14-15); dual stream: one
    question-query attention per modality, the two outputs fused by a linear layer on their concatenation (the
    older two-stream design, paper Table 7).
    ffn: False (default, the paper's eq. 14: f_att is the attention output x); True (TJSTG):
    f_att = LayerNorm(x + Dropout(FFN(x))).
    mean_fusion: "paper" (default, eq. 16): f_av^q = f_att + MLP(Avg(f_av)), Avg the mean over the 2T post-LSTM
    tokens (order-free, so the same for every order and for the dual stream) and MLP = Linear(d, d) -> ReLU ->
    Linear(d, d) (the paper names an MLP without giving its layers; this is the smallest one);
    "tjstg": f_av^q = f_att + FC(tanh([mean_t f_a ; mean_t f_v])) on the pre-LSTM features (TJSTG's fc_fusion).
    Returns f_av^q (B, d) and the temporal attention: "tokens" (B, 2T) over the sequence in `order` (dual: the
    two per-modality distributions placed at their positions and halved), "visual" and "audio" (B, T) each a
    distribution over T (single stream: the weights at that modality's positions renormalised, for eqs. 17-19).
    """

    def __init__(self, d_model: int, heads: int, dropout: float, order: str = "IL(V;A)", stream: str = "single",
                 positional: str = "none", ffn: bool = False, mean_fusion: str = "paper"):
        super().__init__()
        check_choice("order", order, ORDERS)
        check_choice("stream", stream, STREAMS)
        check_choice("positional", positional, POSITIONALS)
        check_choice("mean_fusion", mean_fusion, MEAN_FUSIONS)
        if d_model % 2:
            raise ValueError(f"d_model={d_model} must be even (bidirectional LSTMs of d_model/2 per direction)")
        self.order, self.stream, self.positional = order, stream, positional
        self.use_ffn, self.mean_fusion = bool(ffn), mean_fusion
        self.lstm_v = nn.LSTM(d_model, d_model // 2, batch_first=True, bidirectional=True)
        self.lstm_a = nn.LSTM(d_model, d_model // 2, batch_first=True, bidirectional=True)
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        if stream == "dual":
            self.attn_audio = MultiHeadAttention(d_model, heads, dropout)
            self.stream_fuse = nn.Linear(2 * d_model, d_model)
        # Created in this order so that the TJSTG options reproduce earlier runs' initialisation exactly.
        if self.use_ffn:
            self.ffn = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(d_model, d_model))
            self.ffn_dropout = nn.Dropout(dropout)
            self.norm = nn.LayerNorm(d_model)
        if mean_fusion == "paper":
            self.mean_mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.ReLU(), nn.Linear(d_model, d_model))
        else:
            self.fuse_mean = nn.Linear(2 * d_model, d_model)

    def forward(self, f_v: torch.Tensor, f_a: torch.Tensor, f_q: torch.Tensor,
                audio_index: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """f_v (B, T, d), f_q (B, d); f_a (B, T, d), or (U, T, d) per unique video with audio_index (B,).

        The audio sequence depends on the video only, so with audio_index the audio LSTM runs once per video
        (U rows instead of B; the same result as indexing first).
        """
        v_seq, _ = self.lstm_v(f_v)
        a_seq, _ = self.lstm_a(f_a)
        if audio_index is not None:
            a_seq, f_a = a_seq[audio_index], f_a[audio_index]
        if self.stream == "single":
            tokens = arrange_tokens(v_seq, a_seq, self.order)
            if self.positional == "sinusoidal":
                tokens = tokens + sinusoidal_positions(*tokens.shape[1:], device=tokens.device).to(tokens.dtype)
            x, weights = question_query(self.attn, f_q, tokens)
            visual_w, audio_w = split_tokens(weights, self.order)
            visual_w = visual_w / visual_w.sum(-1, keepdim=True).clamp_min(_EPS)
            audio_w = audio_w / audio_w.sum(-1, keepdim=True).clamp_min(_EPS)
        else:
            x_v, visual_w = question_query(self.attn, f_q, v_seq)
            x_a, audio_w = question_query(self.attn_audio, f_q, a_seq)
            x = self.stream_fuse(torch.cat([x_v, x_a], -1))
            weights = arrange_tokens(visual_w[..., None], audio_w[..., None], self.order)[..., 0] / 2
        f_att = self.norm(x + self.ffn_dropout(self.ffn(x))) if self.use_ffn else x
        if self.mean_fusion == "paper":
            mean_av = self.mean_mlp(torch.cat([v_seq, a_seq.to(v_seq.dtype)], 1).mean(1))
        else:
            mean_av = self.fuse_mean(torch.tanh(torch.cat([f_a.mean(1), f_v.mean(1)], -1)))
        return f_att + mean_av, {"tokens": weights, "visual": visual_w, "audio": audio_w}


class MeanFusion(nn.Module):
    """The 'w/o JTG' replacement (own; the paper's Table 2 does not say what replaces JTG):
    f_av = FC(tanh([mean_t f_a ; mean_t f_v])) of the TSG+ outputs, no LSTMs and no temporal grounding."""

    def __init__(self, d_model: int):
        super().__init__()
        self.fuse_mean = nn.Linear(2 * d_model, d_model)

    def forward(self, f_v: torch.Tensor, f_a: torch.Tensor) -> torch.Tensor:
        return self.fuse_mean(torch.tanh(torch.cat([f_a.mean(1), f_v.mean(1)], -1)))
