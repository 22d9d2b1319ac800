"""ToMe (Bolya et al., ICLR 2023) in open_clip's ViT: bipartite matching on keys, size-weighted merging, sizes,
proportional attention (eq. 1), the per-block schedule to n_tokens, CLS kept out, determinism."""
from __future__ import annotations

import copy

import pytest
import torch
from open_clip.transformer import VisionTransformer

from avqa.features.encoders.clip_vit import BACKBONES, clip_vit_dims
from avqa.features.encoders.tome import (apply_tome, bipartite_matching, merge_tokens, merged_forward,
                                         proportional_attention, token_merging, tokens_per_block, tome_schedule,
                                         vit_geometry)

# the geometry (image, patch, depth) of each backbone, at a tiny width so a forward takes milliseconds
GEOMETRY = {"ViT-B-32": (224, 32, 12), "ViT-B-16": (224, 16, 12), "ViT-L-14-336": (336, 14, 24)}


def tiny_vit(backbone: str, seed: int = 0) -> VisionTransformer:
    image, patch, depth = GEOMETRY[backbone]
    torch.manual_seed(seed)
    vit = VisionTransformer(image_size=image, patch_size=patch, width=32, layers=depth, heads=2, mlp_ratio=2.0,
                            output_dim=16).eval()
    with torch.no_grad():  # open_clip's init leaves the tiny model's tokens almost alike; spread them
        vit.positional_embedding.mul_(20)
    return vit


def images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- schedule ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", BACKBONES)
def test_schedule_reaches_n_tokens_for_each_backbone(backbone):
    dims = clip_vit_dims(backbone, n_tokens=14)
    schedule, patches = dims["schedule"], dims["n_patches"]
    assert len(schedule) == dims["depth"] and sum(schedule) == patches - 14
    counts = [patches] + tokens_per_block(patches, schedule)
    assert counts[-1] == 14
    assert all(r <= before // 2 for r, before in zip(schedule, counts))   # a match removes at most half
    assert len(set(schedule[:-1])) == 1 and schedule[-1] <= schedule[0]    # constant r, the last takes the rest
    assert schedule == {"ViT-B-32": (3,) * 11 + (2,), "ViT-B-16": (16,) * 11 + (6,),
                        "ViT-L-14-336": (24,) * 23 + (10,)}[backbone]


def test_schedule_is_the_smallest_constant_r_and_errors_are_clear():
    assert tome_schedule(49, 12, 49) == (0,) * 12
    assert tome_schedule(16, 3, 8) == (3, 3, 2)       # r = 2 would leave 10
    with pytest.raises(ValueError, match="fewest reachable is 13"):
        tome_schedule(49, 2, 5)
    with pytest.raises(ValueError, match="between 1 and the 49 patch tokens"):
        tome_schedule(49, 12, 50)


# --- one merging step ----------------------------------------------------------------------------------------
def test_merge_is_a_size_weighted_average_hand_example():
    # CLS + 4 patches: A = patches 0, 2; B = patches 1, 3. Keys: A0 points like B1, A1 half-way to B0.
    keys = torch.tensor([[[1., 1.], [1., 0.], [0., 1.], [1., 0.2], [1., 0.]]])
    x = torch.tensor([[[9., 9.], [1., 1.], [5., 5.], [2., 4.], [6., 11.]]])
    size = torch.tensor([[[1.], [2.], [1.], [1.], [3.]]])
    merged, new_size = merge_tokens(x, size, keys, r=1)
    # A0 (size 2) joins B1 (size 3): (2 * [1, 1] + 3 * [6, 11]) / 5 = [4, 7]; order: CLS, kept A, B
    assert torch.allclose(merged, torch.tensor([[[9., 9.], [2., 4.], [5., 5.], [4., 7.]]]))
    assert torch.equal(new_size, torch.tensor([[[1.], [1.], [1.], [5.]]]))


def test_merging_identical_tokens_keeps_them_and_unit_tokens_average():
    token = torch.tensor([0.3, -1.2, 2.0])
    x = torch.cat([torch.zeros(1, 1, 3), token.expand(1, 6, 3)], dim=1)
    keys = torch.cat([torch.randn(1, 1, 3), torch.ones(1, 6, 3)], dim=1)
    merged, size = merge_tokens(x, torch.ones(1, 7, 1), keys, r=3)         # all of A into B0 (the first tie)
    assert merged.shape == (1, 4, 3) and torch.allclose(merged[0, 1:], token.expand(3, 3))
    assert size[0, :, 0].tolist() == [1, 4, 1, 1]
    # identical keys, different values, unit sizes: the merged token is the plain mean
    values = torch.randn(1, 7, 3)
    merged, _ = merge_tokens(values, torch.ones(1, 7, 1), keys, r=3)
    patches = values[0, 1:]                                                # A = patches 0, 2, 4 join B0 = patch 1
    assert torch.allclose(merged[0, 1], patches[[0, 1, 2, 4]].mean(dim=0))
    assert torch.equal(merged[0, 2:], patches[[3, 5]])


def test_cls_token_is_never_merged():
    keys = torch.ones(2, 9, 4)                                             # CLS as similar as any patch
    x, size = torch.randn(2, 9, 4), torch.ones(2, 9, 1)
    merged, new_size = merge_tokens(x, size, keys, r=4)
    assert torch.equal(merged[:, 0], x[:, 0]) and torch.equal(new_size[:, 0], size[:, 0])
    assert merged.shape == (2, 5, 4) and new_size.sum(dim=(1, 2)).tolist() == [9, 9]


def test_matching_equals_a_naive_reference():
    gen = torch.Generator().manual_seed(3)
    keys = torch.randn(2, 11, 5, generator=gen)
    src, dst, keep = bipartite_matching(keys, r=4)
    for b in range(2):
        a, bset = keys[b, 0::2], keys[b, 1::2]
        cos = torch.tensor([[torch.cosine_similarity(u, v, dim=0).item() for v in bset] for u in a])
        best = cos.max(dim=1)
        expected_src = sorted(range(len(a)), key=lambda i: -best.values[i])[:4]
        assert src[b].tolist() == expected_src
        assert dst[b].tolist() == [best.indices[i].item() for i in expected_src]
        assert keep[b].tolist() == sorted(set(range(len(a))) - set(expected_src))


def test_ties_are_broken_deterministically():
    src, dst, keep = bipartite_matching(torch.ones(1, 10, 3), r=2)
    assert src.tolist() == [[0, 1]] and dst.tolist() == [[0, 0]] and keep.tolist() == [[2, 3, 4]]


# --- proportional attention ------------------------------------------------------------------------------------
def test_proportional_attention_counts_a_token_of_size_s_as_s_copies():
    torch.manual_seed(0)
    attn = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(1, 4, 8)
    with torch.no_grad():
        reference = attn(x, x, x, need_weights=False)[0]
        plain, keys = proportional_attention(attn, x, None)
        assert torch.allclose(plain, reference, atol=1e-5) and keys.shape == (1, 4, 4)
        copies = torch.cat([x, x[:, 3:].expand(1, 2, 8)], dim=1)            # token 3 three times, sizes 1
        repeated, _ = proportional_attention(attn, copies, torch.ones(1, 6, 1))
        sized, _ = proportional_attention(attn, x, torch.tensor([[[1.], [1.], [1.], [3.]]]))  # eq. 1
    assert torch.allclose(sized, repeated[:, :4], atol=1e-5)
    assert not torch.allclose(sized, plain, atol=1e-3)


# --- inside open_clip's ViT ---------------------------------------------------------------------------------------
def test_patching_keeps_weights_and_the_plain_forward():
    vit = tiny_vit("ViT-B-32")
    original = copy.deepcopy(vit)
    state = apply_tome(vit)
    assert apply_tome(vit) is state and all(b.tome_state is state for b in vit.transformer.resblocks)
    assert type(vit.transformer.resblocks[0]) is type(original.transformer.resblocks[0])   # open_clip's class
    assert list(vit.state_dict()) == list(original.state_dict())
    x = images(2, 224)
    with torch.no_grad():
        assert torch.equal(vit(x), original(x))                            # outside the context: open_clip's
        no_merge, tokens, sizes = merged_forward(vit, x, (0,) * 12)         # r = 0: proportional == plain
    assert torch.allclose(no_merge, original(x), atol=1e-5) and tokens.shape == (2, 49, 32)
    assert torch.equal(sizes, torch.ones(2, 49))
    assert state.schedule is None


@pytest.mark.parametrize("backbone", BACKBONES)
def test_token_count_falls_by_r_per_block_to_n_tokens(backbone):
    vit = tiny_vit(backbone)
    apply_tome(vit)
    patches, depth = vit_geometry(vit)
    schedule = tome_schedule(patches, depth, 14)
    counts = []
    hooks = [b.register_forward_hook(lambda m, i, out: counts.append(out.shape[1])) for b in vit.transformer.resblocks]
    with torch.no_grad():
        embedding, tokens, sizes = merged_forward(vit, images(2, vit.image_size[0]), schedule)
    for hook in hooks:
        hook.remove()
    assert counts == [1 + n for n in tokens_per_block(patches, schedule)]
    assert tokens.shape == (2, 14, 32) and embedding.shape == (2, 16)
    assert torch.equal(sizes.sum(dim=1), torch.full((2,), float(patches)))  # every patch in exactly one token
    assert (sizes >= 1).all() and (sizes > 1).any()


def test_cls_after_the_first_block_is_untouched_by_merging():
    vit = tiny_vit("ViT-B-16")
    apply_tome(vit)
    first = vit.transformer.resblocks[0]
    seen = []
    hook = first.register_forward_hook(lambda m, i, out: seen.append(out[:, 0].clone()))
    x = images(2, 224)
    with torch.no_grad():
        vit(x)
        merged_forward(vit, x, tome_schedule(196, 12, 14))
    hook.remove()
    # block 0 attends with all sizes 1, merges after attention, and its MLP is per token: the CLS is the same
    assert torch.allclose(seen[0], seen[1], atol=1e-5)


def test_merged_forward_is_deterministic_and_per_frame():
    vit = tiny_vit("ViT-B-16")
    apply_tome(vit)
    schedule = tome_schedule(196, 12, 14)
    x = images(3, 224)
    with torch.no_grad():
        first = merged_forward(vit, x, schedule)
        again = merged_forward(vit, x, schedule)
        alone = merged_forward(vit, x[1:2], schedule)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert torch.allclose(alone[1], first[1][1:2], atol=1e-4) and torch.equal(alone[2], first[2][1:2])


def test_bad_schedules_are_refused():
    vit = tiny_vit("ViT-B-32")
    with pytest.raises(ValueError, match="need 12 non-negative merges"):
        with token_merging(vit, (3,) * 11):
            pass
    with pytest.raises(ValueError, match="open_clip VisionTransformer"):
        apply_tome(torch.nn.Linear(2, 2))
