"""SaSR-Net: source-aware semantic representation network (Yang et al. 2024, "SaSR-Net: Source-Aware Semantic
Representation Network for Enhancing Audio-Visual Question Answering", sec. 3; public code Tianyu-yang-anna/SaSR-Net).

The paper numbers no equation; docstrings cite the section and write each one out. Per batch:
  visual maps (U, T, H, W, C) --VisualProjection--> X (U, T, P, d), f^r_v = mean_p X        [sec. 3.1]
  audio (U, T, 128) --AudioProjection--> f^r_a (U, T, d);  sentence --QuestionProjection--> f_Q (B, d)
  SourceTokens G_C (C, d), one learnable token per instrument category                       [sec. 3.2]
  SaSRBlock per modality (once per unique video):                                            [sec. 3.2-3.3]
      [f^s; G^m] = S([f^r; G_C]),  S(f) = softmax(f f^T / sqrt(D)) f
      G^m' = G^m + FC(CrossAttn(G^m, f^s)),  f^g = FC(CrossAttn(f^s, G^m')),
      CrossAttn(a, b) = softmax(FC(a) FC(b)^T / sqrt(D)) FC(b);  presence logits FC(G^m') (C,)
  SpatialAttention: f^attn_v = softmax_p(cos(X_t, f^g_a,t)) . X_t,
      f^sa_v = FC(tanh([f^g_v ; f^attn_v]))                                                  [sec. 3.4]
  MatchHead on [f^g_a ; f^sa_v]: matched (own visual) / mismatched (another video's visual)   [sec. 3.4]
  TemporalAttention (per question): f^ta_A = softmax(f_Q f^g_A^T / sqrt(D)) f^g_A,
      f^ta_V = softmax(f_Q f^sa_V^T / sqrt(D)) f^sa_V                                        [sec. 3.5]
  FusionHead: f_av = FC(tanh([f^ta_A + mean_t f^g_A ; f^ta_V + mean_t f^g_V])),
      logits = FC(tanh(f_av * f_Q))                                                          [sec. 3.6]
Loss (sec. 3.6): L = L_avqa + 0.5 L_source + 0.5 L_reg + 0.5 L_match, with
  L_source = BCE(sigmoid(FC(G^a')), p_a) + BCE(sigmoid(FC(G^v')), p_v)   (presence per category, sec. 3.3),
             each a mean over the questions whose video has labels in that modality (see source_loss)
  L_reg    = CE(FC(g_i), i) over the C raw tokens                        (token i is category i, sec. 3.3)
  L_match  = CE(matched, 1) + CE(mismatched, 0) over the segments        (sec. 3.4; one mean over both)

Departures, and why:
  - Question: the paper encodes words with an LSTM trained from scratch (public code: QstEncoder over a
    93-word vocabulary); here f_Q is the CLIP-RN50 sentence embedding (standardised, projected), the question
    feature of every model of this pipeline's CLIP block, so SaSR-Net and TASS-Net read the same features.
  - Visual input: the paper uses ResNet-18 maps (512 channels; public code 14x14) directly; here any
    (H, W, visual_dim) map is standardised and projected to d (TASS-Net's VisualProjection) and f^r_v is its
    mean over positions (the public code average-pools the raw map). visual_dim=512 takes ResNet-18 maps.
  - Spatial attention similarity: the paper writes a plain product X^T f^g_a; the public code L2-normalises
    both sides (a cosine), which keeps the softmax over positions from saturating; we follow the code for the
    similarity and the paper for the attended value (the maps themselves, not their unit vectors).
  - SaSR block: the paper's equations are used as written (one parameter-free self-attention, single-head
    cross-attentions). The public code replaces them with GroupViT-style blocks (3 transformer layers of 8
    heads per modality, a hard Gumbel assignment of features to tokens, an audio branch that also attends to
    the visual features) -- far more parameters and FLOPs (see tests/test_sasr.py for ours).
  - Temporal attention: the paper's parameter-free form (question vector as the query). The public code uses
    AVST's 4-head nn.MultiheadAttention with a residual FFN; its attention dropout (0.1) is kept here as
    dropout on the temporal attention weights (option `dropout`).
  - Mismatched pairs: the paper draws a random 1-s clip of another video for each segment; here, as in
    TASS-Net, segment t of video u is paired with segment t of the next unique video (u + 1) mod U of the batch
    (no mismatched pairs, and L_match = 0, when the batch holds a single video).
  - Shortcut: the paper adds mean_t f^g_V to the visual branch; the public code adds mean_t f^sa_V. Paper.
  - Token initialisation (the paper gives none; public code: zeros): N(0, sigma^2) with sigma^2 = ln(C) / sqrt(D),
    so a token's self-score in S, |g|^2 / sqrt(D), is ln C on average against scores near 0 with the other
    entries: at initialisation a token weighs itself about as much as the C - 1 other tokens together
    (C / (2C - 1 + T)) and gives the T features T / (2C - 1 + T) (0.19 at T = 10, C = 22). With N(0, 1) tokens
    (the former init) the self-score is sqrt(D) = 22.6 and each token put weight 1.0000 on itself: the token
    half of S was the identity. Zeros (public code) or the ViT-style std 0.02 make the C tokens leave S as the
    same mixture (pairwise cosine 1.000), so they would start indistinguishable. `SaSRNet.joint_attention_shares`
    measures where S's weights go; numbers in docs/sasr-net.md (tests/test_sasr.py prints them).
Size and forward GFLOPs (against the paper's 65.1M, which includes its ResNet-18, word LSTM and grouping
transformers): docs/models.md, checked by tests/test_sasr.py.
Losses average over questions (each question a sample, as in the paper): per-video outputs are gathered with
video_index, so a video asked three times counts three times.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avqa.vocab import INSTRUMENTS
from avqa.models import losses
from avqa.models.blocks import (AnswerHead, AudioProjection, MapInputOptions, MatchHead, QuestionProjection,
                                SentenceOptions, VisualProjection, check_batch, fp32, option)

SOURCE_KEYS = ("sources_audio", "sources_visual")


def self_attention_weights(f: torch.Tensor) -> torch.Tensor:
    """softmax(f f^T / sqrt(D)) over the rows of f (..., S, D): S(f)'s weights (..., S, S), in float32."""
    with fp32(f.device):
        f = f.float()
        return (f @ f.transpose(-1, -2) / math.sqrt(f.shape[-1])).softmax(-1)


def self_attention(f: torch.Tensor) -> torch.Tensor:
    """S(f) = softmax(f f^T / sqrt(D)) f over the rows of f (..., S, D) (sec. 3.2), in float32."""
    with fp32(f.device):
        return self_attention_weights(f) @ f.float()


def token_init_std(n_sources: int, d_model: int) -> float:
    """sigma with sigma^2 = ln(C) / sqrt(D): the expected self-score |g|^2 / sqrt(D) of a N(0, sigma^2) token in S
    is ln C, so a token starts weighing itself like the C - 1 other tokens together (see the module docstring)."""
    return math.sqrt(math.log(max(n_sources, 2)) / math.sqrt(d_model))


def attention_shares(weights: torch.Tensor, n_features: int) -> dict[str, float]:
    """Where the rows of S's weights (..., T + C, T + C) over [f^r ; G_C] go, averaged over the batch: each token's
    weight on the T features, on itself and on the other tokens; each feature's weight on the C tokens and on
    itself; the largest weight a token puts on itself."""
    T = n_features
    diagonal = torch.diagonal(weights, dim1=-2, dim2=-1)
    tokens, features = weights[..., T:, :], weights[..., :T, :]
    return {"token_to_features": float(tokens[..., :T].sum(-1).mean()),
            "token_to_self": float(diagonal[..., T:].mean()),
            "token_to_other_tokens": float((tokens[..., T:].sum(-1) - diagonal[..., T:]).mean()),
            "token_max_self": float(diagonal[..., T:].max()),
            "feature_to_tokens": float(features[..., T:].sum(-1).mean()),
            "feature_to_self": float(diagonal[..., :T].mean())}


class CrossAttention(nn.Module):
    """CrossAttn(a, b) = softmax(FC_q(a) FC_k(b)^T / sqrt(D)) FC_v(b) (sec. 3.3); scores and mix in float32.

    a (N, S_a, d), b (N, S_b, d) -> (N, S_a, d) and the weights (N, S_a, S_b).
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = self.q(a), self.k(b), self.v(b)
        with fp32(a.device):
            weights = (q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
            return weights @ v.float(), weights


class SourceTokens(nn.Module):
    """Source-wise learnable tokens G_C = {g_i}, i = 1..C, one per instrument category (sec. 3.2), shared by
    both modalities, and the L_reg classifier FC(g_i) -> C category logits (sec. 3.3).
    Initialised N(0, token_init_std(C, D)^2), so that they and the features attend to each other in S from the
    first step (see the module docstring)."""

    def __init__(self, n_sources: int, d_model: int):
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(n_sources, d_model) * token_init_std(n_sources, d_model))
        self.classifier = nn.Linear(d_model, n_sources)

    def forward(self) -> torch.Tensor:
        return self.tokens

    def category_logits(self) -> torch.Tensor:
        """FC(g_i) for every token: (C, C); row i should classify as category i."""
        return self.classifier(self.tokens)


class SaSRBlock(nn.Module):
    """Source-aware semantic representation of one modality (sec. 3.2 self-attention, sec. 3.3 cross-attention).

    features f^r (U, T, d), tokens G_C (C, d):
      [f^s ; G^m] = S([f^r ; G_C])                    joint self-attention over the T segments and C tokens
      G^m' = G^m + FC(CrossAttn(G^m, f^s))            tokens gather the segments
      f^g  = FC(CrossAttn(f^s, G^m'))                 segments re-expressed through the tokens
      presence = FC(G^m') (U, C)                      per-category presence logits for L_source
    Returns f^g (U, T, d), presence logits (U, C) and the segment-over-token weights (U, T, C).
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.token_attn = CrossAttention(d_model)
        self.token_fc = nn.Linear(d_model, d_model)
        self.feature_attn = CrossAttention(d_model)
        self.feature_fc = nn.Linear(d_model, d_model)
        self.presence = nn.Linear(d_model, 1)

    @staticmethod
    def joint(features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """[f^r ; G_C] per video: (U, T + C, d) in float32."""
        return torch.cat([features.float(), tokens.float().expand(features.shape[0], -1, -1)], 1)

    def forward(self, features: torch.Tensor, tokens: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T = features.shape[1]
        mixed = self_attention(self.joint(features, tokens))
        f_s, g = mixed[:, :T], mixed[:, T:]
        gathered, _ = self.token_attn(g, f_s)
        g_updated = g + self.token_fc(gathered)
        expressed, weights = self.feature_attn(f_s, g_updated)
        return self.feature_fc(expressed), self.presence(g_updated).squeeze(-1), weights


class SpatialAttention(nn.Module):
    """Multi-modal spatial attention (sec. 3.4): the source-aware audio finds its source on the visual map.

    attention_t = softmax_p(cos(X_t,p, f^g_a,t)) over the P positions (cosine: see the module docstring),
    f^attn_v,t = sum_p attention_t,p X_t,p,  f^sa_v,t = FC(tanh([f^g_v,t ; f^attn_v,t])).
    enabled=False (the "w/o SA" ablation): uniform attention, i.e. f^attn_v = mean_p X.
    maps (U, T, P, d), f_a, f_v (U, T, d) -> f^sa (U, T, d) and the attention (U, T, P) in float32.
    """

    def __init__(self, d_model: int, enabled: bool = True):
        super().__init__()
        self.enabled = bool(enabled)
        self.fc = nn.Linear(2 * d_model, d_model)

    def attention(self, maps: torch.Tensor, f_a: torch.Tensor) -> torch.Tensor:
        with fp32(maps.device):
            if not self.enabled:
                return maps.new_full(maps.shape[:3], 1.0 / maps.shape[2], dtype=torch.float32)
            cosine = torch.einsum("utpd,utd->utp", F.normalize(maps.float(), dim=-1), F.normalize(f_a.float(), dim=-1))
            return cosine.softmax(-1)

    def forward(self, maps: torch.Tensor, f_a: torch.Tensor, f_v: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        attention = self.attention(maps, f_a)
        with fp32(maps.device):
            attended = torch.einsum("utp,utpd->utd", attention, maps.float())
        f_sa = self.fc(torch.tanh(torch.cat([f_v.float(), attended], -1)))
        return f_sa, attention


class TemporalAttention(nn.Module):
    """Multi-modal temporal attention (sec. 3.5): the question picks the moments of one modality's sequence.

    f^ta = softmax_t(f_Q . f_t / sqrt(D)) f  over the T segments (parameter-free, as the paper writes it);
    dropout on the weights while training (see the module docstring); enabled=False (the "w/o TA" ablation):
    uniform weights, f^ta = mean_t f. f_q (B, d), sequence (B, T, d) -> f^ta (B, d), clean weights (B, T).
    """

    def __init__(self, dropout: float = 0.1, enabled: bool = True):
        super().__init__()
        self.enabled = bool(enabled)
        self.dropout = nn.Dropout(dropout)

    def forward(self, f_q: torch.Tensor, sequence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with fp32(sequence.device):
            sequence = sequence.float()
            if self.enabled:
                scores = torch.einsum("btd,bd->bt", sequence, f_q.float()) / math.sqrt(sequence.shape[-1])
                weights = scores.softmax(-1)
            else:
                weights = sequence.new_full(sequence.shape[:2], 1.0 / sequence.shape[1])
            return torch.einsum("bt,btd->bd", self.dropout(weights), sequence), weights


class FusionHead(nn.Module):
    """Shortcut and fusion, answer prediction (sec. 3.6):
    f_av = FC(tanh([f^ta_A + mean_t f^g_A ; f^ta_V + mean_t f^g_V])),  logits = FC(tanh(f_av * f_Q))."""

    def __init__(self, d_model: int, n_answers: int):
        super().__init__()
        self.fuse = nn.Linear(2 * d_model, d_model)
        self.answer = AnswerHead(d_model, n_answers)

    def forward(self, ta_audio: torch.Tensor, g_audio: torch.Tensor, ta_visual: torch.Tensor,
                g_visual: torch.Tensor, f_q: torch.Tensor) -> torch.Tensor:
        audio = ta_audio + g_audio.mean(1)
        visual = ta_visual + g_visual.mean(1)
        f_av = self.fuse(torch.tanh(torch.cat([audio.float(), visual.float()], -1)))
        return self.answer(f_av, f_q)


@dataclass(frozen=True, kw_only=True)
class SaSROptions(MapInputOptions, SentenceOptions):
    """SaSR-Net's options (build_model("sasr", **options)); defaults: the paper's values."""

    d_model: int = option(512, "width d of every block (the paper's embedding size D)")
    n_sources: int = option(len(INSTRUMENTS), "instrument categories C, one source token each (sec. 3.2)")
    dropout: float = option(0.1, "dropout on the temporal attention weights (the public code's attention dropout)")
    use_spatial: bool = option(True, "multi-modal spatial attention (sec. 3.4); off: uniform (Table 4 w/o SA)")
    use_temporal: bool = option(True, "multi-modal temporal attention (sec. 3.5); off: uniform (Table 4 w/o TA)")
    source_weight: float = option(0.5, "lambda_1, weight of L_source (sec. 3.6); 0 switches it off")
    reg_weight: float = option(0.5, "lambda_2, weight of L_reg (sec. 3.6); 0 switches it off")
    match_weight: float = option(0.5, "lambda_3, weight of L_match (sec. 3.6); 0 switches it off")


class SaSRNet(nn.Module):
    """SaSR-Net (see the module docstring). model(batch) returns a dict:

    logits (B, 42); spatial_attn (B, T, H*W): the audio's attention over each question's own video map;
    temporal_attn_audio, temporal_attn_visual (B, T): the question's attention over the segments;
    temporal_attn (B, 2T): both, interleaved [v1; a1; ...] (IL(V;A), each halved, as avqa.reporting reads it);
    source_logits_audio, source_logits_visual (B, C): presence logits FC(G^m') of the question's video;
    source_attn_audio, source_attn_visual (B, T, C): each segment's attention over the tokens;
    token_logits (C, C): FC(g_i) of L_reg; match_logits, mismatch_logits (B, T, 2): the L_match classifier on
    matched / mismatched segment pairs (only with match_weight > 0 and at least two unique videos).

    Batch: the contract's visual, audio, video_index, sentence (tokens and question_words are not read) and,
    for model.loss with source_weight > 0, sources_audio / sources_visual (U, n_sources) multi-hot floats with
    optional sources_mask_audio / sources_mask_visual (U,) 0/1 floats (absent: every video labelled).
    """

    Options = SaSROptions

    def __init__(self, options: SaSROptions):
        super().__init__()
        d_model, n_sources = options.d_model, options.n_sources
        self.options = options
        self.dims = dict(visual_dim=options.visual_dim, audio_dim=options.audio_dim,
                         sentence_dim=options.sentence_dim)
        self.batch_shapes = {"visual": ("U", "T", None, None, options.visual_dim),
                             "audio": ("U", "T", options.audio_dim), "video_index": ("B",),
                             "sentence": ("B", options.sentence_dim)}
        self.n_sources = n_sources
        self.loss_weights = {"qa": 1.0, "source": float(options.source_weight), "reg": float(options.reg_weight),
                             "match": float(options.match_weight)}
        self.visual_proj = VisualProjection(options.visual_dim, d_model)
        self.audio_proj = AudioProjection(options.audio_dim, d_model)
        self.question_proj = QuestionProjection(options.sentence_dim, d_model)
        self.source_tokens = SourceTokens(n_sources, d_model)
        self.sasr_audio = SaSRBlock(d_model)
        self.sasr_visual = SaSRBlock(d_model)
        self.spatial = SpatialAttention(d_model, options.use_spatial)
        if self.loss_weights["match"] > 0:
            self.match_head = MatchHead(d_model)
        self.temporal = TemporalAttention(options.dropout, options.use_temporal)
        self.fusion_head = FusionHead(d_model, options.n_answers)

    def video_features(self, visual: torch.Tensor, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything that depends on the video only, once per unique video (sec. 3.1-3.4)."""
        maps = self.visual_proj(visual)                                   # (U, T, P, d)
        f_r_a = self.audio_proj(audio)                                    # (U, T, d)
        tokens = self.source_tokens()
        g_a, presence_a, source_attn_a = self.sasr_audio(f_r_a, tokens)
        g_v, presence_v, source_attn_v = self.sasr_visual(maps.mean(2), tokens)
        f_sa, spatial = self.spatial(maps, g_a, g_v)
        video = {"maps": maps, "g_audio": g_a, "g_visual": g_v, "sa_visual": f_sa, "spatial_attn": spatial,
                 "source_logits_audio": presence_a, "source_logits_visual": presence_v,
                 "source_attn_audio": source_attn_a, "source_attn_visual": source_attn_v}
        if self.loss_weights["match"] > 0 and maps.shape[0] > 1:
            # L_match pairs (sec. 3.4): each video's audio with its own visual, and with the next video's.
            other = (torch.arange(maps.shape[0], device=maps.device) + 1) % maps.shape[0]
            f_sa_other, _ = self.spatial(maps[other], g_a, g_v[other])
            video["match_logits"] = self.match_head(g_a, f_sa)
            video["mismatch_logits"] = self.match_head(g_a, f_sa_other)
        return video

    @torch.no_grad()
    def joint_attention_shares(self, batch: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
        """Diagnostic: per modality, where the weights of S([f^r ; G_C]) go for the batch's videos
        (attention_shares: tokens on features, on themselves, ...)."""
        check_batch(batch, self.batch_shapes, "SaSR-Net")
        features = {"audio": self.audio_proj(batch["audio"]), "visual": self.visual_proj(batch["visual"]).mean(2)}
        tokens = self.source_tokens()
        return {modality: attention_shares(self_attention_weights(SaSRBlock.joint(f, tokens)), f.shape[1])
                for modality, f in features.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "SaSR-Net")
        index = batch["video_index"]
        video = self.video_features(batch["visual"], batch["audio"])
        f_q = self.question_proj(batch["sentence"])                       # (B, d)
        g_a, g_v, f_sa = video["g_audio"][index], video["g_visual"][index], video["sa_visual"][index]
        ta_audio, weights_audio = self.temporal(f_q, g_a)
        ta_visual, weights_visual = self.temporal(f_q, f_sa)
        out = {"logits": self.fusion_head(ta_audio, g_a, ta_visual, g_v, f_q),
               "spatial_attn": video["spatial_attn"][index],
               "temporal_attn_audio": weights_audio, "temporal_attn_visual": weights_visual,
               "temporal_attn": torch.stack([weights_visual, weights_audio], -1).flatten(1) / 2,
               "token_logits": self.source_tokens.category_logits()}
        for key in ("source_logits_audio", "source_logits_visual", "source_attn_audio", "source_attn_visual",
                    "match_logits", "mismatch_logits"):
            if key in video:
                out[key] = video[key][index]
        return out

    def source_loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> torch.Tensor:
        """L_source: BCE of the audio presence logits against sources_audio plus the same for visual (sec. 3.3),
        each a mean over the C categories and over the questions whose video has labels in that modality
        (sources_mask_{modality} = 1; absent mask: all). A video without labels (mask 0: not in the label table,
        or no positive evidence, avqa.data.instruments.source_targets) adds nothing; a batch without any gives 0
        for that modality, with zero gradient."""
        missing = [k for k in SOURCE_KEYS if k not in batch]
        if missing:
            raise KeyError(f"batch lacks {missing}: SaSR-Net's L_source needs the per-video instrument labels "
                           f"(avqa.data.instruments); set source_weight=0 to train without them")
        index, U, total = batch["video_index"], batch["visual"].shape[0], 0.0
        for modality in ("audio", "visual"):
            labels = batch[f"sources_{modality}"]
            if labels.shape != (U, self.n_sources):
                raise ValueError(f"batch['sources_{modality}'] has shape {tuple(labels.shape)}, expected "
                                 f"({U}, {self.n_sources}) (U videos x categories)")
            mask = batch.get(f"sources_mask_{modality}", labels.new_ones(U))
            if mask.shape != (U,):
                raise ValueError(f"batch['sources_mask_{modality}'] has shape {tuple(mask.shape)}, expected ({U},)")
            per_question = F.binary_cross_entropy_with_logits(out[f"source_logits_{modality}"].float(),
                                                              labels[index].float(), reduction="none").mean(-1)
            weight = mask[index].float()
            total = total + (per_question * weight).sum() / weight.sum().clamp_min(1.0)   # 0/1 mask
        return total

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_avqa + source_weight L_source + reg_weight L_reg + match_weight L_match (sec. 3.6).

        A term with weight 0 is 0 (and not computed); L_match is 0 for a batch of one video.
        Returns (total, {"qa", "source", "reg", "match", "total"} as floats).
        """
        qa = losses.qa_loss(out["logits"], batch["answer"])
        zero = qa.new_zeros(())
        weights = self.loss_weights
        source = self.source_loss(batch, out) if weights["source"] > 0 else zero
        token_logits = out["token_logits"].float()
        reg = (F.cross_entropy(token_logits, torch.arange(len(token_logits), device=token_logits.device))
               if weights["reg"] > 0 else zero)
        match = (losses.match_loss(out["match_logits"], out["mismatch_logits"])
                 if weights["match"] > 0 and "match_logits" in out else zero)
        return losses.total_loss({"qa": qa, "source": source, "reg": reg, "match": match}, weights)
