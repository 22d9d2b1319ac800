"""Loss terms of TASS-Net (Jiang & Yin 2024, arXiv 2405.07451; the total and its weights: sec. 4.1).

L = L_qa + w_cms * L_cms + w_s * L_s  (sec. 4.1 "Training Strategy": L = L_qa + L_cms + lambda L_s, lambda = 0.5), with
  L_qa : cross-entropy of the answer logits over the 42 answers (sec. 3.5, after eq. 20);
  L_cms: cross-modal synchrony loss (sec. 3.4, eqs. 10-12 and 17-19), the Jensen-Shannon divergence between the
         JTG attention distributions over the T visual tokens and over the T audio tokens (question-aware
         temporal grounding should pick the same moments in both modalities). The two sub-vectors of JTG's one
         softmax over 2T are renormalised to distributions first (the paper is silent; its Fig. 6 shows
         normalised weights); TJSTG's public "JS" passes probabilities where F.kl_div expects logs and so is
         not a divergence, which is not copied here;
  L_s  : audio-visual match loss of TSG+ (sec. 3.3, eqs. 6-7), cross-entropy of a matched / unmatched classifier
         on segment pairs (positives: a segment's own audio and visual; negatives: its audio with another
         video's visual; the paper says only "sampled from different videos", TASSNet picks them).
All terms are computed in float32 whatever the autocast dtype of the forward pass.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-8


def kl_divergence(p: torch.Tensor, q: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """KL(p || q) along `dim` in nats (eq. 12), 0 log 0 = 0; logs of clamped values keep gradients finite at zeros."""
    p, q = p.float(), q.float()
    return (p * (p.clamp_min(eps).log() - q.clamp_min(eps).log())).sum(dim)


def js_divergence(p: torch.Tensor, q: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Jensen-Shannon divergence along `dim` (no reduction over other axes), in nats: 0 <= JS <= ln 2.

    JS(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2 (eqs. 10-11). Symmetric, zero iff p = q.
    """
    m = 0.5 * (p.float() + q.float())
    return 0.5 * kl_divergence(p, m, dim, eps) + 0.5 * kl_divergence(q, m, dim, eps)


def renormalise(weights: torch.Tensor, dim: int = -1) -> torch.Tensor:
    weights = weights.float()
    return weights / weights.sum(dim, keepdim=True).clamp_min(EPS)


def cms_loss(visual_attention: torch.Tensor, audio_attention: torch.Tensor) -> torch.Tensor:
    """L_cms (eq. 17): batch mean of JS(w_a || w_v) over T; each (B, T) row is renormalised to a distribution first."""
    return js_divergence(renormalise(visual_attention), renormalise(audio_attention)).mean()


def match_loss(matched_logits: torch.Tensor, unmatched_logits: torch.Tensor) -> torch.Tensor:
    """L_s (eq. 6): cross-entropy over all pairs, label y^m = 1 for matched (..., 2) logits, 0 for unmatched ones."""
    matched = matched_logits.float().reshape(-1, 2)
    unmatched = unmatched_logits.float().reshape(-1, 2)
    logits = torch.cat([matched, unmatched])
    labels = torch.cat([torch.ones(len(matched), dtype=torch.long, device=logits.device),
                        torch.zeros(len(unmatched), dtype=torch.long, device=logits.device)])
    return F.cross_entropy(logits, labels)


def qa_loss(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """L_qa: cross-entropy of (B, n_answers) logits against answer indices (B,)."""
    return F.cross_entropy(logits.float(), answer)


def total_loss(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
    """sum_k weights[k] * terms[k]; returns the total tensor and every term (and "total") as floats."""
    total = sum(weights[name] * value for name, value in terms.items())
    floats = {name: float(value.detach()) for name, value in terms.items()}
    floats["total"] = float(total.detach())
    return total, floats
