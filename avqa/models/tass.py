"""TASS-Net: target-aware single-stream network (Jiang & Yin 2024, arXiv 2405.07451, sec. 3).

Pipeline per batch (see avqa.models.blocks for each block's equations):
  visual maps (U, T, 7, 7, 2048) --VisualProjection (once per unique video)--> f_v,m (U, T, 49, d)  [sec. 3.2, 4.1]
  audio (U, T, 128) --AudioProjection--> f_a (U, T, d);  sentence --QuestionProjection--> f_q (B, d)
  tokens + f_q --TargetWord--> f_tgt (B, d)                     [not in the paper; TJSTG's argmax word, adapted]
  TSG+(f_v,m, f_a, f_tgt) --> f_v (B, T, d) and the spatial attention            [sec. 3.3, eqs. 2-5]
  MatchHead([f_a ; f_v]) on matched / unmatched pairs --> L_s                      [sec. 3.3, eqs. 6-7]
  JTG(f_v, f_a, f_q) --> f_av^q (B, d) and the temporal attention                 [sec. 3.4, eqs. 13-16]
  AnswerHead(f_av^q, f_q) --> logits (B, 42)                                      [sec. 3.5, eq. 20]
Loss (avqa.models.losses, sec. 4.1): L = L_qa + cms_weight * L_cms + ls_weight * L_s (paper: 1 and 0.5).

Ablation switches (constructor options; paper tables 2-7, audited row by row in docs/ablations.md): target_aware,
combine, tau, use_ls, use_cms, use_tsg, use_jtg, order, stream; `positional` adds sine/cosine position codes to the
single-stream tokens (off in the paper and in TJSTG: without any position information the attention is invariant to
the token order, so the four orders then differ only by floating-point rounding).
Each auxiliary loss belongs to its module (sec. 4.3: "the entire TSG+ module along with its corresponding L_s",
"JTG module (with its L_cms)"): use_ls unset follows use_tsg and use_cms unset follows use_jtg. L_s without TSG+
(on the globally pooled maps; no paper row) must be asked for with use_ls=True; use_cms=True without JTG is an
error (no question-attention distributions to compare). `model.switches` holds the resolved values.
Paper-versus-TJSTG switches (default = the paper's form): similarity, jtg_ffn, mean_fusion, answer_tanh; the
target word (target_tokens, target_grad) is not in the paper; input_norm departs from it by default.
The earlier behaviour of this model, TJSTG's forms throughout: similarity="cosine", target_tokens="all",
jtg_ffn=True, mean_fusion="tjstg", answer_tanh=True (target_grad="straight_through", input_norm as default).
"""
from __future__ import annotations

import torch
from torch import nn

from avqa.models import losses
from avqa.models.blocks import (COMBINES, DEFAULT_TAU, INPUT_NORMS, JTG, MEAN_FUSIONS, ORDERS, POSITIONALS,
                                SIMILARITIES, STREAMS, TARGET_GRADS, TARGET_TOKENS, AnswerHead, AudioProjection,
                                MatchHead, MeanFusion, QuestionProjection, TargetWord, TSGPlus, VisualProjection,
                                check_choice)
from avqa.data.vocab import ANSWERS

BATCH_KEYS = ("visual", "audio", "video_index", "sentence", "tokens", "token_mask", "target_mask")


def check_batch(batch: dict, visual_dim: int, audio_dim: int, sentence_dim: int, token_dim: int) -> None:
    """Clear errors for a batch that breaks the model batch contract (the contract: avqa/models/__init__.py)."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise KeyError(f"batch lacks {missing}; the model batch contract needs {list(BATCH_KEYS)}")
    visual, audio, index = batch["visual"], batch["audio"], batch["video_index"]
    if visual.dim() != 5 or visual.shape[-1] != visual_dim:
        raise ValueError(f"batch['visual'] has shape {tuple(visual.shape)}, expected (U, T, 7, 7, {visual_dim})")
    if audio.shape[:2] != visual.shape[:2] or audio.shape[-1] != audio_dim:
        raise ValueError(f"batch['audio'] has shape {tuple(audio.shape)}, expected {tuple(visual.shape[:2])} "
                         f"+ ({audio_dim},) to match batch['visual']")
    B = index.shape[0]
    if batch["sentence"].shape != (B, sentence_dim):
        raise ValueError(f"batch['sentence'] has shape {tuple(batch['sentence'].shape)}, "
                         f"expected ({B}, {sentence_dim})")
    if batch["tokens"].shape[0] != B or batch["tokens"].shape[-1] != token_dim:
        raise ValueError(f"batch['tokens'] has shape {tuple(batch['tokens'].shape)}, expected ({B}, L, {token_dim})")
    if B and (int(index.min()) < 0 or int(index.max()) >= visual.shape[0]):
        raise ValueError(f"batch['video_index'] holds values outside [0, {visual.shape[0]}) (U = visual rows)")
    if not bool(batch["token_mask"].any(-1).all()):
        raise ValueError("batch['token_mask'] has a question without any real token")


class TASSNet(nn.Module):
    """TASS-Net (see the module docstring). model(batch) returns a dict:

    logits (B, 42); spatial_attn (B, T, 49): TSG+ attention over the map positions of each question's own video
    (uniform when use_tsg=False: global average pooling); temporal_attn (B, 2T): JTG question attention over the
    audio-visual tokens in `order` (dual stream: both per-modality distributions at their positions, halved);
    temporal_attn_visual, temporal_attn_audio (B, T): the per-modality distributions L_cms compares (uniform
    when use_jtg=False: mean pooling); target_weights (B, L): the question tokens chosen as target;
    match_logits, mismatch_logits (B, T, 2): the L_s classifier on matched / unmatched segment pairs (only
    with use_ls and at least two unique videos in the batch).

    Options: d_model (512), heads (4), dropout (0.1); target_aware (off: TSG+ uses the audio only, no target
    word); target "attention" (the argmax-scored token; TJSTG's mechanism, the paper names no rule) | "mask"
    (the stored first-<Object> tokens); combine "add" | "mul" | "max"; tau (None: 0.025 for add/max, 0.02 for
    mul); use_tsg (off: global average pooled visual feature, and no L_s unless use_ls=True); use_jtg (off:
    MeanFusion of the mean audio and visual features, and no L_cms; mean_fusion does not apply); use_ls (None:
    = use_tsg), use_cms (None: = use_jtg; True without JTG is an error); order "IL(V;A)" | "IL(A;V)" |
    "Cat(V;A)" | "Cat(A;V)"; stream "single" | "dual"; positional "none" | "sinusoidal"; cms_weight (1.0),
    ls_weight (0.5); input sizes visual_dim (2048), audio_dim (128), sentence_dim (1024), token_dim (512);
    n_answers (42).
    Paper-versus-TJSTG forms (each block's docstring in avqa.models.blocks has the details):
      similarity "dot" (paper eqs. 3-4) | "cosine" (TJSTG) | "scaled_dot" (dot / sqrt(d)): TSG+ similarities;
      target_tokens "words" (default: never CLIP's SOT / EOT) | "all" (the earlier behaviour): target candidates;
      target_grad "straight_through" (default) | "none" (TJSTG's hard argmax): paper silent;
      jtg_ffn False (paper eq. 14) | True (TJSTG's FFN + residual + LayerNorm after the attention);
      mean_fusion "paper" (eq. 16: MLP of the mean post-LSTM token) | "tjstg" (FC(tanh([mean f_a; mean f_v])));
      answer_tanh False (paper eq. 20) | True (TJSTG's tanh before the answer classifier);
      input_norm "standardize_ln" (default, a departure: Standardize + LayerNorm before every projection,
      measured necessary with random encoders on the synthetic data) | "none" (the paper's plain projections).
    L_s negatives (eqs. 6-7; the paper says only "sampled from different videos"): each segment's own audio and
    target with the next unique video of the batch at the same segment (own; TJSTG draws a random segment of a
    random other video of the split).
    """

    def __init__(self, d_model: int = 512, heads: int = 4, dropout: float = 0.1, target_aware: bool = True,
                 target: str = "attention", combine: str = "add", tau: float | None = None, use_tsg: bool = True,
                 use_jtg: bool = True, use_ls: bool | None = None, use_cms: bool | None = None, order: str = "IL(V;A)",
                 stream: str = "single", positional: str = "none", cms_weight: float = 1.0, ls_weight: float = 0.5,
                 visual_dim: int = 2048, audio_dim: int = 128, sentence_dim: int = 1024, token_dim: int = 512,
                 n_answers: int = len(ANSWERS), similarity: str = "dot", target_tokens: str = "words",
                 target_grad: str = "straight_through", jtg_ffn: bool = False, mean_fusion: str = "paper",
                 answer_tanh: bool = False, input_norm: str = "standardize_ln"):
        super().__init__()
        check_choice("combine", combine, COMBINES)
        for name, value, choices in (("order", order, ORDERS), ("stream", stream, STREAMS),
                                     ("positional", positional, POSITIONALS),
                                     ("similarity", similarity, SIMILARITIES),
                                     ("target_tokens", target_tokens, TARGET_TOKENS),
                                     ("target_grad", target_grad, TARGET_GRADS),
                                     ("mean_fusion", mean_fusion, MEAN_FUSIONS),
                                     ("input_norm", input_norm, INPUT_NORMS)):
            check_choice(name, value, choices)  # also when the block that uses it is switched off
        self.dims = dict(visual_dim=visual_dim, audio_dim=audio_dim, sentence_dim=sentence_dim, token_dim=token_dim)
        self.use_tsg, self.use_jtg = bool(use_tsg), bool(use_jtg)
        if use_cms and not self.use_jtg:
            raise ValueError("use_cms=True needs use_jtg=True: L_cms compares JTG's question-attention distributions "
                             "(eqs. 17-19); 'w/o JTG' removes it with JTG (sec. 4.3)")
        # Each auxiliary loss goes with its module unless set explicitly (sec. 4.3, "w/o TSG+" and "w/o JTG").
        self.use_ls = self.use_tsg if use_ls is None else bool(use_ls)
        self.use_cms = self.use_jtg if use_cms is None else bool(use_cms)
        self.target_aware = bool(target_aware)
        tau = DEFAULT_TAU[combine] if tau is None else float(tau)
        self.loss_weights = {"qa": 1.0, "cms": float(cms_weight), "match": float(ls_weight)}
        # The resolved ablation switches, as the tables' rows read them (tests/test_switches.py checks each is used).
        self.switches = dict(target_aware=self.target_aware, combine=combine, tau=tau, use_tsg=self.use_tsg,
                             use_jtg=self.use_jtg, use_ls=self.use_ls, use_cms=self.use_cms, order=order,
                             stream=stream, positional=positional, cms_weight=float(cms_weight),
                             ls_weight=float(ls_weight))
        self.visual_proj = VisualProjection(visual_dim, d_model, input_norm)
        self.audio_proj = AudioProjection(audio_dim, d_model, input_norm)
        self.question_proj = QuestionProjection(sentence_dim, d_model, input_norm)
        if self.use_tsg and self.target_aware:
            self.target_word = TargetWord(token_dim, d_model, target, target_tokens, target_grad, input_norm)
        if self.use_tsg:
            self.tsg = TSGPlus(d_model, self.target_aware, combine, tau, similarity)
        if self.use_ls:
            self.match_head = MatchHead(d_model)
        self.jtg = (JTG(d_model, heads, dropout, order, stream, positional, bool(jtg_ffn), mean_fusion)
                    if self.use_jtg else MeanFusion(d_model))
        self.answer_head = AnswerHead(d_model, n_answers, tanh=bool(answer_tanh))

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
        check_batch(batch, **self.dims)
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
