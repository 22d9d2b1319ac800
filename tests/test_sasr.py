"""SaSR-Net (avqa.models.sasr): shapes, the paper's equations and loss terms against hand computations, the
masked L_source, the source tokens' attention at initialisation, index handling, bf16 autocast, training steps,
the trainable parameter count and the forward FLOPs."""
import math

import pytest
import torch
import torch.nn.functional as F

from avqa.vocab import INSTRUMENTS
from avqa.models import build_model, count_trainable, trainable_by_block
from avqa.models.sasr import SaSRBlock, self_attention, token_init_std
from model_batches import SMALL as SMALL_MODELS, adam_steps, sasr_batch as make_batch, small_model as build_small

C = len(INSTRUMENTS)
SMALL = SMALL_MODELS["sasr"]


pytestmark = pytest.mark.usefixtures("one_thread")


def small_model(seed=0, **options):
    return build_small("sasr", seed, **options)


# --- shapes -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("H", [7, 14])
def test_output_shapes_with_several_questions_per_video(H):
    U, B, T = 3, 5, 4
    batch = make_batch(U, B, T, H)
    out = small_model().train()(batch)
    assert out["logits"].shape == (B, 42)
    assert out["spatial_attn"].shape == (B, T, H * H)
    assert out["temporal_attn_audio"].shape == out["temporal_attn_visual"].shape == (B, T)
    assert out["temporal_attn"].shape == (B, 2 * T)
    assert out["source_logits_audio"].shape == out["source_logits_visual"].shape == (B, C)
    assert out["source_attn_audio"].shape == out["source_attn_visual"].shape == (B, T, C)
    assert out["token_logits"].shape == (C, C)
    assert out["match_logits"].shape == out["mismatch_logits"].shape == (B, T, 2)
    for key, size in (("spatial_attn", (B, T)), ("temporal_attn_audio", (B,)), ("temporal_attn_visual", (B,)),
                      ("temporal_attn", (B,)), ("source_attn_audio", (B, T))):
        torch.testing.assert_close(out[key].float().sum(-1), torch.ones(size))
    # the interleaved view holds the two distributions at IL(V;A) positions, halved
    torch.testing.assert_close(out["temporal_attn"][:, 0::2] * 2, out["temporal_attn_visual"])
    torch.testing.assert_close(out["temporal_attn"][:, 1::2] * 2, out["temporal_attn_audio"])
    # questions on the same video share everything that depends on the video only
    torch.testing.assert_close(out["spatial_attn"][0], out["spatial_attn"][1])
    torch.testing.assert_close(out["source_logits_audio"][3], out["source_logits_audio"][4])


def test_forward_never_reads_the_labels():
    batch = make_batch()
    model = small_model().eval()
    unlabeled = {k: v for k, v in batch.items() if not k.startswith("sources_")}
    with torch.no_grad():
        torch.testing.assert_close(model(batch)["logits"], model(unlabeled)["logits"])


# --- the paper's equations ----------------------------------------------------------------------------------------
def test_sasr_block_equals_the_papers_equations():
    """Sec. 3.2-3.3 written out with the block's own weights."""
    torch.manual_seed(0)
    U, T, d, n = 2, 3, 8, 5
    block = SaSRBlock(d)
    f_r, tokens = torch.randn(U, T, d), torch.randn(n, d)
    f_g, presence, weights = block(f_r, tokens)

    def cross(attn, a, b):
        w = (attn.q(a) @ attn.k(b).transpose(-1, -2) / math.sqrt(d)).softmax(-1)
        return w @ attn.v(b), w

    for u in range(U):
        joint = torch.cat([f_r[u], tokens])                                  # [f^r ; G_C]
        mixed = (joint @ joint.T / math.sqrt(d)).softmax(-1) @ joint         # S(f)
        f_s, g = mixed[:T], mixed[T:]
        g_new = g + block.token_fc(cross(block.token_attn, g, f_s)[0])       # G' = G + FC(CrossAttn(G, f^s))
        expressed, w = cross(block.feature_attn, f_s, g_new)
        torch.testing.assert_close(f_g[u], block.feature_fc(expressed))      # f^g = FC(CrossAttn(f^s, G'))
        torch.testing.assert_close(presence[u], block.presence(g_new)[:, 0])  # FC(G')
        torch.testing.assert_close(weights[u], w)


def test_spatial_and_temporal_attention_equations():
    batch = make_batch()
    model = small_model().eval()
    with torch.no_grad():
        out = model(batch)
        video = model.video_features(batch["visual"], batch["audio"])
        index = batch["video_index"]
        maps, g_a = video["maps"], video["g_audio"]
        cosine = torch.einsum("utpd,utd->utp", F.normalize(maps, dim=-1), F.normalize(g_a, dim=-1))
        torch.testing.assert_close(out["spatial_attn"], cosine.softmax(-1)[index])
        attended = torch.einsum("utp,utpd->utd", cosine.softmax(-1), maps)
        f_sa = model.spatial.fc(torch.tanh(torch.cat([video["g_visual"], attended], -1)))
        torch.testing.assert_close(video["sa_visual"], f_sa)
        f_q = model.question_proj(batch["sentence"])
        d = f_q.shape[-1]
        for key, sequence in (("temporal_attn_audio", g_a[index]), ("temporal_attn_visual", f_sa[index])):
            expected = (torch.einsum("btd,bd->bt", sequence, f_q) / math.sqrt(d)).softmax(-1)
            torch.testing.assert_close(out[key], expected)


def test_ablations_give_uniform_attention():
    batch = make_batch()
    out = small_model(use_spatial=False, use_temporal=False)(batch)
    torch.testing.assert_close(out["spatial_attn"], torch.full_like(out["spatial_attn"], 1 / 49))
    T = batch["visual"].shape[1]
    torch.testing.assert_close(out["temporal_attn_audio"], torch.full_like(out["temporal_attn_audio"], 1 / T))


# --- loss terms against hand computations -----------------------------------------------------------------------
def test_source_loss_is_bce_of_presence_logits_audio_plus_visual():
    batch = make_batch()
    model = small_model()
    with torch.no_grad():
        out = model(batch)
    _, terms = model.loss(batch, out)
    index = batch["video_index"]
    expected = 0.0
    for modality in ("audio", "visual"):
        p = torch.sigmoid(out[f"source_logits_{modality}"]).double()
        y = batch[f"sources_{modality}"][index].double()
        expected += float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())
    assert terms["source"] == pytest.approx(expected, rel=1e-5)


def source_term(model, batch, out):
    return model.source_loss(batch, out)


def test_source_loss_averages_over_the_labelled_questions_only():
    batch = make_batch()                                        # video_index [0, 0, 1, 2, 2]
    batch["sources_mask_audio"] = torch.tensor([1.0, 0.0, 1.0])
    batch["sources_mask_visual"] = torch.tensor([0.0, 1.0, 1.0])
    model = small_model()
    with torch.no_grad():
        out = model(batch)
    index = batch["video_index"]
    expected = 0.0
    for modality in ("audio", "visual"):
        keep = batch[f"sources_mask_{modality}"][index].bool()
        expected += float(F.binary_cross_entropy_with_logits(out[f"source_logits_{modality}"][keep],
                                                             batch[f"sources_{modality}"][index][keep]))
    assert float(source_term(model, batch, out)) == pytest.approx(expected, rel=1e-5)
    # without masks every video counts (the batches of hand-made tests, and the synthetic scenes)
    unmasked = {k: v for k, v in batch.items() if not k.startswith("sources_mask_")}
    ones = dict(batch, sources_mask_audio=torch.ones(3), sources_mask_visual=torch.ones(3))
    assert float(source_term(model, unmasked, out)) == pytest.approx(float(source_term(model, ones, out)), rel=1e-6)


def test_a_masked_video_changes_neither_the_loss_nor_the_gradients():
    batch = make_batch()
    batch["sources_mask_audio"] = torch.tensor([1.0, 0.0, 1.0])
    batch["sources_mask_visual"] = torch.tensor([1.0, 0.0, 1.0])
    flipped = dict(batch, sources_audio=batch["sources_audio"].clone(), sources_visual=batch["sources_visual"].clone())
    flipped["sources_audio"][1] = 1 - flipped["sources_audio"][1]       # "no instrument" <-> "every instrument"
    flipped["sources_visual"][1] = 1 - flipped["sources_visual"][1]
    model = small_model()
    losses, grads = [], []
    for b in (batch, flipped):
        model.zero_grad()
        loss = source_term(model, b, model(b))
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert losses[0] == losses[1]
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_a_batch_without_labelled_videos_gives_zero_and_finite_gradients():
    batch = make_batch()
    batch["sources_mask_audio"] = batch["sources_mask_visual"] = torch.zeros(3)
    model = small_model()
    out = model(batch)
    source = source_term(model, batch, out)
    assert float(source.detach()) == 0.0
    source.backward()
    assert all(torch.isfinite(p.grad).all() and not p.grad.any() for p in model.parameters() if p.grad is not None)
    model.zero_grad()
    total, terms = model.loss(batch, model(batch))
    total.backward()
    assert terms["source"] == 0.0 and math.isfinite(terms["total"])
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="sources_mask_visual"):
        model.loss(dict(batch, sources_mask_visual=torch.zeros(5)), out)


# --- the source tokens in S([f^r ; G_C]) --------------------------------------------------------------------------
def expected_shares(T, n_sources=C):
    """Token rows of S at initialisation when every score but the self-score (ln C) is ~0."""
    spread = n_sources + (n_sources - 1) + T
    return {"token_to_self": n_sources / spread, "token_to_features": T / spread}


def test_source_tokens_and_features_attend_to_each_other_from_the_start():
    """With N(0, 1) tokens (the former init) S's token half was the identity: self-score |g|^2 / sqrt(D) = 22.6.
    At token_init_std the self-score is ln C: a token keeps about C / (2C - 1 + T) on itself (0.42 at T = 10)
    and gives the features T / (2C - 1 + T) (0.19); the bounds allow for the random scores around those."""
    T = 10
    batch = make_batch(U=4, B=6, T=T, visual_dim=2048, audio_dim=128, sentence_dim=1024,
                       video_index=[0, 0, 1, 2, 3, 3])
    torch.manual_seed(0)
    model = build_model("sasr").train()
    assert model.source_tokens.tokens.std().item() == pytest.approx(token_init_std(C, 512), rel=0.05)
    init = model.joint_attention_shares(batch)
    former = build_model("sasr")
    former.load_state_dict(model.state_dict())
    with torch.no_grad():
        former.source_tokens.tokens.normal_(generator=torch.Generator().manual_seed(0))
    before = former.joint_attention_shares(batch)
    adam_steps(model, batch, steps=10, lr=1e-3)
    trained = model.joint_attention_shares(batch)
    for name, shares in (("N(0,1) tokens", before), ("init", init), ("after 10 Adam steps", trained)):
        print(f"\n{name}: " + "; ".join(f"{m} " + ", ".join(f"{k} {v:.4f}" for k, v in s.items())
                                        for m, s in shares.items()))
    expected = expected_shares(T)
    for modality in ("audio", "visual"):
        assert before[modality]["token_to_self"] > 0.9999 and before[modality]["token_to_features"] < 1e-6
        assert init[modality]["token_max_self"] < 0.9
        assert init[modality]["token_to_features"] == pytest.approx(expected["token_to_features"], abs=0.03)
        assert init[modality]["token_to_self"] == pytest.approx(expected["token_to_self"], abs=0.05)
        assert trained[modality]["token_max_self"] < 0.9 and trained[modality]["token_to_features"] > 0.1


def test_source_tokens_stay_distinct_through_the_self_attention():
    """The init also keeps the C tokens apart after S (zeros or std 0.02 make them the same mixture)."""
    torch.manual_seed(0)
    d, T = 512, 10
    features = torch.randn(2, T, d) * 0.25                     # |f|^2 ~ 32, the audio projection's scale
    for std, distinct in ((token_init_std(C, d), True), (0.02, False)):
        tokens = torch.randn(C, d) * std
        mixed = self_attention(SaSRBlock.joint(features, tokens))[:, T:]
        cosine = F.normalize(mixed, dim=-1) @ F.normalize(mixed, dim=-1).transpose(-1, -2)
        off_diagonal = cosine[:, ~torch.eye(C, dtype=torch.bool)].mean()
        assert (off_diagonal < 0.5) == distinct, (std, float(off_diagonal))


def test_reg_loss_makes_token_k_classify_as_category_k():
    model = small_model()
    out = model(make_batch())
    logits = model.source_tokens.classifier(model.source_tokens.tokens).detach()
    torch.testing.assert_close(out["token_logits"], logits)
    expected = -sum(float(logits[k].log_softmax(-1)[k]) for k in range(C)) / C
    assert model.loss(make_batch(), out)[1]["reg"] == pytest.approx(expected, rel=1e-5)
    # trained on L_reg alone, every token ends up classified as its own category
    optimizer = torch.optim.Adam(model.source_tokens.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model.source_tokens.category_logits(), torch.arange(C))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(model.source_tokens.category_logits().argmax(-1), torch.arange(C))


def test_match_loss_labels_matched_1_and_mismatched_0_with_the_next_videos_visual():
    batch = make_batch()
    model = small_model().eval()
    with torch.no_grad():
        out = model(batch)
        video = model.video_features(batch["visual"], batch["audio"])
        index = batch["video_index"]
        other = (torch.arange(3) + 1) % 3                       # video u's audio with video u+1's visual
        f_sa_other, _ = model.spatial(video["maps"][other], video["g_audio"], video["g_visual"][other])
        torch.testing.assert_close(out["mismatch_logits"], model.match_head(video["g_audio"], f_sa_other)[index])
        torch.testing.assert_close(out["match_logits"], model.match_head(video["g_audio"], video["sa_visual"])[index])
        matched = out["match_logits"].reshape(-1, 2).log_softmax(-1)[:, 1]
        mismatched = out["mismatch_logits"].reshape(-1, 2).log_softmax(-1)[:, 0]
        expected = float(-torch.cat([matched, mismatched]).mean())
        assert model.loss(batch, out)[1]["match"] == pytest.approx(expected, rel=1e-5)


def test_total_is_the_weighted_sum_and_zero_weights_switch_terms_off():
    batch = make_batch()
    model = small_model(source_weight=0.3, reg_weight=0.7, match_weight=0.2)
    total, terms = model.loss(batch, model(batch))
    expected = terms["qa"] + 0.3 * terms["source"] + 0.7 * terms["reg"] + 0.2 * terms["match"]
    assert terms["total"] == pytest.approx(expected, rel=1e-5) and float(total.detach()) == pytest.approx(expected, rel=1e-5)

    off = small_model(source_weight=0, reg_weight=0, match_weight=0)
    unlabeled = {k: v for k, v in batch.items() if not k.startswith("sources_")}   # labels not needed then
    out = off(unlabeled)
    assert "match_logits" not in out and not hasattr(off, "match_head")
    _, terms = off.loss(unlabeled, out)
    assert terms["source"] == terms["reg"] == terms["match"] == 0.0
    assert terms["total"] == pytest.approx(terms["qa"])


def test_single_video_batch_has_no_mismatched_pairs():
    batch = make_batch(U=1, B=3, video_index=[0, 0, 0])
    model = small_model()
    out = model(batch)
    assert "match_logits" not in out
    _, terms = model.loss(batch, out)
    assert terms["match"] == 0.0 and terms["source"] > 0


# --- indices -----------------------------------------------------------------------------------------------------
def test_permuting_the_unique_videos_and_remapping_video_index_changes_nothing():
    batch = make_batch(U=4, B=6, video_index=[0, 3, 1, 1, 2, 3])
    permutation = torch.tensor([2, 0, 3, 1])                    # new row r holds old video permutation[r]
    inverse = torch.argsort(permutation)
    permuted = dict(batch, video_index=inverse[batch["video_index"]])
    for key in ("visual", "audio", "sources_audio", "sources_visual"):
        permuted[key] = batch[key][permutation]
    model = small_model().eval()
    with torch.no_grad():
        a, b = model(batch), model(permuted)
        for key in ("logits", "spatial_attn", "temporal_attn", "source_logits_audio", "source_logits_visual",
                    "match_logits"):
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
        terms_a, terms_b = model.loss(batch, a)[1], model.loss(permuted, b)[1]
    for term in ("qa", "source", "reg"):   # L_match pairs each video with the next one: a different partner
        assert terms_a[term] == pytest.approx(terms_b[term], rel=1e-5)


def test_unique_video_gather_equals_per_question_inputs():
    batch = make_batch(U=3, B=5)
    index = batch["video_index"]
    per_question = dict(batch, video_index=torch.arange(5))
    for key in ("visual", "audio", "sources_audio", "sources_visual"):
        per_question[key] = batch[key][index]
    model = small_model().eval()
    with torch.no_grad():
        a, b = model(batch), model(per_question)
        for key in ("logits", "spatial_attn", "temporal_attn", "source_logits_visual"):
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
        assert model.loss(batch, a)[1]["source"] == pytest.approx(model.loss(per_question, b)[1]["source"], rel=1e-5)


def test_batch_errors_name_the_problem():
    model = small_model()
    batch = make_batch()
    with pytest.raises(KeyError, match="sentence"):
        model({k: v for k, v in batch.items() if k != "sentence"})
    with pytest.raises(ValueError, match="visual"):
        model(dict(batch, visual=batch["visual"][..., :5]))
    with pytest.raises(ValueError, match="video_index"):
        model(dict(batch, video_index=batch["video_index"] + 10))
    out = model(batch)
    with pytest.raises(KeyError, match="instrument labels"):
        model.loss({k: v for k, v in batch.items() if k != "sources_visual"}, out)
    with pytest.raises(ValueError, match="sources_audio"):
        model.loss(dict(batch, sources_audio=batch["sources_audio"][:, :5]), out)


# --- training, precision, size ------------------------------------------------------------------------------------
def test_adam_steps_lower_the_loss_on_a_fixed_batch():
    batch = make_batch(seed=1)
    model = small_model(seed=1)
    history = adam_steps(model, batch, steps=30, lr=3e-3)
    first, last = history[0], history[-1]
    assert last["qa"] < 0.5 * first["qa"]
    assert last["source"] < first["source"] and last["reg"] < first["reg"] and last["match"] < first["match"]
    assert all(later["total"] < earlier["total"] for earlier, later in zip(history[::5], history[5::5]))


def test_full_size_under_bf16_autocast():
    batch = make_batch(U=2, B=3, T=10, visual_dim=2048, audio_dim=128, sentence_dim=1024, video_index=[0, 1, 1])
    torch.manual_seed(0)
    model = build_model("sasr").train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
        total, terms = model.loss(batch, out)
    total.backward()
    assert out["logits"].shape == (3, 42) and torch.isfinite(out["logits"].float()).all()
    for key in ("spatial_attn", "temporal_attn_audio", "temporal_attn_visual", "source_attn_visual"):
        assert out[key].dtype == torch.float32, key        # attention arithmetic stays in float32
    assert all(math.isfinite(v) for v in terms.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.no_grad():
        fp32_logits = model(batch)["logits"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_logits = model(batch)["logits"].float()
    assert (bf16_logits - fp32_logits).abs().max() < 0.1 * fp32_logits.abs().max()


def expected_parameters(d=512, visual_dim=2048, audio_dim=128, sentence_dim=1024, n_sources=C, n_answers=42):
    linear = lambda i, o: i * o + o  # noqa: E731
    sasr = 6 * linear(d, d) + 2 * linear(d, d) + linear(d, 1)          # 2 CrossAttn (q, k, v), 2 FC, presence
    return {"visual_proj": linear(visual_dim, d), "audio_proj": linear(audio_dim, d) + linear(d, d),
            "question_proj": linear(sentence_dim, d), "source_tokens": n_sources * d + linear(d, n_sources),
            "sasr_audio": sasr, "sasr_visual": sasr, "spatial": linear(2 * d, d),
            "match_head": linear(2 * d, d) + linear(d, d // 2) + linear(d // 2, d // 4) + linear(d // 4, 2),
            "temporal": 0, "fusion_head": linear(2 * d, d) + linear(d, n_answers)}


def test_trainable_parameter_count():
    model = build_model("sasr")
    blocks = trainable_by_block(model)
    assert blocks == expected_parameters()
    total = count_trainable(model)
    print(f"\nSaSR-Net trainable parameters (d=512, CLIP-RN50 2048-d maps): {total:,}; per block {blocks}")
    assert total == 7_889_092
    assert count_trainable(build_model("sasr", visual_dim=512)) == total - 1536 * 512


def expected_flops(T=10, P=49, visual_dim=2048, d=512, n_sources=C, audio_dim=128, sentence_dim=1024):
    """Forward FLOPs at one question of one video (2 per multiply-add; no mismatched pass when U = 1)."""
    mm = lambda m, k, n: 2 * m * k * n  # noqa: E731
    S = T + n_sources
    sasr = (mm(n_sources, d, d) + 2 * mm(T, d, d) + mm(n_sources, d, d)          # token CrossAttn q, k, v; FC
            + mm(T, d, d) + 2 * mm(n_sources, d, d) + mm(T, d, d) + mm(n_sources, d, 1)  # feature CrossAttn; FC
            + 2 * mm(S, d, S)                                                      # S(f): scores and mix
            + 4 * mm(n_sources, d, T))                                             # two cross-attention mixes
    return (mm(T * P, visual_dim, d) + mm(T, audio_dim, d) + mm(T, d, d) + mm(1, sentence_dim, d)
            + mm(n_sources, d, n_sources) + 2 * sasr
            + 2 * mm(T, d, P) + mm(T, 2 * d, d)                                     # spatial attention, FC
            + 2 * 2 * mm(1, d, T)                                                  # temporal, both modalities
            + mm(1, 2 * d, d) + mm(1, d, 42))                                      # fusion, answer


def measure_flops(model, visual_dim, H):
    from torch.utils.flop_counter import FlopCounterMode

    batch = make_batch(U=1, B=1, T=10, H=H, visual_dim=visual_dim, audio_dim=128, sentence_dim=1024,
                       video_index=[0])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(batch)
    return counter.get_total_flops()


def test_forward_flops_per_question():
    torch.manual_seed(0)
    clip = measure_flops(build_model("sasr").eval(), 2048, 7)
    assert clip == expected_flops()
    resnet = measure_flops(build_model("sasr", visual_dim=512).eval(), 512, 14)
    assert resnet == expected_flops(P=196, visual_dim=512)
    projection = 2 * 10 * 49 * 2048 * 512
    print(f"\nSaSR-Net forward at B=1, T=10: {clip / 1e9:.3f} GFLOPs with 7x7x2048 maps "
          f"({projection / clip:.0%} in the 2048->512 map projection), {resnet / 1e9:.3f} GFLOPs with "
          f"14x14x512 ResNet-18 maps (FlopCounterMode: 2 FLOPs per multiply-add); paper: 2.11")
