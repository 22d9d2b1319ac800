"""The CLIP text tower, shared by every CLIP family (RN50's question features, the ViT's questions and prompts):
tokenising with the context cut to the longest text, and the per-token and sentence outputs of one forward.

Light on purpose (torch and open_clip load only when a function runs).
"""
from __future__ import annotations


def tokenize(tokenizer, texts: list[str], context_length: int | None = None):
    """(N, L) int64 token ids cut to `context_length` (default: the longest question's token count)."""
    ids = tokenizer(list(texts))  # (N, 77), 0 = padding
    longest = int((ids != 0).sum(dim=1).max())
    return ids[:, : context_length or longest]


def text_forward(model, ids):
    """CLIP's encode_text on a context of L <= 77 tokens: per-token ln_final outputs and the sentence embedding.

    The text transformer is causal, so cutting the padding after the longest question changes nothing for the
    real tokens (positional embedding and attention mask are cut to match).
    """
    import torch
    from open_clip.transformer import text_global_pool

    n_ctx = ids.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(ids).to(cast_dtype) + model.positional_embedding[:n_ctx].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:n_ctx, :n_ctx])
    tokens = model.ln_final(x)
    pooled = text_global_pool(tokens, ids, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    projection = model.text_projection
    sentence = projection(pooled) if isinstance(projection, torch.nn.Linear) else pooled @ projection
    return tokens, sentence
