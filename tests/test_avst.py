"""AVST (avqa.models.avst): shapes on the contract's map sizes, training steps, L_match against a hand
computation, padding and video-order invariance, bf16 autocast, the grounding objective and its hand-over to a QA
run, and the parameter / FLOP counts."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from avqa.models import build_model, count_trainable, trainable_by_block
from avqa.models.avst import GROUNDING_BLOCKS, grounding_state, load_grounding
from model_batches import SMALL as SMALL_MODELS, adam_steps, avst_batch as make_batch, small_model as build_small

VOCAB = 92  # the vocabulary of the released val split (tests/test_words.py)


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = SMALL_MODELS["avst"]


def small_model(seed=0, **options):
    return build_small("avst", seed, **options)


# --- shapes ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side,visual_dim", [(7, 2048), (14, 512)])
def test_full_size_shapes(side, visual_dim):
    U, B, T = 3, 8, 10
    torch.manual_seed(0)
    model = build_model("avst", vocab_size=VOCAB, visual_dim=visual_dim).eval()
    batch = make_batch(U, B, T, side, visual_dim, 128, VOCAB, Lw=14, video_index=[0, 0, 1, 2, 2, 2, 1, 0])
    with torch.no_grad():
        out = model(batch)
    P = side * side
    assert out["logits"].shape == (B, 42)
    assert out["spatial_attn"].shape == (B, T, P)
    assert out["temporal_attn_audio"].shape == out["temporal_attn_visual"].shape == (B, T)
    assert out["temporal_attn"].shape == (B, 2 * T)
    assert out["match_logits"].shape == out["mismatch_logits"].shape == (U, T, 2)
    for name in ("spatial_attn", "temporal_attn_audio", "temporal_attn_visual", "temporal_attn"):
        torch.testing.assert_close(out[name].sum(-1), torch.ones(out[name].shape[:-1]))
    # questions of one video share its spatial attention (audio-guided only), not their temporal attention
    torch.testing.assert_close(out["spatial_attn"][0], out["spatial_attn"][1])
    assert not torch.allclose(out["temporal_attn_visual"][0], out["temporal_attn_visual"][1])
    # the joint layout interleaves v_t, a_t, each distribution halved
    torch.testing.assert_close(out["temporal_attn"][:, 0::2], out["temporal_attn_visual"] / 2)
    torch.testing.assert_close(out["temporal_attn"][:, 1::2], out["temporal_attn_audio"] / 2)


def test_vocab_size_is_required_and_bad_batches_are_named():
    with pytest.raises(TypeError, match="vocab_size"):
        build_model("avst")
    with pytest.raises(ValueError, match="objective"):
        small_model(objective="match")
    model = small_model()
    batch = make_batch()
    with pytest.raises(KeyError, match="question_words"):
        model({k: v for k, v in batch.items() if k != "question_words"})
    too_big = {**batch, "question_words": batch["question_words"].clone()}
    too_big["question_words"][0, 0] = 12
    with pytest.raises(ValueError, match=r"outside \[0, 12\).*vocab_size"):
        model(too_big)
    holes = {**batch, "question_words": torch.tensor([[3, 0, 4]] * 7)}
    with pytest.raises(ValueError, match="padding .* before a word"):
        model(holes)
    empty = {**batch, "question_words": torch.tensor([[3, 4]] * 6 + [[0, 0]])}
    with pytest.raises(ValueError, match="without any word"):
        model(empty)
    with pytest.raises(ValueError, match="batch\\['visual'\\]"):
        model({**batch, "visual": batch["visual"][..., :5]})


# --- training -------------------------------------------------------------------------------------------------
def test_adam_steps_lower_the_loss_on_a_fixed_batch():
    history = adam_steps(small_model(), make_batch(), steps=30, lr=3e-3)
    assert set(history[0]) == {"qa", "match", "total"}
    assert history[-1]["qa"] < 0.6 * history[0]["qa"]
    assert history[-1]["total"] < 0.7 * history[0]["total"]


def test_grounding_steps_separate_matched_from_mismatched_pairs():
    """Each segment's audio vector is drawn into one position of its map: the match loss must leave ln 2."""
    U, T = 4, 4
    batch = make_batch(U=U, B=2 * U, T=T)
    g = torch.Generator().manual_seed(100)
    maps = torch.randn(U, T, 49, 24, generator=g)
    source = torch.randint(0, 49, (U, T), generator=g)
    maps[torch.arange(U)[:, None], torch.arange(T)[None], source] = 2 * batch["audio"].repeat(1, 1, 3)
    batch["visual"] = maps.reshape(U, T, 7, 7, 24)
    history = adam_steps(small_model(objective="grounding"), batch, steps=60, lr=1e-2)
    assert history[0]["match"] > 0.69 and history[-1]["match"] < 0.2


def test_match_loss_labels_and_pairs_by_hand():
    """Matched: each video's own audio and visual; mismatched: video u's visual with video u-1's audio."""
    model = small_model().eval()
    batch = make_batch(U=3)
    with torch.no_grad():
        out = model(batch)
        maps = model.visual_proj(batch["visual"])
        f_a = model.audio_proj(batch["audio"])
        U = maps.shape[0]
        for u in range(U):
            own, _ = model.spatial_grounding(maps[u:u + 1], f_a[u:u + 1])
            torch.testing.assert_close(out["match_logits"][u], model.match_head(f_a[u], own[0]))
            other, _ = model.spatial_grounding(maps[u:u + 1], f_a[(u - 1) % U][None])
            torch.testing.assert_close(out["mismatch_logits"][u], model.match_head(f_a[(u - 1) % U], other[0]))
        total, terms = model.loss(batch, out)
    matched = out["match_logits"].reshape(-1, 2).log_softmax(-1)[:, 1]      # label 1
    mismatched = out["mismatch_logits"].reshape(-1, 2).log_softmax(-1)[:, 0]  # label 0
    by_hand = -(matched.sum() + mismatched.sum()) / (2 * matched.numel())
    assert terms["match"] == pytest.approx(float(by_hand), rel=1e-6)
    qa = F.cross_entropy(out["logits"], batch["answer"])
    assert terms["total"] == pytest.approx(float(qa + 0.5 * by_hand), rel=1e-6)


def test_spatial_grounding_formula():
    """attention = softmax_p(cos(f_a, map_p)); f_v = fc_gl(tanh([mean_p map ; sum_p attention * map_p/|map_p|]))."""
    model = small_model()
    g = torch.Generator().manual_seed(1)
    maps, audio = torch.randn(2, 3, 5, 16, generator=g), torch.randn(2, 3, 16, generator=g)
    f_v, attention = model.spatial_grounding(maps, audio)
    unit = maps / maps.norm(dim=-1, keepdim=True)
    expected = (torch.einsum("utpd,utd->utp", unit, audio / audio.norm(dim=-1, keepdim=True))).softmax(-1)
    torch.testing.assert_close(attention, expected)
    attended = torch.einsum("utp,utpd->utd", expected, unit)
    torch.testing.assert_close(f_v, model.spatial_grounding.fc_gl(torch.tanh(torch.cat([maps.mean(2), attended], -1))))


# --- invariances ----------------------------------------------------------------------------------------------
def test_appended_padding_does_not_change_the_output():
    model = small_model().eval()
    batch = make_batch()
    padded = {**batch, "question_words": F.pad(batch["question_words"], (0, 5))}
    with torch.no_grad():
        a, b = model(batch), model(padded)
    torch.testing.assert_close(a["logits"], b["logits"])
    torch.testing.assert_close(a["temporal_attn"], b["temporal_attn"])


def test_permuting_unique_videos_gives_the_same_answers():
    model = small_model().eval()
    batch = make_batch(U=4, B=9)
    perm = torch.tensor([2, 0, 3, 1])                 # new row r holds old video perm[r]
    inverse = torch.argsort(perm)
    permuted = {**batch, "visual": batch["visual"][perm], "audio": batch["audio"][perm],
                "video_index": inverse[batch["video_index"]]}
    with torch.no_grad():
        a, b = model(batch), model(permuted)
    for name in ("logits", "spatial_attn", "temporal_attn"):
        torch.testing.assert_close(a[name], b[name])
    torch.testing.assert_close(a["match_logits"][perm], b["match_logits"])


def test_bf16_autocast_on_cpu():
    model = small_model()
    batch = make_batch()
    model.eval()
    with torch.no_grad():
        reference = model(batch)
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
        total, terms = model.loss(batch, out)
    assert out["logits"].dtype == torch.bfloat16
    assert out["spatial_attn"].dtype == out["temporal_attn"].dtype == torch.float32  # attention in fp32
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(batch)
    torch.testing.assert_close(low["logits"].float(), reference["logits"], atol=0.05, rtol=0.05)
    torch.testing.assert_close(low["spatial_attn"], reference["spatial_attn"], atol=0.01, rtol=0.05)


# --- the grounding pre-training -------------------------------------------------------------------------------
def test_grounding_objective_trains_only_the_match_loss():
    model = small_model(objective="grounding")
    batch = make_batch()
    out = model(batch)
    assert out["logits"].shape == (7, 42) and not out["logits"].requires_grad
    total, terms = model.loss(batch, out)
    assert set(terms) == {"match", "total"} and terms["total"] == terms["match"]
    total.backward()
    trained = {name.split(".")[0] for name, p in model.named_parameters() if p.grad is not None}
    assert trained == set(GROUNDING_BLOCKS)
    single = make_batch(U=1, B=3)                      # no mismatched pair: L_match = 0 and zero gradients
    model.zero_grad()
    total, terms = model.loss(single, model(single))
    total.backward()
    assert terms["match"] == 0.0
    assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters() if p.grad is not None)
    qa = small_model()
    total, terms = qa.loss(single, qa(single))
    assert terms["match"] == 0.0 and terms["total"] == pytest.approx(terms["qa"])


def test_qa_run_starts_from_the_grounding_blocks():
    grounding = small_model(seed=1, objective="grounding")
    qa = small_model(seed=2)
    before = {k: v.clone() for k, v in qa.state_dict().items()}
    state = grounding.state_dict()
    loaded = load_grounding(qa, state)
    assert loaded == sorted(grounding_state(state))
    assert {k.split(".")[0] for k in loaded} == set(GROUNDING_BLOCKS)
    assert "visual_proj.standardize.mean" in loaded               # the input statistics travel with the weights
    for key, value in qa.state_dict().items():
        expected = state[key] if key in loaded else before[key]
        assert torch.equal(value, expected), key
    with pytest.raises(ValueError, match="another shape"):
        load_grounding(small_model(visual_dim=32), state)
    with pytest.raises(ValueError, match="lacks grounding entries"):
        load_grounding(qa, {k: v for k, v in state.items() if not k.startswith("match_head")})


# --- size and cost --------------------------------------------------------------------------------------------
def lstm_flops(words: int, input_dim: int = 512, hidden: int = 512) -> int:
    """The LSTM's multiply-adds x 2 (FlopCounterMode does not see the fused CPU LSTM kernel)."""
    return words * 2 * 4 * hidden * (input_dim + hidden)


def test_parameters_and_gflops_per_question(capsys):
    torch.manual_seed(0)
    model = build_model("avst", vocab_size=VOCAB).eval()
    blocks = trainable_by_block(model)
    assert count_trainable(model) == 8_965_292
    assert blocks["question_encoder"] == VOCAB * 512 + 4 * 512 * (512 + 512) + 2 * 4 * 512 + 1024 * 512 + 512
    T, P, C, d, words = 10, 49, 2048, 512, 10
    batch = make_batch(U=1, B=1, T=T, side=7, visual_dim=C, audio_dim=128, vocab_size=VOCAB, Lw=words)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(batch)
    counted = counter.get_total_flops()
    per_modality = 2 * (d * d + 2 * T * d * d + 2 * T * d + d * d + 2 * d * d)  # MHA projections, scores, FFN
    expected = 2 * (T * P * C * d                                  # visual projection C -> d
                    + T * (128 * d + d * d)                        # audio MLP
                    + 2 * T * P * d + T * 2 * d * d                # cosines, attended map, fc_gl
                    + T * (2 * d * d + d * d // 2 + d * d // 8 + d // 2)  # match MLP 1024-512-256-128-2
                    + 2 * d * d                                    # question fc
                    + 2 * d * d + d * 42) + 2 * per_modality       # fusion, answer; temporal attention
    assert counted == expected
    total = counted + lstm_flops(words)
    with capsys.disabled():
        print(f"\nAVST: {count_trainable(model):,} trainable parameters ({blocks}); forward per question "
              f"(T=10, 7x7x2048, {words} words): {total / 1e9:.3f} GFLOPs "
              f"({counted / 1e9:.3f} counted + {lstm_flops(words) / 1e9:.3f} LSTM), visual projection "
              f"{2 * T * P * C * d / 1e9:.3f}")
