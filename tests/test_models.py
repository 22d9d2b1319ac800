"""avqa.models: TSG+ threshold semantics and similarities, the target word's candidates, JTG and the answer head
in their paper and TJSTG forms, token orders, TASS-Net shapes for every option, the unique-video gather, training
steps, determinism, the question-only baseline, the registry and the params CLI."""
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F

from avqa.models import REGISTRY, build_model, count_trainable, trainable_by_block, valid_options
from avqa.models.blocks import ORDERS, AnswerHead, arrange_tokens, split_tokens, token_positions
from avqa.models.tass_blocks import (JTG, TargetWord, TSGPlus, combine_attention, question_query,
                                     word_token_mask)
from avqa.models.params import parameter_report, parse_options
from model_batches import SMALL as SMALL_MODELS, adam_steps, small_model as build_small, tass_batch as make_batch


pytestmark = pytest.mark.usefixtures("one_thread")


# Small dimensions for speed; the contract's sizes are checked in test_full_size_shapes_fp32_and_bf16.
SMALL = SMALL_MODELS["tass"]


def small_model(seed=0, **options):
    return build_small("tass", seed, **options)


# --- TSG+ threshold semantics --------------------------------------------------------------------------------
def distributions(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).softmax(-1)


def test_tau_zero_keeps_every_target_score():
    s_a, s_q = distributions(3, 49, seed=1), distributions(3, 49, seed=2)
    torch.testing.assert_close(combine_attention(s_a, s_q, "add", 0.0), (s_a + s_q).softmax(-1))


def test_tau_above_every_probability_is_audio_only():
    s_a, s_q = distributions(3, 49, seed=1), distributions(3, 49, seed=2)
    torch.testing.assert_close(combine_attention(s_a, s_q, "add", 1.01), s_a.softmax(-1))
    torch.testing.assert_close(combine_attention(s_a, None, "add", 0.025), s_a.softmax(-1))


def test_threshold_mask_is_exact_at_tau():
    tau = 0.25
    s_a = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    s_q = torch.tensor([[0.25, 0.2499, 0.5, 0.0001]])  # exactly tau passes (>=), just below does not
    kept = torch.tensor([[0.25, 0.0, 0.5, 0.0]])
    torch.testing.assert_close(combine_attention(s_a, s_q, "add", tau), (s_a + kept).softmax(-1))
    torch.testing.assert_close(combine_attention(s_a, s_q, "mul", tau), (s_a * kept).softmax(-1))
    torch.testing.assert_close(combine_attention(s_a, s_q, "max", tau), torch.maximum(s_a, kept).softmax(-1))


def test_combine_rejects_unknown_mode():
    with pytest.raises(ValueError, match="combine"):
        combine_attention(distributions(1, 4), distributions(1, 4), "sum", 0.1)


def reference_similarity(queries, maps, similarity):
    """(B, T, d) or (B, d) queries against (B, T, P, d) maps -> (B, T, P) logits, per question (eqs. 3-4)."""
    if similarity == "cosine":
        queries, maps = F.normalize(queries, dim=-1), F.normalize(maps, dim=-1)
    if queries.dim() == 2:
        queries = queries[:, None].expand(-1, maps.shape[1], -1)
    logits = torch.einsum("btpd,btd->btp", maps, queries)
    return logits / math.sqrt(maps.shape[-1]) if similarity == "scaled_dot" else logits


def reference_tsg_attention(maps, f_a, f_tgt, audio_index, visual_index, combine, tau, target_aware,
                            similarity="cosine"):
    """Per-question computation (gathering each question's maps), the definition TSGPlus must equal."""
    m = maps[visual_index]                                                   # (B, T, P, d)
    s_a = reference_similarity(f_a[audio_index], m, similarity).softmax(-1)
    s_q = reference_similarity(f_tgt, m, similarity).softmax(-1) if target_aware else None
    return combine_attention(s_a, s_q, combine, tau)


@pytest.mark.parametrize("similarity", ["dot", "cosine", "scaled_dot"])
@pytest.mark.parametrize("combine,tau,target_aware", [("add", 0.025, True), ("mul", 0.02, True),
                                                      ("max", 0.0, True), ("add", 0.025, False)])
def test_tsg_attention_equals_per_question_computation(combine, tau, target_aware, similarity):
    g = torch.Generator().manual_seed(3)
    U, B, T, P, d = 3, 5, 2, 49, 8
    maps, f_a = torch.randn(U, T, P, d, generator=g), torch.randn(U, T, d, generator=g)
    f_tgt = torch.randn(B, d, generator=g)
    audio_index = torch.tensor([0, 1, 2, 2, 0])
    visual_index = torch.stack([audio_index, (audio_index + 1) % U])
    tsg = TSGPlus(d, target_aware, combine, tau, similarity)
    f_v, attention = tsg(maps, f_a, f_tgt, audio_index, visual_index)
    assert f_v.shape == (2, B, T, d) and attention.shape == (2, B, T, P)
    for k in range(2):
        expected = reference_tsg_attention(maps, f_a, f_tgt, audio_index, visual_index[k], combine, tau, target_aware,
                                           similarity)
        torch.testing.assert_close(attention[k], expected)
        attended = torch.einsum("btp,btpd->btd", expected, maps[visual_index[k]])
        pooled = maps[visual_index[k]].mean(2)
        torch.testing.assert_close(f_v[k], tsg.fc(torch.tanh(torch.cat([pooled, attended], -1))))
    f_v1, attention1 = tsg(maps, f_a, f_tgt, audio_index, audio_index)  # 1-D index: (B, ...) outputs
    torch.testing.assert_close(attention1, attention[0])
    torch.testing.assert_close(f_v1, f_v[0])


def test_tsg_default_similarity_is_the_papers_dot_product():
    assert TSGPlus(8).similarity == "dot" and small_model().tsg.similarity == "dot"
    with pytest.raises(ValueError, match="similarity"):
        TSGPlus(8, similarity="euclid")


def realistic_tsg_inputs(U=4, T=5, B=8, L=10, seed=0):
    """The full-size model's own projections of unit-variance (standardised) inputs, as after Standardize."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model("tass").eval()
    token_mask = torch.arange(L)[None] < torch.randint(4, L + 1, (B, 1), generator=g)
    with torch.no_grad():
        maps = model.visual_proj(torch.randn(U, T, 7, 7, 2048, generator=g))
        f_a = model.audio_proj(torch.randn(U, T, 128, generator=g))
        f_q = model.question_proj(torch.randn(B, 1024, generator=g))
        f_tgt, _ = model.target_word(torch.randn(B, L, 512, generator=g), f_q, token_mask, torch.zeros_like(token_mask))
    return maps, f_a, f_tgt, torch.arange(B) % U


def test_attention_dynamic_range_dot_versus_cosine():
    """Audit sec. 3: with cosines the 49 similarities are nearly equal, s_q never reaches tau = 0.025 and the
    target path is off; the paper's dot product gives peaky s_a, s_q that pass tau at some positions, and a
    final attention with a wider range (still at most e^2: eq. 2 takes a softmax of probabilities)."""
    maps, f_a, f_tgt, index = realistic_tsg_inputs()
    tau = 0.025
    ratio = {}
    for similarity in ("dot", "cosine"):
        tsg = TSGPlus(maps.shape[-1], True, "add", tau, similarity)
        with torch.no_grad():
            s = tsg.distributions(maps, f_a, f_tgt, index, index[None])[:, :, 0]          # (T, 2, B, P)
            attention = tsg.attention(maps, f_a, f_tgt, index, index[None])[:, 0]       # (T, B, P)
        s_a, s_q = s[:, 0], s[:, 1]
        passing = (s_q >= tau).sum(-1).float()
        ratio[similarity] = (attention.amax(-1) / attention.amin(-1)).flatten()
        assert bool((ratio[similarity] <= math.exp(2) * (1 + 1e-5)).all())
        if similarity == "cosine":
            assert passing.max() == 0                      # s_q_hat = 0 everywhere: the target path is off
            assert (s_a.amax(-1) / s_a.amin(-1)).max() < 2
            assert ratio["cosine"].max() < 1.05
        else:
            assert passing.mean() >= 1                     # on average at least one position passes tau
            assert (s_a.amax(-1) / s_a.amin(-1)).median() > 100
    assert ratio["dot"].median() > 1.1 > ratio["cosine"].max()


# --- token orders ------------------------------------------------------------------------------------------------
def test_interleave_orders():
    T = 3
    v = torch.tensor([[[1.0], [2.0], [3.0]]])
    a = -v
    assert arrange_tokens(v, a, "IL(V;A)").flatten().tolist() == [1, -1, 2, -2, 3, -3]
    assert arrange_tokens(v, a, "IL(A;V)").flatten().tolist() == [-1, 1, -2, 2, -3, 3]
    assert arrange_tokens(v, a, "Cat(V;A)").flatten().tolist() == [1, 2, 3, -1, -2, -3]
    assert arrange_tokens(v, a, "Cat(A;V)").flatten().tolist() == [-1, -2, -3, 1, 2, 3]
    v_pos, a_pos = token_positions("IL(V;A)", T)
    assert v_pos.tolist() == [0, 2, 4] and a_pos.tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match="order"):
        token_positions("IL(V,A)", T)


@pytest.mark.parametrize("order", ORDERS)
def test_split_inverts_arrange(order):
    g = torch.Generator().manual_seed(0)
    v, a = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    v2, a2 = split_tokens(arrange_tokens(v, a, order), order)
    assert torch.equal(v2, v) and torch.equal(a2, a)


def test_cms_reads_each_order_at_its_own_positions():
    """Without position codes the attention ignores the token order, so the per-modality distributions that
    L_cms compares must be the same for every order, and must be the weights at that order's positions."""
    batch = make_batch()
    reference = small_model().eval()
    with torch.no_grad():
        base = reference(batch)
        for order in ORDERS:
            model = small_model(order=order).eval()
            model.load_state_dict(reference.state_dict())
            out = model(batch)
            torch.testing.assert_close(out["temporal_attn_visual"], base["temporal_attn_visual"])
            torch.testing.assert_close(out["temporal_attn_audio"], base["temporal_attn_audio"])
            v_pos, a_pos = token_positions(order, batch["visual"].shape[1])
            weights = out["temporal_attn"]
            torch.testing.assert_close(weights[:, v_pos] / weights[:, v_pos].sum(-1, keepdim=True),
                                       out["temporal_attn_visual"])
            torch.testing.assert_close(weights[:, a_pos] / weights[:, a_pos].sum(-1, keepdim=True),
                                       out["temporal_attn_audio"])
            loss_terms = model.loss(batch, out)[1]
            assert loss_terms["cms"] == pytest.approx(reference.loss(batch, base)[1]["cms"], rel=1e-4, abs=1e-7)


# --- JTG and the answer head: paper and TJSTG forms -----------------------------------------------------------
def jtg_inputs(B=3, T=4, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, d, generator=g), torch.randn(B, T, d, generator=g), torch.randn(B, d, generator=g)


def test_jtg_without_ffn_has_no_ffn_parameters_and_returns_the_attention_output():
    d = 16
    paper, tjstg = JTG(d, 2, 0.0), JTG(d, 2, 0.0, ffn=True)
    names = [name for name, _ in paper.named_parameters()]
    assert not any(name.startswith(("ffn", "norm")) for name in names)
    ffn_and_norm = 2 * (d * d + d) + 2 * d
    assert count_trainable(tjstg) - count_trainable(paper) == ffn_and_norm
    f_v, f_a, f_q = jtg_inputs(d=d)
    with torch.no_grad():
        tokens = arrange_tokens(paper.lstm_v(f_v)[0], paper.lstm_a(f_a)[0], "IL(V;A)")
        x, _ = question_query(paper.attn, f_q, tokens)
        paper.mean_mlp = torch.nn.Identity()                       # isolate f_att (eq. 14: f_att = MHA output)
        fused, _ = paper(f_v, f_a, f_q)
        torch.testing.assert_close(fused, x + tokens.mean(1))


def test_paper_mean_fusion_is_an_mlp_of_the_mean_post_lstm_token():
    d, T = 16, 4
    jtg = JTG(d, 2, 0.0).eval()
    assert [type(m).__name__ for m in jtg.mean_mlp] == ["Linear", "ReLU", "Linear"]
    assert jtg.mean_mlp[0].in_features == jtg.mean_mlp[-1].out_features == d
    f_v, f_a, f_q = jtg_inputs(T=T, d=d)
    with torch.no_grad():
        v_seq, a_seq = jtg.lstm_v(f_v)[0], jtg.lstm_a(f_a)[0]
        average = sum(v_seq[:, t] + a_seq[:, t] for t in range(T)) / (2 * T)     # Avg over the 2T tokens of f_av
        tokens = arrange_tokens(v_seq, a_seq, "IL(V;A)")
        expected = question_query(jtg.attn, f_q, tokens)[0] + jtg.mean_mlp(average)
        torch.testing.assert_close(jtg(f_v, f_a, f_q)[0], expected)
        # the per-video audio path (audio_index) gives the same mean
        per_video, index = f_a[[2, 0, 1]], torch.tensor([1, 2, 0])                # per_video[index] == f_a
        torch.testing.assert_close(jtg(f_v, per_video, f_q, index)[0], expected)
        # dual stream: the same Avg of the post-LSTM tokens
        dual = JTG(d, 2, 0.0, stream="dual").eval()
        v_seq, a_seq = dual.lstm_v(f_v)[0], dual.lstm_a(f_a)[0]
        attended = [question_query(dual.attn, f_q, v_seq)[0], question_query(dual.attn_audio, f_q, a_seq)[0]]
        x = dual.stream_fuse(torch.cat(attended, -1))
        torch.testing.assert_close(dual(f_v, f_a, f_q)[0], x + dual.mean_mlp(torch.cat([v_seq, a_seq], 1).mean(1)))
    with pytest.raises(ValueError, match="mean_fusion"):
        JTG(d, 2, 0.0, mean_fusion="avg")


def test_tjstg_forms_of_jtg_by_hand():
    d = 16
    jtg = JTG(d, 2, 0.0, ffn=True, mean_fusion="tjstg").eval()
    assert not hasattr(jtg, "mean_mlp") and jtg.fuse_mean.in_features == 2 * d
    f_v, f_a, f_q = jtg_inputs(d=d)
    with torch.no_grad():
        tokens = arrange_tokens(jtg.lstm_v(f_v)[0], jtg.lstm_a(f_a)[0], "IL(V;A)")
        x, _ = question_query(jtg.attn, f_q, tokens)
        f_att = jtg.norm(x + jtg.ffn(x))
        mean = jtg.fuse_mean(torch.tanh(torch.cat([f_a.mean(1), f_v.mean(1)], -1)))   # pre-LSTM features
        torch.testing.assert_close(jtg(f_v, f_a, f_q)[0], f_att + mean)


def test_answer_head_with_and_without_tanh():
    g = torch.Generator().manual_seed(0)
    fused, f_q = 3 * torch.randn(4, 16, generator=g), 3 * torch.randn(4, 16, generator=g)
    paper, tjstg = AnswerHead(16, 42, tanh=False), AnswerHead(16, 42)
    tjstg.load_state_dict(paper.state_dict())
    W, b = paper.fc.weight, paper.fc.bias
    with torch.no_grad():
        torch.testing.assert_close(paper(fused, f_q), (fused * f_q) @ W.T + b)             # eq. 20, then FC
        torch.testing.assert_close(tjstg(fused, f_q), torch.tanh(fused * f_q) @ W.T + b)   # the class default
        assert not torch.allclose(paper(fused, f_q), tjstg(fused, f_q))
    assert small_model().answer_head.tanh is False
    assert small_model(answer_tanh=True).answer_head.tanh is True
    assert build_model("qonly", d_model=16, sentence_dim=20).answer_head.tanh is True


OLD_FORMS = dict(similarity="cosine", target_tokens="all", jtg_ffn=True, mean_fusion="tjstg", answer_tanh=True)


def reference_old_forward(model, batch):
    """The earlier (TJSTG-form) TASS-Net written out from the model's own weights, eval mode: cosine TSG+,
    argmax over every real token, FFN + LayerNorm after the attention, FC(tanh([mean f_a; mean f_v])) and a tanh
    before the answer classifier."""
    index = batch["video_index"]
    maps = model.visual_proj(batch["visual"])
    f_a = model.audio_proj(batch["audio"])
    f_q = model.question_proj(batch["sentence"])
    word = model.target_word
    words = word.token_proj(word.norm(word.standardize(batch["tokens"])))
    scores = torch.einsum("bld,bd->bl", words, word.query(f_q)) / math.sqrt(words.shape[-1])
    chosen = scores.masked_fill(~batch["token_mask"], float("-inf")).argmax(-1)
    f_tgt = word.mlp(words[torch.arange(len(chosen)), chosen])
    attention = reference_tsg_attention(maps, f_a, f_tgt, index, index, "add", model.tsg.tau, True, "cosine")
    m = maps[index]
    f_v = model.tsg.fc(torch.tanh(torch.cat([m.mean(2), torch.einsum("btp,btpd->btd", attention, m)], -1)))
    jtg = model.jtg
    tokens = arrange_tokens(jtg.lstm_v(f_v)[0], jtg.lstm_a(f_a)[0][index], "IL(V;A)")
    x = question_query(jtg.attn, f_q, tokens)[0]
    fused = jtg.norm(x + jtg.ffn(x)) + jtg.fuse_mean(torch.tanh(torch.cat([f_a[index].mean(1), f_v.mean(1)], -1)))
    return model.answer_head.fc(torch.tanh(fused * f_q)), attention, chosen


def test_old_forms_are_reachable_and_give_the_old_outputs():
    batch = make_batch(U=3, B=6, L=6)
    old, new = small_model(**OLD_FORMS).eval(), small_model().eval()
    with torch.no_grad():
        out = old(batch)
        logits, attention, chosen = reference_old_forward(old, batch)
        torch.testing.assert_close(out["logits"], logits)
        torch.testing.assert_close(out["spatial_attn"], attention)
        assert torch.equal(out["target_weights"].argmax(-1), chosen)
        keys_old, keys_new = set(old.state_dict()), set(new.state_dict())
        assert keys_old - keys_new == {"jtg.ffn.0.weight", "jtg.ffn.0.bias", "jtg.ffn.3.weight", "jtg.ffn.3.bias",
                                       "jtg.norm.weight", "jtg.norm.bias", "jtg.fuse_mean.weight", "jtg.fuse_mean.bias"}
        assert keys_new - keys_old == {"jtg.mean_mlp.0.weight", "jtg.mean_mlp.0.bias", "jtg.mean_mlp.2.weight",
                                       "jtg.mean_mlp.2.bias"}
        new.load_state_dict({k: v for k, v in old.state_dict().items() if k in keys_new} |
                            {k: new.state_dict()[k] for k in keys_new - keys_old})
        assert not torch.allclose(new(batch)["logits"], out["logits"])   # the defaults are different equations


# --- the full model ---------------------------------------------------------------------------------------------
OPTION_SETS = [
    {}, {"target_aware": False}, {"combine": "mul"}, {"combine": "max"}, {"tau": 0.0}, {"tau": 0.03},
    {"use_ls": False}, {"use_cms": False}, {"use_tsg": False}, {"use_jtg": False},
    {"use_tsg": False, "use_jtg": False}, {"order": "IL(A;V)"}, {"order": "Cat(V;A)"}, {"order": "Cat(A;V)"},
    {"stream": "dual"}, {"stream": "dual", "order": "Cat(A;V)"}, {"positional": "sinusoidal"},
    {"target": "mask"}, {"cms_weight": 0.0, "ls_weight": 1.0}, {"modalities": ["visual"]},
    {"similarity": "cosine"}, {"similarity": "scaled_dot"}, {"target_tokens": "all"}, {"target_grad": "none"},
    {"jtg_ffn": True}, {"mean_fusion": "tjstg"}, {"answer_tanh": True}, {"input_norm": "none"}, OLD_FORMS,
    {**OLD_FORMS, "stream": "dual"}, {"stream": "dual", "jtg_ffn": True}, {"use_jtg": False, "mean_fusion": "tjstg"},
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_output_shapes_and_loss_for_every_option(options):
    U, B, T, L = 3, 5, 4, 6
    batch = make_batch(U, B, T, L)
    model = small_model(**options).train()
    out = model(batch)
    assert out["logits"].shape == (B, 42)
    assert out["spatial_attn"].shape == (B, T, 49)
    assert out["temporal_attn"].shape == (B, 2 * T)
    assert out["temporal_attn_visual"].shape == out["temporal_attn_audio"].shape == (B, T)
    for key, size in (("spatial_attn", (B, T)), ("temporal_attn", (B,)), ("temporal_attn_visual", (B,)),
                      ("temporal_attn_audio", (B,))):
        torch.testing.assert_close(out[key].float().sum(-1), torch.ones(size))
    use_ls = options.get("use_ls", options.get("use_tsg", True))    # L_s goes with TSG+ unless set
    if use_ls:
        assert out["match_logits"].shape == out["mismatch_logits"].shape == (B, T, 2)
    else:
        assert "match_logits" not in out
    total, terms = model.loss(batch, out)
    assert set(terms) == {"qa", "cms", "match", "total"}
    assert math.isfinite(terms["total"])
    if not options.get("use_cms", True) or not options.get("use_jtg", True):
        assert terms["cms"] == 0.0
    if not use_ls:
        assert terms["match"] == 0.0
    weights = {"qa": 1.0, "cms": options.get("cms_weight", 1.0), "match": options.get("ls_weight", 0.5)}
    assert terms["total"] == pytest.approx(sum(weights[k] * terms[k] for k in weights), rel=1e-5)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_full_size_shapes_fp32_and_bf16():
    U, B, T, L = 2, 3, 10, 8
    batch = make_batch(U, B, T, L, visual_dim=2048, audio_dim=128, sentence_dim=1024, token_dim=512)
    torch.manual_seed(0)
    model = build_model("tass").eval()
    with torch.no_grad():
        out = model(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = model(batch)
            _, terms = model.loss(batch, out_bf16)
    assert out["logits"].shape == (B, 42) and out["spatial_attn"].shape == (B, T, 49)
    assert out["temporal_attn"].shape == (B, 2 * T) and out["match_logits"].shape == (B, T, 2)
    assert out_bf16["logits"].shape == (B, 42) and torch.isfinite(out_bf16["logits"].float()).all()
    assert out_bf16["spatial_attn"].dtype == torch.float32  # attention arithmetic stays fp32 under autocast
    assert all(math.isfinite(v) for v in terms.values())


def test_unique_video_gather_equals_per_question_inputs():
    index = [0, 0, 1, 2, 2, 1]
    shared = make_batch(U=3, B=6, video_index=index)
    per_question = dict(shared, visual=shared["visual"][shared["video_index"]],
                        audio=shared["audio"][shared["video_index"]], video_index=torch.arange(6))
    model = small_model().eval()
    with torch.no_grad():
        a, b = model(shared), model(per_question)
    for key in ("logits", "spatial_attn", "temporal_attn", "target_weights", "match_logits"):
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("removed", ["visual", "audio"])
def test_a_zeroed_modality_gives_finite_outputs(removed):
    """The data pipeline feeds a removed modality as zeros; the input LayerNorms must not turn that into NaN."""
    batch = make_batch()
    batch[removed] = torch.zeros_like(batch[removed])
    model = small_model()
    out = model(batch)
    total, terms = model.loss(batch, out)
    total.backward()
    assert torch.isfinite(out["logits"]).all() and all(math.isfinite(v) for v in terms.values())
    if removed == "visual":  # identical positions: the spatial attention is uniform
        torch.testing.assert_close(out["spatial_attn"], torch.full_like(out["spatial_attn"], 1 / 49))


def test_match_loss_negatives_are_the_next_unique_video_at_the_same_segment():
    """L_s pairs (eqs. 6-7): a negative grounds the question's own audio and target on the visual maps of the
    next unique video of the batch, segment by segment (the paper says only "sampled from different videos")."""
    batch = make_batch(U=3, B=5)
    model = small_model().eval()
    with torch.no_grad():
        out = model(batch)
        index = batch["video_index"]
        maps = model.visual_proj(batch["visual"])
        f_a = model.audio_proj(batch["audio"])
        f_q = model.question_proj(batch["sentence"])
        f_tgt, _ = model.target_word(batch["tokens"], f_q, batch["token_mask"], batch["target_mask"])
        f_v_other, _ = model.tsg(maps, f_a, f_tgt, index, (index + 1) % 3)
        torch.testing.assert_close(out["mismatch_logits"], model.match_head(f_a[index], f_v_other))
        f_v_own, _ = model.tsg(maps, f_a, f_tgt, index, index)
        torch.testing.assert_close(out["match_logits"], model.match_head(f_a[index], f_v_own))


def test_single_video_batch_skips_match_loss():
    batch = make_batch(U=1, B=3)
    model = small_model()
    out = model(batch)
    assert "match_logits" not in out
    assert model.loss(batch, out)[1]["match"] == 0.0


def test_word_token_mask_drops_sot_and_eot():
    token_mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0],     # SOT w w w EOT pad pad
                               [1, 1, 1, 0, 0, 0, 0],     # SOT w EOT
                               [1, 1, 0, 0, 0, 0, 0],     # SOT EOT only: falls back to both real tokens
                               [1, 1, 1, 1, 1, 1, 1]]).bool()  # no padding
    expected = torch.tensor([[0, 1, 1, 1, 0, 0, 0],
                             [0, 1, 0, 0, 0, 0, 0],
                             [1, 1, 0, 0, 0, 0, 0],
                             [0, 1, 1, 1, 1, 1, 0]]).bool()
    assert torch.equal(word_token_mask(token_mask), expected)


def rigged_target_word(target_tokens, mode="attention", d=8, L=7, B=6, seed=0):
    """A TargetWord whose scorer is the identity, and tokens (B, L, d) whose SOT and EOT equal 10 f_q: the
    scores favour exactly the two special tokens."""
    g = torch.Generator().manual_seed(seed)
    word = TargetWord(d, d, mode, target_tokens=target_tokens)
    with torch.no_grad():
        word.query.weight.copy_(torch.eye(d))
        word.query.bias.zero_()
    lengths = torch.tensor([7, 6, 5, 4, 3, 2])[:B]
    token_mask = torch.arange(L)[None] < lengths[:, None]
    f_q = torch.randn(B, d, generator=g)
    words = 0.1 * torch.randn(B, L, d, generator=g) * token_mask[..., None]
    words[:, 0] = 10 * f_q
    words[torch.arange(B), lengths - 1] = 10 * f_q
    return word, words, f_q, token_mask


@pytest.mark.parametrize("scores", ["random", "rigged"])
def test_target_word_is_never_sot_or_eot(scores):
    if scores == "rigged":
        word, words, f_q, token_mask = rigged_target_word("words")
        all_tokens = rigged_target_word("all")[0]
        old = all_tokens.selection(words, f_q, token_mask, torch.zeros_like(token_mask)).argmax(-1)
        eot = token_mask.sum(-1) - 1
        assert bool(((old == 0) | (old == eot)).all())             # "all" picks a special token every time
    else:
        g = torch.Generator().manual_seed(1)
        B, L, d = 64, 9, 8
        word = TargetWord(d, d)
        token_mask = torch.arange(L)[None] < torch.randint(3, L + 1, (B, 1), generator=g)
        words, f_q = torch.randn(B, L, d, generator=g), torch.randn(B, d, generator=g)
    weights = word.selection(words, f_q, token_mask, torch.zeros_like(token_mask))
    chosen = weights.argmax(-1)
    eot = token_mask.sum(-1) - 1
    short = eot == 1                                                 # only SOT and EOT: the fallback
    assert torch.equal(weights.detach().sum(-1), torch.ones(len(weights)))
    assert bool(((chosen != 0) & (chosen != eot))[~short].all())
    assert bool(token_mask[torch.arange(len(chosen)), chosen].all())  # never padding
    assert bool(token_mask[torch.arange(len(chosen)), chosen][short].all())


def test_target_mask_mode_uses_word_tokens_only():
    word, words, f_q, token_mask = rigged_target_word("words", mode="mask")
    target_mask = token_mask.clone()                                 # every real token, SOT and EOT included
    target_mask[-1] = False                                          # a question naming no object
    weights = word.selection(words, f_q, token_mask, target_mask)
    named = word_token_mask(token_mask)[:-1]
    torch.testing.assert_close(weights[:-1], named.float() / named.sum(-1, keepdim=True))
    old = rigged_target_word("all", mode="mask")[0].selection(words, f_q, token_mask, target_mask)
    torch.testing.assert_close(old[:-1], token_mask[:-1].float() / token_mask[:-1].sum(-1, keepdim=True))


def test_target_word_choice():
    batch = make_batch()
    model = small_model().train()
    out = model(batch)
    weights = out["target_weights"].detach()
    assert torch.equal(weights.sum(-1), torch.ones(len(weights)))
    assert torch.equal((weights == 1).sum(-1), torch.ones(len(weights), dtype=torch.long))  # one token each
    assert not (weights.bool() & ~word_token_mask(batch["token_mask"])).any()  # a word, never SOT, EOT or padding
    model.loss(batch, out)[0].backward()
    assert model.target_word.query.weight.grad.abs().sum() > 0  # straight-through gradient reaches the scorer

    hard = small_model(target_grad="none").train()
    out = hard(batch)
    torch.testing.assert_close(out["target_weights"], weights)  # same choice, same weights
    hard.loss(batch, out)[0].backward()
    assert hard.target_word.query.weight.grad is None  # TJSTG's hard argmax: no gradient to the scorer
    assert hard.target_word.token_proj.weight.grad.abs().sum() > 0  # the chosen token still learns

    masked = small_model(target="mask")
    chosen = masked(batch)["target_weights"].detach()
    named = batch["target_mask"].any(-1)
    torch.testing.assert_close(chosen[named], batch["target_mask"][named].float())
    assert torch.equal((chosen[~named] == 1).sum(-1), torch.ones(int((~named).sum()), dtype=torch.long))


def test_adam_steps_reduce_loss_on_a_fixed_batch():
    batch = make_batch(seed=1)
    model = small_model(seed=1)
    history = adam_steps(model, batch, steps=30, lr=3e-3)
    assert history[-1]["qa"] < 0.5 * history[0]["qa"]
    assert history[-1]["total"] < history[0]["total"] - 1.5
    assert all(later["total"] < earlier["total"] for earlier, later in zip(history[::5], history[5::5]))


def test_same_seed_same_outputs():
    batch = make_batch()
    outputs = []
    for _ in range(2):
        model = small_model(seed=7, dropout=0.3).train()
        torch.manual_seed(11)
        outputs.append(model(batch))
    for key in outputs[0]:
        assert torch.equal(outputs[0][key], outputs[1][key]), key


def test_batch_contract_errors():
    model = small_model()
    batch = make_batch()
    with pytest.raises(KeyError, match="target_mask"):
        model({k: v for k, v in batch.items() if k != "target_mask"})
    with pytest.raises(ValueError, match="visual"):
        model(dict(batch, visual=batch["visual"][..., :5]))
    with pytest.raises(ValueError, match="video_index"):
        model(dict(batch, video_index=batch["video_index"] + 10))
    with pytest.raises(ValueError, match="token_mask"):
        model(dict(batch, token_mask=torch.zeros_like(batch["token_mask"])))


# --- question-only baseline ------------------------------------------------------------------------------------
def test_qonly_ignores_audio_visual_and_tokens():
    torch.manual_seed(0)
    model = build_model("qonly", d_model=16, sentence_dim=20).eval()
    batch = make_batch()
    changed = make_batch(seed=5)
    changed["sentence"], changed["answer"] = batch["sentence"], batch["answer"]
    with torch.no_grad():
        out = model(batch)
        assert torch.equal(out["logits"], model(changed)["logits"])
        assert torch.equal(out["logits"], model({"sentence": batch["sentence"]})["logits"])
    assert out["logits"].shape == (5, 42)
    total, terms = model.loss(batch, out)
    assert set(terms) == {"qa", "total"} and terms["qa"] == pytest.approx(terms["total"])


# --- registry and parameter counts ------------------------------------------------------------------------------
def test_build_model_errors():
    with pytest.raises(ValueError, match="registered models: " + re.escape(str(sorted(REGISTRY)))):
        build_model("tassnet")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['stride'\]; valid options: .*'order'"):
        build_model("tass", stride=2)
    with pytest.raises(ValueError, match="order='IL'"):
        build_model("tass", order="IL")
    with pytest.raises(ValueError, match="stream"):
        build_model("tass", stream="triple")
    for option, value in (("similarity", "cos"), ("target_tokens", "nouns"), ("target_grad", "soft"),
                          ("mean_fusion", "mean"), ("input_norm", "ln")):
        with pytest.raises(ValueError, match=f"{option}={value!r}"):
            build_model("tass", use_tsg=False, use_jtg=False, **{option: value})  # checked even when unused
    assert "combine" in valid_options("tass") and "d_model" in valid_options("qonly")


def test_dual_stream_adds_one_attention_and_a_fusion_layer():
    d = 64
    single = count_trainable(build_model("tass", d_model=d))
    dual = count_trainable(build_model("tass", d_model=d, stream="dual"))
    attention = 4 * (d * d + d)
    fusion = 2 * d * d + d
    assert dual - single == attention + fusion


def test_params_report_and_cli(capsys):
    assert parse_options(["stream=dual", "use_ls=false", "tau=0.02", "order=Cat(A;V)"]) == {
        "stream": "dual", "use_ls": False, "tau": 0.02, "order": "Cat(A;V)"}
    with pytest.raises(ValueError, match="key=value"):
        parse_options(["stream"])
    report = parameter_report("qonly", {"d_model": 8, "sentence_dim": 4})
    assert report["total"] == sum(report["blocks"].values())
    assert report["blocks"] == trainable_by_block(build_model("qonly", d_model=8, sentence_dim=4))

    from avqa.cli import main
    assert main(["params", "--model", "qonly", "--option", "d_model=8", "--option", "sentence_dim=4"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == report
    assert any(line.startswith("total") for line in printed)
    with pytest.raises(SystemExit, match="unknown option"):
        main(["params", "--option", "nonsense=1"])


# --- input standardisation -------------------------------------------------------------------------------------
def test_standardize_is_identity_until_fitted_then_zero_mean_unit_std():
    from avqa.models.blocks import Standardize

    x = 0.7 + 1e-3 * torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    norm = Standardize(6, "audio")
    assert torch.equal(norm(x), x)
    norm.fit(x.mean(0), x.std(0, unbiased=False))
    y = norm(x)
    assert torch.allclose(y.mean(0), torch.zeros(6), atol=1e-3) and torch.allclose(y.std(0), torch.ones(6), atol=1e-2)
    norm.fit(torch.zeros(6), torch.zeros(6))               # zero spread (a removed input): scale stays 1
    assert torch.equal(norm(x), x)
    with pytest.raises(ValueError, match="expected"):
        norm.fit(torch.zeros(5), torch.ones(5))


def test_fitted_statistics_live_in_the_state_dict_and_change_the_output():
    from avqa.models.blocks import fit_input_stats, input_sources

    model, batch = small_model().eval(), make_batch()
    assert input_sources(model) == {"visual", "audio", "sentence", "tokens"}
    before = model(batch)["logits"]
    dims = {"visual": 24, "audio": 8, "sentence": 20, "tokens": 12}
    stats = {k: (torch.full((d,), 0.7), torch.full((d,), 1e-3)) for k, d in dims.items()}
    assert sorted(fit_input_stats(model, stats)) == sorted(dims)
    after = model(batch)["logits"]
    assert not torch.allclose(before, after)
    copy = small_model(seed=0).eval()
    copy.load_state_dict(model.state_dict())               # a checkpoint carries its normalisation
    assert torch.allclose(copy(batch)["logits"], after)
    with pytest.raises(KeyError, match="visual"):
        fit_input_stats(model, {k: v for k, v in stats.items() if k != "visual"})
    assert input_sources(build_model("qonly", d_model=16, sentence_dim=20)) == {"sentence"}


def test_input_norm_none_gives_the_papers_plain_projections():
    from avqa.models.blocks import input_sources

    model, batch = small_model(input_norm="none").eval(), make_batch()
    assert input_sources(model) == set()                   # nothing for the trainer to fit
    visual = batch["visual"]
    with torch.no_grad():
        expected = model.visual_proj.proj(visual.reshape(*visual.shape[:2], -1, visual.shape[-1]))
        torch.testing.assert_close(model.visual_proj(visual), expected)
        torch.testing.assert_close(model.audio_proj(batch["audio"]), model.audio_proj.mlp(batch["audio"]))
        torch.testing.assert_close(model.question_proj(batch["sentence"]),
                                   model.question_proj.proj(batch["sentence"]))
    assert count_trainable(model) == count_trainable(small_model())  # the normalisation has no parameters
