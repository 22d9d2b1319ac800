"""TASS-Net: target-aware single-stream network (Jiang & Yin 2024, arXiv 2405.07451, sec. 3).

Pipeline per batch (blocks and their equations: avqa.models.tass_blocks, shared ones avqa.models.blocks):
  visual maps (U, T, 7, 7, 2048) --VisualProjection (once per unique video)--> f_v,m (U, T, 49, d)  [sec. 3.2, 4.1]
  audio (U, T, 128) --AudioProjection--> f_a (U, T, d);  sentence --QuestionProjection--> f_q (B, d)
  tokens + f_q --TargetWord--> f_tgt (B, d)                     [not in the paper; TJSTG's argmax word, adapted]
  TSG+(f_v,m, f_a, f_tgt) --> f_v (B, T, d) and the spatial attention            [sec. 3.3, eqs. 2-5]
  MatchHead([f_a ; f_v]) on matched / unmatched pairs --> L_s                      [sec. 3.3, eqs. 6-7]
  JTG(f_v, f_a, f_q) --> f_av^q (B, d) and the temporal attention                 [sec. 3.4, eqs. 13-16]
  AnswerHead(f_av^q, f_q) --> logits (B, 42)                                      [sec. 3.5, eq. 20]
Loss (avqa.models.losses, sec. 4.1): L = L_qa + cms_weight * L_cms + ls_weight * L_s (paper: 1 and 0.5).

Ablation switches (TASSOptions, paper tables 2-7, audited row by row in docs/ablations.md): target_aware,
combine, tau, use_ls, use_cms, use_tsg, use_jtg, order, stream, and `positional` (not in the paper).
Each auxiliary loss belongs to its module (sec. 4.3: "the entire TSG+ module along with its corresponding L_s",
"JTG module (with its L_cms)"): use_ls unset follows use_tsg and use_cms unset follows use_jtg. L_s without TSG+
(on the globally pooled maps; no paper row) must be asked for with use_ls=True; use_cms=True without JTG is an
error (no question-attention distributions to compare). `model.switches` holds the resolved values.
Paper-versus-TJSTG forms (default = the paper's): similarity, jtg_ffn, mean_fusion, answer_tanh; the target word
(target, target_tokens, target_grad) is not in the paper; input_norm departs from it by default. TJSTG's forms
throughout: similarity="cosine", target_tokens="all", jtg_ffn=True, mean_fusion="tjstg", answer_tanh=True.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import (INPUT_NORMS, ORDERS, AnswerHead, AudioProjection, MapInputOptions, MatchHead,
                                QuestionProjection, SentenceOptions, VisualProjection, check_batch, check_choice, option)
from avqa.models.tass_blocks import (COMBINES, DEFAULT_TAU, JTG, MEAN_FUSIONS, POSITIONALS, SIMILARITIES, STREAMS,
                                     TARGET_GRADS, TARGET_TOKENS, TARGETS, MeanFusion, TargetWord, TSGPlus)


@dataclass(frozen=True, kw_only=True)
class TASSOptions(MapInputOptions, SentenceOptions):
    """TASS-Net's options (build_model("tass", **options)). Each default is the paper's form, except where the line
    says otherwise; the paper-versus-TJSTG forms are detailed in the blocks' docstrings (avqa.models.tass_blocks)."""

    d_model: int = option(512, "width d of every block (sec. 4.1)")
    heads: int = option(4, "heads of JTG's question-query attention (eq. 15 in TJSTG's multi-head form)")
    dropout: float = option(0.1, "dropout on JTG's attention weights (and its FFN with jtg_ffn)")
    target_aware: bool = option(True, "TSG+ uses the target word (eqs. 4-5); off: the audio only (Table 2 w/o T-A)")
    target: str = option("attention", "target word: 'attention' (the argmax-scored token; TJSTG's, the paper names "
                                      "no rule) | 'mask' (the stored first-<Object> tokens; own)")
    combine: str = option("add", "TSG+ combination of s_a and the thresholded s_q (eq. 2, Table 4): add | mul | max")
    tau: float | None = option(None, "TSG+ threshold on s_q (eq. 5, Table 5); None: 0.025 for add / max, 0.02 "
                                     "for mul")
    use_tsg: bool = option(True, "TSG+ (sec. 3.3); off: the globally pooled visual feature, and no L_s unless "
                                 "use_ls=True")
    use_jtg: bool = option(True, "JTG (sec. 3.4); off: MeanFusion of the mean audio and visual features, no L_cms")
    use_ls: bool | None = option(None, "L_s, the audio-visual match loss (eqs. 6-7); None: = use_tsg")
    use_cms: bool | None = option(None, "L_cms (eqs. 17-19); None: = use_jtg; True without JTG is an error")
    order: str = option("IL(V;A)", "token order of the single stream (eq. 13, Table 6): IL(V;A) | IL(A;V) | "
                                   "Cat(V;A) | Cat(A;V)")
    stream: str = option("single", "JTG 'single' stream (eq. 13) | 'dual': one attention per modality (Table 7)")
    positional: str = option("none", "'sinusoidal' position codes on the single-stream tokens (in neither the "
                                     "paper nor TJSTG: without them the four orders differ only by rounding)")
    cms_weight: float = option(1.0, "weight of L_cms in L (sec. 4.1: 1)")
    ls_weight: float = option(0.5, "weight of L_s in L (sec. 4.1: lambda = 0.5)")
    token_dim: int = option(512, "CLIP-RN50 per-token feature size")
    similarity: str = option("dot", "TSG+ similarity (eqs. 3-4): 'dot' (paper) | 'cosine' (TJSTG) | "
                                    "'scaled_dot' (dot / sqrt(d))")
    target_tokens: str = option("words", "target candidates: 'words' (never CLIP's SOT / EOT) | 'all' (every real "
                                         "token, the earlier behaviour); paper silent")
    target_grad: str = option("straight_through", "target-word gradient: 'straight_through' | 'none' (TJSTG's hard "
                                                  "argmax); paper silent")
    jtg_ffn: bool = option(False, "TJSTG's FFN + residual + LayerNorm after JTG's attention (eq. 14 has none)")
    mean_fusion: str = option("paper", "eq. 16: 'paper' (MLP of the mean post-LSTM token) | 'tjstg' "
                                       "(FC(tanh([mean f_a; mean f_v])))")
    answer_tanh: bool = option(False, "TJSTG's tanh before the answer classifier (eq. 20 has none)")
    input_norm: str = option("standardize_ln", "'standardize_ln' (a departure: Standardize + LayerNorm before every "
                                               "projection, needed with random encoders) | 'none' (the paper's)")

    def __post_init__(self):
        for name, choices in (("combine", COMBINES), ("order", ORDERS), ("stream", STREAMS),
                              ("positional", POSITIONALS), ("similarity", SIMILARITIES), ("target", TARGETS),
                              ("target_tokens", TARGET_TOKENS), ("target_grad", TARGET_GRADS),
                              ("mean_fusion", MEAN_FUSIONS), ("input_norm", INPUT_NORMS)):
            check_choice(name, getattr(self, name), choices)  # also when the block that uses it is switched off
        if self.use_cms and not self.use_jtg:
            raise ValueError("use_cms=True needs use_jtg=True: L_cms compares JTG's question-attention distributions "
                             "(eqs. 17-19); 'w/o JTG' removes it with JTG (sec. 4.3)")


class TASSNet(nn.Module):
    """TASS-Net (see the module docstring; options: TASSOptions). model(batch) returns a dict:

    logits (B, 42); spatial_attn (B, T, 49): TSG+ attention over the map positions of each question's own video
    (uniform when use_tsg=False: global average pooling); temporal_attn (B, 2T): JTG question attention over the
    audio-visual tokens in `order` (dual stream: both per-modality distributions at their positions, halved);
    temporal_attn_visual, temporal_attn_audio (B, T): the per-modality distributions L_cms compares (uniform
    when use_jtg=False: mean pooling); target_weights (B, L): the question tokens chosen as target;
    match_logits, mismatch_logits (B, T, 2): the L_s classifier on matched / unmatched segment pairs (only
    with use_ls and at least two unique videos in the batch).
    L_s negatives (eqs. 6-7; the paper says only "sampled from different videos"): each segment's own audio and
    target with the next unique video of the batch at the same segment (own; TJSTG draws a random segment of a
    random other video of the split).
    """

    Options = TASSOptions

    def __init__(self, options: TASSOptions):
        super().__init__()
        self.options = options
        d_model, input_norm = options.d_model, options.input_norm
        self.dims = dict(visual_dim=options.visual_dim, audio_dim=options.audio_dim,
                         sentence_dim=options.sentence_dim, token_dim=options.token_dim)
        self.batch_shapes = {"visual": ("U", "T", None, None, options.visual_dim),
                             "audio": ("U", "T", options.audio_dim), "video_index": ("B",),
                             "sentence": ("B", options.sentence_dim), "tokens": ("B", "L", options.token_dim),
                             "token_mask": ("B", "L"), "target_mask": ("B", "L")}
        self.use_tsg, self.use_jtg = bool(options.use_tsg), bool(options.use_jtg)
        # Each auxiliary loss goes with its module unless set explicitly (sec. 4.3, "w/o TSG+" and "w/o JTG").
        self.use_ls = self.use_tsg if options.use_ls is None else bool(options.use_ls)
        self.use_cms = self.use_jtg if options.use_cms is None else bool(options.use_cms)
        self.target_aware = bool(options.target_aware)
        combine = options.combine
        tau = DEFAULT_TAU[combine] if options.tau is None else float(options.tau)
        self.loss_weights = {"qa": 1.0, "cms": float(options.cms_weight), "match": float(options.ls_weight)}
        # The resolved ablation switches, as the tables' rows read them (tests/test_switches.py checks each is used).
        self.switches = dict(target_aware=self.target_aware, combine=combine, tau=tau, use_tsg=self.use_tsg,
                             use_jtg=self.use_jtg, use_ls=self.use_ls, use_cms=self.use_cms, order=options.order,
                             stream=options.stream, positional=options.positional,
                             cms_weight=float(options.cms_weight), ls_weight=float(options.ls_weight))
        self.visual_proj = VisualProjection(options.visual_dim, d_model, input_norm)
        self.audio_proj = AudioProjection(options.audio_dim, d_model, input_norm)
        self.question_proj = QuestionProjection(options.sentence_dim, d_model, input_norm)
        if self.use_tsg and self.target_aware:
            self.target_word = TargetWord(options.token_dim, d_model, options.target, options.target_tokens,
                                          options.target_grad, input_norm)
        if self.use_tsg:
            self.tsg = TSGPlus(d_model, self.target_aware, combine, tau, options.similarity)
        if self.use_ls:
            self.match_head = MatchHead(d_model)
        self.jtg = (JTG(d_model, options.heads, options.dropout, options.order, options.stream, options.positional,
                        bool(options.jtg_ffn), options.mean_fusion)
                    if self.use_jtg else MeanFusion(d_model))
        self.answer_head = AnswerHead(d_model, options.n_answers, tanh=bool(options.answer_tanh))

    # --- visual features per question ---------------------------------------------------------------------
    def visual_features(self, maps: torch.Tensor, f_a: torch.Tensor, f_tgt: torch.Tensor | None,
                        audio_index: torch.Tensor, visual_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f_v (..., B, T, d) of the videos in visual_index (B,) or (K, B), grounded with audio_index's audio."""
        if self.use_tsg:
            return self.tsg(maps, f_a, f_tgt, audio_index, visual_index)
        pooled = maps.mean(2)[visual_index]
        uniform = maps.new_full((*visual_index.shape, *maps.shape[1:3]), 1.0 / maps.shape[2], dtype=torch.float32)
        return pooled, uniform

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        check_batch(batch, self.batch_shapes, "TASS-Net")
        if not bool(batch["token_mask"].any(-1).all()):
            raise ValueError("batch['token_mask'] has a question without any real token")
        index = batch["video_index"]
        maps = self.visual_proj(batch["visual"])          # (U, T, P, d): the 2048 -> d projection once per video
        f_a_video = self.audio_proj(batch["audio"])       # (U, T, d)
        f_q = self.question_proj(batch["sentence"])       # (B, d)
        out: dict[str, torch.Tensor] = {}
        f_tgt = None
        if self.use_tsg and self.target_aware:
            f_tgt, out["target_weights"] = self.target_word(batch["tokens"], f_q, batch["token_mask"],
                                                            batch["target_mask"])
        f_a = f_a_video[index]
        if self.use_ls and maps.shape[0] > 1:
            # Unmatched pairs for L_s (eqs. 6-7): each segment's own audio (and target) with the next unique
            # video's visual maps at the same segment; the paper says only "sampled from different videos".
            other = (index + 1) % maps.shape[0]
            both, attention = self.visual_features(maps, f_a_video, f_tgt, index, torch.stack([index, other]))
            f_v, out["spatial_attn"] = both[0], attention[0]
            out["match_logits"] = self.match_head(f_a, f_v)
            out["mismatch_logits"] = self.match_head(f_a, both[1])
        else:
            f_v, out["spatial_attn"] = self.visual_features(maps, f_a_video, f_tgt, index, index)
        if self.use_jtg:
            fused, temporal = self.jtg(f_v, f_a_video, f_q, index)
            out["temporal_attn"] = temporal["tokens"]
            out["temporal_attn_visual"], out["temporal_attn_audio"] = temporal["visual"], temporal["audio"]
        else:
            fused = self.jtg(f_v, f_a)
            T = f_v.shape[1]
            out["temporal_attn"] = f_v.new_full((f_v.shape[0], 2 * T), 0.5 / T, dtype=torch.float32)
            out["temporal_attn_visual"] = out["temporal_attn_audio"] = out["temporal_attn"][:, :T] * 2
        out["logits"] = self.answer_head(fused, f_q)
        return out

    def loss(self, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]
             ) -> tuple[torch.Tensor, dict[str, float]]:
        """L = L_qa + cms_weight L_cms + ls_weight L_s (sec. 4.1 "Training Strategy"; paper weights 1 and 0.5).

        A switched-off or unavailable term is 0: L_cms needs use_cms (which needs JTG); L_s needs use_ls and >= 2
        unique videos in the batch.
        Returns (total, {"qa", "cms", "match", "total"} as floats).
        """
        qa = losses.qa_loss(out["logits"], batch["answer"])
        zero = qa.new_zeros(())
        cms = (losses.cms_loss(out["temporal_attn_visual"], out["temporal_attn_audio"])
               if self.use_cms else zero)
        match = (losses.match_loss(out["match_logits"], out["mismatch_logits"])
                 if "match_logits" in out else zero)
        return losses.total_loss({"qa": qa, "cms": cms, "match": match}, self.loss_weights)
