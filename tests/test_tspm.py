"""avqa.models.tspm: shapes, top-k in time order, the spatial module reading the selected seconds' tokens, the
straight-through temporal gradient, training steps, unique-video permutation, bf16 autocast, input statistics,
and the parameter / FLOP counts (exact, against the block-by-block formulas below)."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from avqa.models import build_model, count_trainable
from avqa.models.blocks import fit_input_stats, input_sources
from avqa.models.tspm import TSPM_SOURCES, TemporalPerception, select_top_k
from model_batches import SMALL as SMALL_MODELS, adam_steps, input_stats, small_model as build_small, tspm_batch as make_batch


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = SMALL_MODELS["tspm"]
FULL = dict(frame_dim=768, token_dim=1024, n_tokens=14, audio_dim=128)


def small_model(seed=0, **options):
    return build_small("tspm", seed, **options)


def fit_on(model, batch):
    """Per-channel statistics of the batch's own inputs, as the trainer computes them on the train split."""
    return fit_input_stats(model, input_stats(batch, TSPM_SOURCES))


# --- shapes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T1", [60, 20])
def test_output_shapes_several_questions_per_video(T1):
    U, B, k = 3, 7, SMALL["top_k"]
    model = small_model()
    batch = make_batch(U=U, B=B, T1=T1, video_index=[0, 0, 1, 2, 2, 2, 1])
    out = model(batch)
    assert out["logits"].shape == (B, 42)
    assert out["temporal_attn_prompt"].shape == (B, T1) and out["temporal_attn_prompt"].dtype == torch.float32
    torch.testing.assert_close(out["temporal_attn_prompt"].sum(-1), torch.ones(B))
    assert out["selected_segments"].shape == (B, k) and out["selected_segments"].dtype == torch.int64
    assert out["spatial_attn_tokens"].shape == (B, k, SMALL["n_tokens"])
    assert out["grounding_attn_audio"].shape == out["grounding_attn_visual"].shape == (B, k)
    total, terms = model.loss(batch, out)
    assert total.dim() == 0 and set(terms) == {"qa", "total"}
    total.backward()


def test_full_size_shapes_at_t1_60():
    model = build_model("tspm")
    out = model(make_batch(U=2, B=3, T1=60, **FULL))
    assert out["logits"].shape == (3, 42)
    assert out["selected_segments"].shape == (3, 10) and out["spatial_attn_tokens"].shape == (3, 10, 14)


def test_top_k_is_clamped_to_the_number_of_seconds():
    out = small_model(top_k=10).eval()(make_batch(T1=6))
    assert out["selected_segments"].tolist() == [list(range(6))] * 5


# --- temporal perception: top-k in time order ----------------------------------------------------------------------
def test_select_top_k_returns_the_highest_scores_in_time_order():
    scores = torch.tensor([[0.10, 0.90, 0.30, 0.80, 0.05, 0.70],
                           [0.95, 0.01, 0.02, 0.60, 0.03, 0.99]])
    assert select_top_k(scores, 3).tolist() == [[1, 3, 5], [0, 3, 5]]
    assert select_top_k(scores, 1).tolist() == [[1], [5]]


def test_temporal_module_selects_the_top_k_of_its_own_attention():
    torch.manual_seed(0)
    module = TemporalPerception(d_model=16, heads=2, top_k=5, score_dropout=0.1).eval()
    frames, prompt = torch.randn(3, 20, 16), torch.randn(4, 16)
    index = torch.tensor([2, 0, 2, 1])
    weights, selected = module(frames, prompt, index)
    assert bool((selected[:, 1:] > selected[:, :-1]).all())                    # increasing time
    for b in range(4):
        threshold = weights[b, selected[b]].min()
        others = torch.ones(20, dtype=torch.bool)
        others[selected[b]] = False
        assert bool((weights[b, others] <= threshold).all())                     # nothing better left out
    alone, _ = module(frames[2:3], prompt[:1], torch.tensor([0]))                # per-question computation
    torch.testing.assert_close(weights[0], alone[0])


# --- spatial perception reads the selected seconds -----------------------------------------------------------------
def segment_distinct_batch(T1=20, seed=3):
    """Tokens that differ per second (a per-second offset pattern on top of the noise)."""
    batch = make_batch(U=2, B=3, T1=T1, seed=seed, video_index=[0, 1, 0])
    pattern = torch.randn(T1, 1, SMALL["token_dim"], generator=torch.Generator().manual_seed(9))
    batch["visual_tokens"] = batch["visual_tokens"] + 3.0 * pattern
    return batch


def perturbed(batch, video, second):
    """A per-channel change (a constant shift would vanish in the tokens' LayerNorm)."""
    changed = {k: v.clone() for k, v in batch.items()}
    changed["visual_tokens"][video, second] += 3.0 * torch.randn(SMALL["token_dim"],
                                                                generator=torch.Generator().manual_seed(11))
    return changed


def test_spatial_module_reads_the_selected_seconds_not_the_first_k():
    model, batch, k = small_model(seed=1).eval(), segment_distinct_batch(), SMALL["top_k"]
    out = model(batch)
    video0 = [b for b in range(3) if int(batch["video_index"][b]) == 0]
    read = set(out["selected_segments"][video0].flatten().tolist())
    late = sorted(s for s in out["selected_segments"][0].tolist() if s >= k)
    unread_early = sorted(set(range(k)) - read)
    assert late and unread_early, "precondition: question 0 selects a second beyond the first k"
    assert out["token_segments"].tolist() == out["selected_segments"].tolist()
    # the spatial attention of question 0 is the SPM applied to its selected seconds' own tokens and audio
    sel = out["selected_segments"][0]
    tokens = model.token_proj(batch["visual_tokens"][0, sel])
    audio = model.audio_proj(batch["audio"])[0, sel]
    _, expected = model.spatial(tokens, audio)
    torch.testing.assert_close(out["spatial_attn_tokens"][0], expected)
    # a selected late second's tokens matter; an early second nobody selected does not
    assert not torch.allclose(model(perturbed(batch, 0, late[0]))["logits"][0], out["logits"][0])
    torch.testing.assert_close(model(perturbed(batch, 0, unread_early[0]))["logits"], out["logits"])


def test_first_k_option_reads_seconds_0_to_k_minus_1():
    model, batch, k = small_model(seed=1, segment_selection="first").eval(), segment_distinct_batch(), SMALL["top_k"]
    out = model(batch)
    assert out["token_segments"].tolist() == [list(range(k))] * 3
    late = [s for s in out["selected_segments"][0].tolist() if s >= k]
    assert late
    torch.testing.assert_close(model(perturbed(batch, 0, late[0]))["logits"], out["logits"])
    assert not torch.allclose(model(perturbed(batch, 0, 0))["logits"][0], out["logits"][0])


# --- the temporal scorer's gradient ------------------------------------------------------------------------------
@pytest.mark.parametrize("temporal_grad", ["straight_through", "none"])
def test_temporal_scorer_gradient(temporal_grad):
    batch = make_batch()
    model = small_model(temporal_grad=temporal_grad)
    reference = small_model(temporal_grad="straight_through")
    out = model(batch)
    torch.testing.assert_close(out["logits"], reference(batch)["logits"])       # same forward either way
    model.loss(batch, out)[0].backward()
    for name in ("temporal.q.weight", "temporal.k.weight", "prompt_proj.proj.weight"):
        grad = dict(model.named_parameters())[name].grad
        if temporal_grad == "straight_through":
            assert grad is not None and float(grad.abs().sum()) > 0, name
        else:
            assert grad is None or float(grad.abs().sum()) == 0, name


# --- training, permutation, autocast -------------------------------------------------------------------------------
def test_adam_steps_lower_the_loss_on_a_fixed_batch():
    batch = make_batch(U=3, B=8, T1=20, seed=4)
    model = small_model(seed=2)
    fit_on(model, batch)
    losses = [float(terms["total"]) for terms in adam_steps(model, batch, steps=40, lr=3e-3)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_permuting_unique_videos_gives_the_same_answers():
    model, batch = small_model(seed=5).eval(), make_batch(U=3, B=6, T1=20, seed=6, video_index=[0, 2, 1, 2, 0, 1])
    perm = torch.tensor([2, 0, 1])                                              # new row r holds old video perm[r]
    moved = {**batch, "video_index": torch.argsort(perm)[batch["video_index"]]}
    for key in ("visual", "visual_tokens", "audio"):
        moved[key] = batch[key][perm]
    out, out_moved = model(batch), model(moved)
    torch.testing.assert_close(out_moved["logits"], out["logits"], rtol=1e-5, atol=1e-5)
    assert out_moved["selected_segments"].tolist() == out["selected_segments"].tolist()


def test_bf16_autocast_forward_and_backward():
    batch = make_batch(U=2, B=4, T1=20, seed=7)
    model = small_model(seed=3)
    fit_on(model, batch)
    reference = model.eval()(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
        total, _ = model.loss(batch, out)
    total.backward()
    assert out["temporal_attn_prompt"].dtype == torch.float32
    assert bool(torch.isfinite(out["logits"].float()).all()) and torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(out["logits"].float(), reference["logits"], atol=0.02, rtol=0)


# --- inputs ------------------------------------------------------------------------------------------------------
def test_input_statistics_sources_and_fit():
    model, batch = small_model(), make_batch()
    assert input_sources(model) == set(TSPM_SOURCES)
    assert sorted(fit_on(model, batch)) == sorted(TSPM_SOURCES)
    standardised = model.frame_proj.standardize(batch["visual"]).reshape(-1, SMALL["frame_dim"])
    torch.testing.assert_close(standardised.mean(0), torch.zeros(SMALL["frame_dim"]), atol=1e-4, rtol=0)
    torch.testing.assert_close(standardised.std(0), torch.ones(SMALL["frame_dim"]), atol=1e-3, rtol=0)
    with pytest.raises(KeyError, match="no input statistics for"):
        fit_input_stats(model, {"visual": (torch.zeros(12), torch.ones(12))})
    assert input_sources(small_model(input_norm="none")) == set()


def test_bad_batches_are_named():
    model, batch = small_model(), make_batch()
    with pytest.raises(KeyError, match="visual_tokens"):
        model({k: v for k, v in batch.items() if k != "visual_tokens"})
    with pytest.raises(ValueError, match="visual_tokens"):
        model({**batch, "visual_tokens": batch["visual_tokens"][:, :, :3]})
    with pytest.raises(ValueError, match="video_index"):
        model({**batch, "video_index": torch.tensor([0, 1, 2, 3, 0])})
    with pytest.raises(ValueError, match="segment_selection"):
        small_model(segment_selection="random")


# --- parameters and FLOPs ------------------------------------------------------------------------------------------
def linear(i, o):
    return i * o + o


def expected_parameters(d=512, f=512, D=768, Dt=1024, A=128, n=42):
    mha, ffn, ln = 4 * linear(d, d), linear(d, f) + linear(f, d), 2 * d
    return {"inputs": linear(A, d) + linear(D, d) + linear(Dt, d) + 2 * linear(D, d),
            "av_attention": 2 * mha + ffn + 2 * ln,               # one layer shared by both directions
            "temporal": 2 * linear(d, d),                          # query and key projections only
            "spatial": (mha + ffn + 2 * ln) + (mha + ffn + ln),    # token self-attention, audio-guided attention
            "grounding": mha + ffn + ln,                           # shared by audio and visual
            "head": linear(6 * d, d) + linear(d, n)}


def expected_macs(T1=60, N=14, k=10, d=512, f=512, D=768, Dt=1024, A=128, n=42):
    """Multiply-accumulates of the matrix products of one question's forward pass (B = U = 1)."""
    self_attn = lambda L: 4 * L * d * d + 2 * L * L * d                           # noqa: E731
    return {"inputs": T1 * A * d + T1 * D * d + k * N * Dt * d + 2 * D * d,
            "av_attention": 2 * (2 * self_attn(T1) + 2 * T1 * d * f),             # two directions, self + cross
            "temporal": d * d + T1 * d * d + T1 * d,
            "spatial": k * (self_attn(N) + 2 * N * d * f)                          # token self-attention
                       + k * (2 * d * d + 2 * N * d * d + 2 * N * d + 2 * d * f),  # audio-guided query
            "grounding": 2 * (2 * d * d + 2 * k * d * d + 2 * k * d + 2 * d * f),
            "head": 6 * d * d + d * n}


def test_parameter_and_flop_counts_at_paper_size():
    model = build_model("tspm").eval()
    params = count_trainable(model)
    assert params == sum(expected_parameters().values()) == 11_252_778
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(make_batch(U=1, B=1, T1=60, **FULL))
    flops = counter.get_total_flops()
    assert flops == 2 * sum(expected_macs().values())
    print(f"\nTSPM trainable parameters {params:,} (paper 6.22M); forward {flops / 1e9:.3f} GFLOPs per question "
          f"at T1=60, N=14, k=10 (paper 1.42)")
