"""Token Merging (ToMe; Bolya et al., ICLR 2023, "Token Merging: Your ViT but Faster") inside open_clip's ViT.

In every transformer block, between attention and MLP (sec. 3, fig. 1):
  1. the patch tokens are split alternately into sets A (even positions) and B (odd positions);
  2. each token of A is matched to its most similar token of B, by the cosine similarity of the attention keys
     (averaged over heads, sec. 3 "Token Similarity");
  3. the r most similar pairs are merged: the B token becomes the size-weighted average of itself and every A
     token matched to it, and its size (how many patches it stands for) is the sum of theirs ("Tracking Token
     Size"); the other A tokens are kept unchanged. Output order: CLS, kept A tokens, B tokens.
  4. attention is proportional (eq. 1): A = softmax(Q K^T / sqrt(d) + log s), s the key tokens' sizes, so a
     merged token counts as the s patches it replaces.
The CLS token takes no part in the matching (its size stays 1); each block removes r_l patch tokens.

Schedule (tome_schedule): TSPM keeps 14 tokens per frame. We choose the paper's constant r, the smallest that
reaches n_tokens within the depth, capped in each block at half its patch tokens (a bipartite match can remove
at most |A|), the last merging block removing only what is left. For n_tokens = 14:
  ViT-B-32 (224 px, 49 patches, 12 blocks):  r = 3 x 11, then 2
  ViT-B-16 (224 px, 196 patches, 12 blocks): r = 16 x 11, then 6
  ViT-L-14-336 (336 px, 576 patches, 24 blocks): r = 24 x 23, then 10
(TSPM's own script runs r = 25 in 23 of 24 blocks of a timm ViT-L/16-384, where ToMe's half cap makes the last
step 13: 577 tokens -> 14 including CLS; our n_tokens counts patch tokens, CLS apart.)

Use: apply_tome(visual) once on a loaded model instance (its residual blocks get a forward that merges when a
schedule is set; parameters and state_dict keys are unchanged), then
`with token_merging(visual, schedule) as state:` around the forward; state.size holds the final token sizes.
Outside the context the blocks run open_clip's own forward.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass

import torch
import torch.nn.functional as F


# --- schedule --------------------------------------------------------------------------------------------
def _constant_r(n_patches: int, depth: int, n_tokens: int, r: int) -> tuple[int, ...]:
    schedule, left = [], n_patches
    for _ in range(depth):
        step = min(r, left // 2, left - n_tokens)
        schedule.append(step)
        left -= step
    return tuple(schedule)


def tome_schedule(n_patches: int, depth: int, n_tokens: int) -> tuple[int, ...]:
    """r per block (length `depth`) taking `n_patches` patch tokens to exactly `n_tokens` (see module doc)."""
    if not 1 <= n_tokens <= n_patches:
        raise ValueError(f"n_tokens={n_tokens}: must be between 1 and the {n_patches} patch tokens")
    for r in range(n_patches // 2 + 1):
        schedule = _constant_r(n_patches, depth, n_tokens, r)
        if sum(schedule) == n_patches - n_tokens:
            return schedule
    fewest = n_patches - sum(_constant_r(n_patches, depth, 1, n_patches))
    raise ValueError(f"cannot merge {n_patches} patch tokens down to n_tokens={n_tokens} in {depth} blocks: a block "
                     f"removes at most half of its tokens, so the fewest reachable is {fewest}")


def tokens_per_block(n_patches: int, schedule) -> list[int]:
    """Patch tokens after each block under `schedule`."""
    counts, left = [], n_patches
    for r in schedule:
        left -= r
        counts.append(left)
    return counts


# --- merging ---------------------------------------------------------------------------------------------
def bipartite_matching(keys: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ToMe's bipartite soft matching on patch-token keys (B, P, d) -> indices into A = keys[:, 0::2] and
    B = keys[:, 1::2]: src (B, r) the merged A tokens, dst (B, r) their B partners, keep (B, |A| - r) the
    unmerged A tokens in their original order. Ties go to the earlier A token (stable sort): deterministic."""
    metric = F.normalize(keys.float(), dim=-1)
    scores = metric[:, 0::2] @ metric[:, 1::2].transpose(1, 2)            # (B, |A|, |B|) cosine similarity
    if not 0 <= r <= scores.shape[1]:
        raise ValueError(f"r={r}: a bipartite match of {keys.shape[1]} tokens merges 0..{scores.shape[1]}")
    best, partner = scores.max(dim=-1)
    order = best.argsort(dim=-1, descending=True, stable=True)
    src = order[:, :r]
    return src, partner.gather(1, src), order[:, r:].sort(dim=-1).values


def merge_tokens(x: torch.Tensor, size: torch.Tensor, keys: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One merging step: x (B, 1 + P, C) with the CLS token first, size (B, 1 + P, 1), keys (B, 1 + P, d) ->
    (B, 1 + P - r, C), (B, 1 + P - r, 1). Merged tokens are size-weighted averages (in float32), sizes add."""
    if r == 0:
        return x, size
    src, dst, keep = bipartite_matching(keys[:, 1:], r)
    patches, sizes = x[:, 1:].float(), size[:, 1:]
    xa, xb, sa, sb = patches[:, 0::2], patches[:, 1::2], sizes[:, 0::2], sizes[:, 1::2]
    channels = x.shape[-1]
    gather = lambda t, idx: t.gather(1, idx[..., None].expand(-1, -1, t.shape[-1]))  # noqa: E731
    weighted_sum = (xb * sb).scatter_add(1, dst[..., None].expand(-1, -1, channels), gather(xa * sa, src))
    merged_size = sb.scatter_add(1, dst[..., None], gather(sa, src))
    merged = torch.cat([gather(xa, keep), weighted_sum / merged_size], dim=1)
    x_out = torch.cat([x[:, :1], merged.to(x.dtype)], dim=1)
    return x_out, torch.cat([size[:, :1], gather(sa, keep), merged_size], dim=1)


def proportional_attention(attn: torch.nn.MultiheadAttention, x: torch.Tensor,
                           size: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention of open_clip's (batch-first, packed-projection) nn.MultiheadAttention with the
    proportional bias log(size) on the keys (ToMe eq. 1): x (B, N, C) -> (output (B, N, C), keys averaged over
    heads (B, N, C / heads)). size None: plain attention (all sizes 1)."""
    if not (attn.batch_first and attn._qkv_same_embed_dim and attn.in_proj_bias is not None):
        raise ValueError("ToMe expects open_clip's batch-first self-attention with a packed, biased qkv projection")
    batch, n, channels = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(batch, n, heads, channels // heads).transpose(1, 2) for t in (q, k, v))
    bias = None if size is None else size.log().reshape(batch, 1, 1, n).to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)      # softmax(q k^T / sqrt(d) + log s) v
    out = attn.out_proj(out.transpose(1, 2).reshape(batch, n, channels))
    return out, k.mean(dim=1)


# --- open_clip integration -------------------------------------------------------------------------------
@dataclass
class ToMeState:
    """Shared by the patched blocks of one ViT: the r per block while merging (None: plain forward), the
    token sizes of the current forward, (B, tokens, 1) float32, CLS first, and whether any block merged yet
    (before that every size is 1 and attention runs without the all-zero log-size bias)."""
    schedule: tuple[int, ...] | None = None
    size: torch.Tensor | None = None
    merged: bool = False


def tome_block_forward(block, q_x, k_x=None, v_x=None, attn_mask=None):
    """The forward of a patched ResidualAttentionBlock: open_clip's own while no schedule is set, else attention
    (proportional once tokens have merged), ToMe with r = schedule[block], MLP (same parameters)."""
    state = block.tome_state
    if state.schedule is None:
        return type(block).forward(block, q_x, k_x, v_x, attn_mask)
    if k_x is not None or v_x is not None or attn_mask is not None:
        raise ValueError("ToMe merges self-attention tokens only (no cross-attention, no attention mask)")
    if block.tome_index == 0:
        state.size, state.merged = torch.ones(q_x.shape[0], q_x.shape[1], 1, device=q_x.device), False
    out, keys = proportional_attention(block.attn, block.ln_1(q_x), state.size if state.merged else None)
    x = q_x + block.ls_1(out)
    r = state.schedule[block.tome_index]
    if r:
        x, state.size = merge_tokens(x, state.size, keys, r)
        state.merged = True
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def apply_tome(visual: torch.nn.Module) -> ToMeState:
    """Patch an open_clip VisionTransformer instance (idempotent): each residual block's forward becomes
    tome_block_forward (an instance attribute, so open_clip's class and files, the parameters and the state_dict
    keys are untouched); the blocks share one ToMeState (returned; also visual.tome_state)."""
    if getattr(visual, "tome_state", None) is not None:
        return visual.tome_state
    from open_clip.transformer import ResidualAttentionBlock  # here, not at import: open_clip is slow to import

    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not all(type(b) is ResidualAttentionBlock for b in blocks):
        raise ValueError(f"ToMe needs an open_clip VisionTransformer with standard ResidualAttentionBlocks, got "
                         f"{type(visual).__name__}")
    if getattr(visual, "pool_type", "tok") != "tok" or getattr(visual, "attn_pool", None) is not None:
        raise ValueError("ToMe keeps the CLS token as the frame embedding: the ViT must pool its class token")
    state = ToMeState()
    for index, block in enumerate(blocks):
        block.tome_state, block.tome_index = state, index
        block.forward = types.MethodType(tome_block_forward, block)
    visual.tome_state = state
    return state


def vit_geometry(visual: torch.nn.Module) -> tuple[int, int]:
    """(patch tokens per image, transformer depth) of an open_clip VisionTransformer."""
    rows, cols = visual.grid_size
    return rows * cols, len(visual.transformer.resblocks)


@contextlib.contextmanager
def token_merging(visual: torch.nn.Module, schedule):
    """Within the context, forwards of the patched `visual` merge tokens with r = schedule[block]."""
    state = apply_tome(visual)
    depth = len(visual.transformer.resblocks)
    schedule = tuple(int(r) for r in schedule)
    if len(schedule) != depth or min(schedule) < 0:
        raise ValueError(f"schedule {schedule}: need {depth} non-negative merges, one per block")
    state.schedule, state.size, state.merged = schedule, None, False
    try:
        yield state
    finally:
        state.schedule = None


def merged_forward(visual: torch.nn.Module, images: torch.Tensor, schedule):
    """open_clip's ViT forward with ToMe: images (N, 3, S, S) -> (projected CLS embedding (N, D), merged patch
    tokens after ln_post (N, P - sum(schedule), width), their sizes (N, P - sum(schedule)))."""
    with token_merging(visual, schedule) as state:
        x = visual.transformer(visual._embeds(images))
        pooled, tokens = visual._pool(x)
        sizes = state.size[:, 1:, 0]
    embedding = pooled @ visual.proj if visual.proj is not None else pooled
    return embedding, tokens, sizes
