"""QA-TIGER: Question-Aware Temporal Integration of Gaussian Experts for Reasoning (Kim, Jung, Suh, Zhang, Lee &
Hong, CVPR 2025, "Question-Aware Gaussian Experts for Audio-Visual Question Answering", arXiv 2503.04459; project
page aim-skku.github.io/QA-TIGER).

The paper's text is not in the shared papers folder, so docstrings name the paper's blocks (its Fig. 2 / sec. 3:
question-aware fusion, temporal integration by Gaussian experts, question-guided reasoning) and write each
computation out; where the description is silent the authors' public code (AIM-SKKU/QA-TIGER: src/models/net.py,
src/models/modules.py, configs/qa-tiger/vitl14.py) decides. Every departure from it is listed below.

Batch keys (QA-TIGER reads exactly TSPM's per-second features, plus the question's word features):
  visual              (U, T1, D)      CLIP ViT image embedding per 1-fps frame -> frame_dim (768 for ViT-L/14@336)
  visual_tokens       (U, T1, N, Dt)  each frame's ToMe-merged patch tokens at the ViT width -> n_tokens, token_dim
  audio               (U, T1, 128)    VGGish per second -> audio_dim
  question_clip       (B, D)          CLIP ViT text embedding of the question (encode_text) -> text_dim
  question_tokens     (B, L, Dw)      the question's per-token CLIP ViT text features (ln_final outputs, zero at
                                      padding) -> word_dim; L = the longest question's tokens, not 77
  question_token_mask (B, L)  bool    the real tokens (SOT, words, EOT)
  video_index         (B,)    int64   row of each question's video; answer (B,) for the loss
(The `prompt` TSPM reads is in the batch too and is not used: the public QA-TIGER config sets prompt_feat=None.)

Pipeline (d = d_model = 512, 8 heads everywhere, E = n_experts = 7 of which top_k = 7 are used, T1 = 60, N = 14):
  inputs --InputProjection--> audio a, frames v (U, T1, d); patches p (U, T1, N, d); question q (B, d);
                              words w (B, L, d)
  QuestionAwareFusion(a, v, w)    for x in {a, v}, y the other:                                        (B, T1, d)
      x' = LN(x + Drop(SelfAttn(x)) + Drop(CrossAttn(x, y)) + Drop(WordAttn(x, w)));  x'' = LN(x' + FFN(x'))
  PatchSelection(p, a'', v'')     per second t: P' = P_t + SelfAttn(P_t); [z_v, z_a] = Attn([v''_t; a''_t], P')
      p_a = LN(MLP(z_a)), p_v = LN(MLP(z_v))                                                        (B, T1, d) x 2
  GaussianExperts (audio)         z = Attn(q, a''); router pi = softmax(W_r z) -> top-K renormalised;
      expert e: centre mu_e = c_e + m tanh(u_e), width s_e = max(sigmoid(r_e), 0.09) / 9  ([u; r] = W_g z),
      c_e = linspace(m, 1 - m, E), m = 1 / (2E); g_e(t) = N(t / (T1 - 1); mu_e, s_e) normalised over t;
      f_a = LN( sum_k pi_k sum_t g_k(t) Expert_k(a''_t) )                                             (B, d)
  GaussianExperts (visual)        routing and Gaussians from Attn(q, v''); the experts read v'' + p_a and v'' + p_v:
      f_ap, f_vp                                                                                     (B, d) x 2
  QuestionGrounding (shared)      G(q, S) = LN(mean S + Drop(MLP(Attn(q, S))));
      f = G(q, [G(q, [f_ap, f_vp]), f_a])
  head                            logits = Linear(ReLU(f))                                            (B, 42)
Loss: cross-entropy over the 42 answers (the public training's only term).

Departures from the public code (each deliberate):
  - Word features are the question's real tokens with a mask (key padding in the word attention); the public
    model attends over all 77 CLIP positions, padding included (its text encoder returns the full context). With
    the mask, padding changes nothing and L is the longest question, not 77.
  - gaussian_norm "sum" (default): each expert's Gaussian is normalised to sum to one over the T1 seconds, so an
    expert's output is a weighted mean of its per-second outputs. The public code divides by the Gaussian's peak
    (max 1), so a wide expert contributes about (width x T1 x 2.5) times more than a narrow one before the
    LayerNorm; "peak" reproduces that.
  - Inputs are standardised per channel with train-split statistics and LayerNorm'ed before the projections
    (input_norm "standardize_ln", as this project's TSPM); the public code projects the raw features ("none").
  - Self- and cross-attention of the fusion layer depend on the video only and run once per unique video (the
    word attention and everything after it run per question); identical in eval mode, while in training the
    questions of one video share the dropout mask of those two terms.
  - The public centre clamp to [0, 1] is left out: mu_e stays inside [c_e - m, c_e + m], which is within [0, 1].
Kept from the public code: Kaiming-normal initialisation of the projections, FFN/MLPs, router, Gaussian predictor,
experts and head; the fusion layer shared by audio and visual, its FFN of width d; MLPs of width d / 2; one
grounding module applied twice; dropout 0.1; sigma 9 and the 0.09 width floor.
Recipe (configs/qa-tiger/vitl14.py): 15 epochs, batch 32, Adam lr 1e-4 betas (0.95, 0.999), StepLR 8 x 0.1.

Attention scores, softmax and the Gaussians run in float32 with autocast off (avqa.models.blocks.fp32).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import (FrameInputOptions, InputProjection, MultiHeadAttention, check_batch, check_choice,
                                fp32, option)

# The batch keys whose per-channel train statistics the input projections standardise with.
QA_TIGER_SOURCES = ("visual", "visual_tokens", "audio", "question_clip", "question_tokens")
GAUSSIAN_NORMS = ("sum", "peak")    # weights sum to one over time | the public code's peak of one


def kaiming_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """nn.Linear with the public code's initialisation: Kaiming-normal weight, zero bias."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.kaiming_normal_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(d_model: int) -> nn.Sequential:
    """d -> d/2 -> ReLU -> d (the public PatchSelecter / QstGrounding / expert MLPs)."""
    return nn.Sequential(kaiming_linear(d_model, d_model // 2), nn.ReLU(), kaiming_linear(d_model // 2, d_model))


# --- question-aware fusion -----------------------------------------------------------------------------------------
class QuestionAwareFusion(nn.Module):
    """Question-aware fusion (paper sec. 3, "question-aware fusion module"; public AVQCrossAttn): the question's
    words are injected into each modality by attention, beside self- and cross-modal attention.

    For x in {audio, frames} and y the other modality (one module shared by both directions, as the public code):
      x' = LayerNorm(x + Drop(SelfAttn(x)) + Drop(CrossAttn(x, y)) + Drop(WordAttn(x, w, word_mask)))
      out = LayerNorm(x' + Drop(FFN(x'))),  FFN = Linear(d, d) -> ReLU -> Drop -> Linear(d, d).
    Self- and cross-attention run once per unique video (U rows), the word attention once per question (B rows).
    forward(audio, frames (U, T1, d), words (B, L, d), word_mask (B, L), video_index (B,)) -> (B, T1, d) x 2.
    """

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.word_attn = MultiHeadAttention(d_model, heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(kaiming_linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout),
                                 kaiming_linear(d_model, d_model), nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, audio: torch.Tensor, frames: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor,
                video_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U, B = audio.shape[0], video_index.shape[0]
        x, y = torch.cat([audio, frames]), torch.cat([frames, audio])               # both directions: (2U, T1, d)
        # keys before queries in the self-attention (attend(x, *keys(x))): the projection order sets the order in
        # which autograd sums x's gradients, kept as first written so that trained runs stay bitwise the same
        per_video = (self.dropout(self.self_attn.attend(x, *self.self_attn.keys(x))[0])
                     + self.dropout(self.cross_attn(x, y)[0]))
        rows = torch.cat([video_index, video_index + U])                            # (2B,): audio rows, frame rows
        query = x[rows]
        k, v = self.word_attn.keys(words)
        words_in = self.dropout(self.word_attn.attend(query, k.repeat(2, 1, 1, 1), v.repeat(2, 1, 1, 1),
                                                      word_mask.repeat(2, 1))[0])
        fused = self.norm1(query + per_video[rows].to(words_in.dtype) + words_in)
        fused = self.norm2(fused + self.ffn(fused))
        return fused[:B], fused[B:]


# --- patch selection -----------------------------------------------------------------------------------------------
class PatchSelection(nn.Module):
    """Audio- and frame-guided patch selection (public PatchSelecter): per second t, the merged tokens P_t (N, d)
    exchange information, then the question-aware frame and audio features of that second query them:

      P'_t = P_t + SelfAttn(P_t)                                   (once per (video, second))
      [z_v,t ; z_a,t] = Attn([v_t ; a_t], P'_t, P'_t)              (per (question, second))
      p_v,t = LayerNorm_v(MLP(Drop(z_v,t))),  p_a,t = LayerNorm_a(MLP(Drop(z_a,t)))
    forward(patches (U, T1, N, d), audio, frames (B, T1, d), video_index (B,)) -> p_a, p_v (B, T1, d).
    """

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.mlp = mlp(d_model)
        self.norm_audio = nn.LayerNorm(d_model)
        self.norm_visual = nn.LayerNorm(d_model)

    def forward(self, patches: torch.Tensor, audio: torch.Tensor, frames: torch.Tensor,
                video_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        U, T1, N, d = patches.shape
        B = video_index.shape[0]
        tokens = patches.reshape(U * T1, N, d)
        tokens = tokens + self.self_attn.attend(tokens, *self.self_attn.keys(tokens))[0]   # keys first: see fusion
        k, v = self.cross_attn.keys(tokens)                                         # (U*T1, h, N, d_h)
        rows = (video_index[:, None] * T1 + torch.arange(T1, device=patches.device)).reshape(-1)   # (B*T1,)
        queries = torch.stack([frames, audio.to(frames.dtype)], dim=2).reshape(B * T1, 2, d)
        attended = self.mlp(self.dropout(self.cross_attn.attend(queries, k[rows], v[rows])[0])).reshape(B, T1, 2, d)
        return self.norm_audio(attended[:, :, 1]), self.norm_visual(attended[:, :, 0])


# --- temporal integration: question-aware Gaussian experts ----------------------------------------------------------
def gaussian_weights(centre: torch.Tensor, width: torch.Tensor, T: int, norm: str = "sum") -> torch.Tensor:
    """g(t) = exp(-(s_t - centre)^2 / (2 width^2)) on s_t = t / (T - 1), t = 0..T-1, normalised over t to sum one
    ("sum") or to a peak of one ("peak", the public code; its 1 / (sqrt(2 pi) width) factor cancels in both).
    centre, width (...,) float -> (..., T) float32."""
    check_choice("gaussian_norm", norm, GAUSSIAN_NORMS)
    s = torch.linspace(0, 1, T, device=centre.device)
    g = torch.exp(-(s - centre.float()[..., None]) ** 2 / (2 * width.float()[..., None] ** 2))
    return g / (g.sum(-1, keepdim=True) if norm == "sum" else g.amax(-1, keepdim=True))


class Experts(nn.Module):
    """E expert MLPs d -> d/2 -> ReLU -> d held as stacked weights (one batched product instead of E modules);
    Kaiming-normal weights, zero biases.

    mix(x (B, T, d), weights (B, E, T)) = sum_e sum_t weights[b, e, t] Expert_e(x_t)  (B, d). The output layer is
    linear, so it is applied after the sum over time: sum_t w_t (W2 h_t + b2) = W2 (sum_t w_t h_t) + b2 sum_t w_t,
    exactly, at 1/T of the per-second cost (the hidden layer h_t = ReLU(W1 x_t + b1) still runs per second).
    """

    def __init__(self, d_model: int, n_experts: int):
        super().__init__()
        hidden = d_model // 2
        self.w1 = nn.Parameter(torch.empty(n_experts, d_model, hidden))
        self.b1 = nn.Parameter(torch.zeros(n_experts, hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, hidden, d_model))
        self.b2 = nn.Parameter(torch.zeros(n_experts, d_model))
        for w in (self.w1, self.w2):                              # as kaiming_normal_ on each expert's Linear
            nn.init.normal_(w, std=math.sqrt(2.0 / w.shape[1]))

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., E, d/2): every expert's hidden layer."""
        return torch.relu(torch.einsum("...d,edh->...eh", x, self.w1.to(x.dtype)) + self.b1.to(x.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (..., E, d): every expert's output (for checks; the model uses mix)."""
        h = self.hidden(x)
        return torch.einsum("...eh,ehd->...ed", h, self.w2.to(h.dtype)) + self.b2.to(h.dtype)

    def mix(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)                                                           # (B, T, E, d/2)
        w = weights.to(h.dtype)
        pooled = torch.einsum("bet,bteh->beh", w, h)                                 # (B, E, d/2)
        return (torch.einsum("beh,ehd->bd", pooled, self.w2.to(h.dtype))
                + w.sum(-1) @ self.b2.to(h.dtype))


class GaussianExperts(nn.Module):
    """Temporal integration by question-aware Gaussian experts (paper sec. 3, "temporal integration module",
    mixture of experts; public TempMoE), for `branches` sequences that share one routing (audio: 1 branch; the
    visual module: 2, frames + audio-guided patches and frames + frame-guided patches).

    From the question q (B, d) and the sequence x (B, T1, d) that decides the routing:
      z = Attn(q, x, x)                                                      question-aware temporal summary
      pi = softmax(W_r z) (E);  K = top_k largest, renormalised to sum one   router
      [u_e, r_e] = W_g z;  mu_e = c_e + m tanh(u_e), c_e = linspace(m, 1 - m, E), m = 1 / (2E);
      s_e = max(sigmoid(r_e), min_width) / sigma                             expert e's centre and width in [0, 1]
      g_e(t) = gaussian_weights(mu_e, s_e, T1)                               expert e's weights over the seconds
      f_b = LayerNorm_b( sum_{e in K} pi_e sum_t g_e(t) Expert_e(y_b,t) )    for each branch input y_b (B, T1, d)
    Every expert is computed on every second (top_k = E in the paper's setting, so nothing is wasted there); the
    unselected ones get weight 0.
    Returns ([f_b (B, d)], {"router": pi (B, E), "experts": K (B, k) int64, "expert_weights": renormalised
    pi_K (B, k), "gaussians": g_K (B, k, T1)}), float32 diagnostics.
    """

    def __init__(self, d_model: int, heads: int, n_experts: int, top_k: int, sigma: float, min_width: float,
                 dropout: float, gaussian_norm: str, branches: int = 1):
        super().__init__()
        check_choice("gaussian_norm", gaussian_norm, GAUSSIAN_NORMS)
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k={top_k} must be between 1 and n_experts={n_experts}")
        self.top_k, self.sigma, self.min_width, self.gaussian_norm = top_k, sigma, min_width, gaussian_norm
        self.margin = 1.0 / (2 * n_experts)                  # each expert's centre moves within its own slot
        self.register_buffer("centres", torch.linspace(self.margin, 1 - self.margin, n_experts), persistent=False)
        self.query_attn = MultiHeadAttention(d_model, heads, dropout)
        self.router = kaiming_linear(d_model, n_experts)
        self.gauss = kaiming_linear(d_model, 2 * n_experts)
        self.experts = Experts(d_model, n_experts)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(branches))

    def route(self, question: torch.Tensor, sequence: torch.Tensor) -> dict[str, torch.Tensor]:
        """The router's top-K and each expert's Gaussian over the T1 seconds (all float32)."""
        z = self.query_attn(question[:, None], sequence)[0][:, 0]
        with fp32(question.device):
            probs = self.router(z.float()).softmax(-1)                                   # (B, E)
            top, experts = probs.topk(self.top_k, dim=-1)
            top = top / top.sum(-1, keepdim=True)
            shift, raw_width = self.gauss(z.float()).unflatten(-1, (-1, 2)).unbind(-1)   # (B, E) each
            centre = self.centres + self.margin * torch.tanh(shift)
            width = torch.sigmoid(raw_width).clamp_min(self.min_width) / self.sigma
            gaussians = gaussian_weights(centre, width, sequence.shape[1], self.gaussian_norm)   # (B, E, T1)
        return {"router": probs, "experts": experts, "expert_weights": top,
                "gaussians": gaussians.gather(1, experts[..., None].expand(-1, -1, gaussians.shape[-1])),
                "all_gaussians": gaussians}

    def forward(self, question: torch.Tensor, sequence: torch.Tensor, branches: list[torch.Tensor]
                ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        routing = self.route(question, sequence)
        # per expert: its routing weight (0 unless selected) times its Gaussian -> (B, E, T1)
        selected = torch.zeros_like(routing["router"]).scatter(1, routing["experts"], routing["expert_weights"])
        mixing = selected[..., None] * routing.pop("all_gaussians")
        outputs = [norm(self.experts.mix(x, mixing)) for norm, x in zip(self.norms, branches)]
        return outputs, routing


# --- question grounding, answer ------------------------------------------------------------------------------------
class QuestionGrounding(nn.Module):
    """Question-guided reasoning (paper sec. 3; public QstGrounding) over a small set S of fused features:

      G(q, S) = LayerNorm(mean_s S + Drop(MLP(Attn(q, S, S)))).
    forward(question (B, d), items (B, S, d)) -> (B, d).
    """

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads, dropout)
        self.mlp = mlp(d_model)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, question: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        attended = self.attn(question[:, None].to(items.dtype), items)[0][:, 0]
        return self.norm(items.mean(1) + self.dropout(self.mlp(attended)))


# --- the model -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class QATigerOptions(FrameInputOptions):
    """QA-TIGER's options (build_model("qa_tiger", **options)); defaults: the paper's / public config's values."""

    d_model: int = option(512, "width d of every block")
    heads: int = option(8, "heads of every attention")
    n_experts: int = option(7, "Gaussian experts E per temporal integration module")
    top_k: int = option(7, "experts the router selects (the public config: all 7)")
    sigma: float = option(9.0, "width divisor: s_e = max(sigmoid(r_e), min_width) / sigma")
    min_width: float = option(0.09, "floor of the experts' raw width")
    dropout: float = option(0.1, "dropout of the attention weights, FFNs and MLPs")
    gaussian_norm: str = option("sum", "each expert's Gaussian over time normalised to 'sum' one (own) | 'peak' one "
                                       "(the public code)")
    word_dim: int | None = option(None, "width of the question's per-token features; None: text_dim (CLIP's text "
                                        "width equals its embedding size for ViT-B-32, ViT-B-16 and ViT-L-14-336)")

    def __post_init__(self):
        super().__post_init__()
        check_choice("gaussian_norm", self.gaussian_norm, GAUSSIAN_NORMS)
        if not 1 <= self.top_k <= self.n_experts:
            raise ValueError(f"top_k={self.top_k} must be between 1 and n_experts={self.n_experts}")


class QATiger(nn.Module):
    """QA-TIGER (see the module docstring). model(batch) returns a dict:

    logits (B, 42);
    router_audio, router_visual (B, n_experts) float32: the router's softmax;
    experts_audio, experts_visual (B, top_k) int64: the selected experts;
    expert_weights_audio, expert_weights_visual (B, top_k) float32: their renormalised routing weights (sum 1);
    gaussians_audio, gaussians_visual (B, top_k, T1) float32: the selected experts' weights over the seconds.

    Options: QATigerOptions.
    """

    Options = QATigerOptions

    def __init__(self, options: QATigerOptions):
        super().__init__()
        d_model, input_norm = options.d_model, options.input_norm
        audio_dim, frame_dim, token_dim = options.audio_dim, options.frame_dim, options.token_dim
        text_dim = frame_dim if options.text_dim is None else options.text_dim
        word_dim = text_dim if options.word_dim is None else options.word_dim
        self.options = options
        self.dims = dict(frame_dim=frame_dim, token_dim=token_dim, n_tokens=options.n_tokens, audio_dim=audio_dim,
                         text_dim=text_dim, word_dim=word_dim)
        self.batch_shapes = {"visual": ("U", "T1", frame_dim),
                             "visual_tokens": ("U", "T1", options.n_tokens, token_dim),
                             "audio": ("U", "T1", audio_dim), "video_index": ("B",), "question_clip": ("B", text_dim),
                             "question_tokens": ("B", "L", word_dim), "question_token_mask": ("B", "L")}
        self.audio_proj = InputProjection(audio_dim, d_model, "audio", input_norm)
        self.frame_proj = InputProjection(frame_dim, d_model, "visual", input_norm)
        self.patch_proj = InputProjection(token_dim, d_model, "visual_tokens", input_norm)
        self.word_proj = InputProjection(word_dim, d_model, "question_tokens", input_norm)
        self.question_proj = InputProjection(text_dim, d_model, "question_clip", input_norm)
        for projection in (self.audio_proj, self.frame_proj, self.patch_proj, self.word_proj, self.question_proj):
            nn.init.kaiming_normal_(projection.proj.weight)
            nn.init.zeros_(projection.proj.bias)
        heads, dropout = options.heads, options.dropout
        self.fusion = QuestionAwareFusion(d_model, heads, dropout)
        self.patch_selection = PatchSelection(d_model, heads, dropout)
        expert_options = dict(d_model=d_model, heads=heads, n_experts=options.n_experts, top_k=options.top_k,
                              sigma=options.sigma, min_width=options.min_width, dropout=dropout,
                              gaussian_norm=options.gaussian_norm)
        self.audio_experts = GaussianExperts(**expert_options, branches=1)
        self.visual_experts = GaussianExperts(**expert_options, branches=2)
        self.grounding = QuestionGrounding(d_model, heads, dropout)
        self.head = kaiming_linear(d_model, options.n_answers)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "QA-TIGER")
        mask = batch["question_token_mask"]
        if mask.dtype != torch.bool or (mask.shape[0] and not bool(mask.any(1).all())):
            raise ValueError("batch['question_token_mask'] must be bool with at least one real token per question")
        index, mask = batch["video_index"], batch["question_token_mask"]
        audio = self.audio_proj(batch["audio"])                            # (U, T1, d)
        frames = self.frame_proj(batch["visual"])                          # (U, T1, d)
        patches = self.patch_proj(batch["visual_tokens"])                  # (U, T1, N, d)
        question = self.question_proj(batch["question_clip"])              # (B, d)
        words = self.word_proj(batch["question_tokens"])                   # (B, L, d)

        audio_q, frames_q = self.fusion(audio, frames, words, mask, index)                   # (B, T1, d) each
        patch_a, patch_v = self.patch_selection(patches, audio_q, frames_q, index)          # (B, T1, d) each
        (f_audio,), audio_routing = self.audio_experts(question, audio_q, [audio_q])
        (f_ap, f_vp), visual_routing = self.visual_experts(
            question, frames_q, [frames_q + patch_a.to(frames_q.dtype), frames_q + patch_v.to(frames_q.dtype)])
        visual = self.grounding(question, torch.stack([f_ap, f_vp.to(f_ap.dtype)], 1))
        fused = self.grounding(question, torch.stack([visual, f_audio.to(visual.dtype)], 1))
        out = {"logits": self.head(torch.relu(fused))}
        for name, routing in (("audio", audio_routing), ("visual", visual_routing)):
            out.update({f"{key}_{name}": value for key, value in routing.items()})
        return out

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_qa, cross-entropy over the 42 answers (the public training objective); (total, {"qa", "total"})."""
        return losses.total_loss({"qa": losses.qa_loss(out["logits"], batch["answer"])}, {"qa": 1.0})
