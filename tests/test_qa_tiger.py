"""avqa.models.qa_tiger: shapes, the router's top-K, the Gaussians over time, the word mask, per-video computation,
training steps, bf16 autocast, input statistics, errors, the parameter / FLOP counts at the paper's shapes (exact,
against the block-by-block formulas below), and the question-words store written by `questions-vit`."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from avqa.models import CLIP_WORD_MODELS, EXTRA_INPUTS, build_model, count_trainable
from avqa.models.blocks import fit_input_stats, input_sources
from avqa.models.cost import default_shapes, model_cost
from avqa.models.qa_tiger import QA_TIGER_SOURCES, GaussianExperts, gaussian_weights
from model_batches import SMALL as SMALL_MODELS, adam_steps, input_stats, qa_tiger_batch as make_batch, small_model as build_small


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = SMALL_MODELS["qa_tiger"]


def small_model(seed=0, **options):
    return build_small("qa_tiger", seed, **options)


def fit_on(model, batch):
    """Per-channel statistics of the batch's own inputs, as the trainer computes them on the train split."""
    return fit_input_stats(model, input_stats(batch, QA_TIGER_SOURCES))


# --- shapes and registration -------------------------------------------------------------------------------------
@pytest.mark.parametrize("T1", [60, 20])
def test_output_shapes_several_questions_per_video(T1):
    U, B = 3, 7
    model = small_model()
    out = model(make_batch(U=U, B=B, T1=T1, video_index=[0, 0, 1, 2, 2, 2, 1]))
    assert out["logits"].shape == (B, 42)
    for branch in ("audio", "visual"):
        assert out[f"router_{branch}"].shape == (B, 7) and out[f"router_{branch}"].dtype == torch.float32
        assert out[f"experts_{branch}"].shape == (B, 7) and out[f"experts_{branch}"].dtype == torch.int64
        assert out[f"expert_weights_{branch}"].shape == (B, 7)
        assert out[f"gaussians_{branch}"].shape == (B, 7, T1)
    batch = make_batch(U=U, B=B, T1=T1, video_index=[0, 0, 1, 2, 2, 2, 1])
    total, terms = model.loss(batch, model(batch))
    assert total.dim() == 0 and set(terms) == {"qa", "total"}
    total.backward()


def test_registered_with_its_text_inputs():
    assert EXTRA_INPUTS["qa_tiger"] == ("clip_texts",) and "qa_tiger" in CLIP_WORD_MODELS
    assert "tspm" not in CLIP_WORD_MODELS                                   # TSPM's batches carry no word features


def test_word_dim_defaults_to_the_text_width_of_every_backbone():
    """The workflow passes text_dim = the embedding size; the word features are the text width: equal for all."""
    from avqa.features.encoders.clip_vit import BACKBONES, clip_vit_dims

    for backbone in BACKBONES:
        dims = clip_vit_dims(backbone, n_tokens=14)
        assert dims["text_width"] == dims["embedding"][0], backbone
    assert build_model("qa_tiger", frame_dim=512, text_dim=512).dims["word_dim"] == 512


# --- temporal integration: router and Gaussians -------------------------------------------------------------------
def test_router_picks_exactly_top_k_experts_and_the_gaussians_sum_to_one():
    model = small_model(seed=1, n_experts=7, top_k=3).eval()
    out = model(make_batch(T1=30))
    for branch in ("audio", "visual"):
        experts, probs = out[f"experts_{branch}"], out[f"router_{branch}"]
        assert experts.shape == (5, 3)
        assert all(len(set(row)) == 3 for row in experts.tolist())                   # K distinct experts
        torch.testing.assert_close(probs.sum(-1), torch.ones(5))
        for b in range(5):                                                           # ... the K most probable
            assert set(experts[b].tolist()) == set(probs[b].topk(3).indices.tolist())
        weights = out[f"expert_weights_{branch}"]
        torch.testing.assert_close(weights, probs.gather(1, experts) / probs.gather(1, experts).sum(-1, True))
        torch.testing.assert_close(out[f"gaussians_{branch}"].sum(-1), torch.ones(5, 3))
        assert bool((out[f"gaussians_{branch}"] >= 0).all())


def test_unselected_experts_change_nothing():
    model, batch = small_model(seed=2, top_k=2).eval(), make_batch(seed=2)
    out = model(batch)
    used = set(out["experts_audio"].flatten().tolist())
    unused = sorted(set(range(7)) - used)
    assert unused, "precondition: some audio expert is selected by no question"
    with torch.no_grad():
        model.audio_experts.experts.w2[unused[0]] += 5.0
    torch.testing.assert_close(model(batch)["logits"], out["logits"])
    with torch.no_grad():
        model.audio_experts.experts.w2[sorted(used)[0]] += 5.0
    assert not torch.allclose(model(batch)["logits"], out["logits"])


def test_experts_mix_equals_the_weighted_sum_of_every_experts_output():
    """The output layer applied after the sum over time is exact: sum_t w_t Expert(x_t)."""
    model = small_model(seed=7)
    x, weights = torch.randn(3, 9, SMALL["d_model"]), torch.rand(3, 7, 9)
    experts = model.audio_experts.experts
    torch.testing.assert_close(experts.mix(x, weights), torch.einsum("bet,bted->bd", weights, experts(x)))


def test_gaussian_formula_and_norms():
    centre, width = torch.tensor([0.25, 0.9]), torch.tensor([0.05, 0.2])
    s = torch.linspace(0, 1, 11)
    raw = torch.exp(-(s - centre[:, None]) ** 2 / (2 * width[:, None] ** 2))
    torch.testing.assert_close(gaussian_weights(centre, width, 11), raw / raw.sum(-1, keepdim=True))
    peak = gaussian_weights(centre, width, 11, norm="peak")
    torch.testing.assert_close(peak, raw / raw.amax(-1, keepdim=True))
    assert peak[0].argmax() in (2, 3) and peak[1].argmax() == 9
    with pytest.raises(ValueError, match="gaussian_norm"):
        gaussian_weights(centre, width, 11, norm="max")


def test_expert_centres_stay_in_their_slots_and_widths_respect_the_floor():
    torch.manual_seed(0)
    module = GaussianExperts(d_model=16, heads=2, n_experts=4, top_k=4, sigma=9.0, min_width=0.09, dropout=0.0,
                             gaussian_norm="peak").eval()
    with torch.no_grad():
        module.gauss.weight.mul_(100)                                     # saturate tanh and sigmoid
    routing = module.route(torch.randn(6, 16), torch.randn(6, 41, 16))
    peaks = routing["gaussians"].argmax(-1).float() / 40                 # the centre, to the grid's resolution
    slots = routing["experts"].float()                                    # expert e's slot: [e / 4, (e + 1) / 4]
    assert bool((peaks >= slots / 4 - 0.025).all() and (peaks <= (slots + 1) / 4 + 0.025).all())
    assert float(routing["gaussians"].detach().max()) == 1.0
    with pytest.raises(ValueError, match="top_k"):
        GaussianExperts(16, 2, n_experts=3, top_k=4, sigma=9.0, min_width=0.09, dropout=0.0, gaussian_norm="sum")


# --- the question's words: the mask is honoured ---------------------------------------------------------------------
def test_padding_tokens_change_nothing():
    model, batch = small_model(seed=3).eval(), make_batch(L=7, lengths=[3, 7, 5, 2, 4], seed=3)
    fit_on(model, batch)
    out = model(batch)["logits"]
    noisy = dict(batch, question_tokens=batch["question_tokens"] + 10 * (~batch["question_token_mask"])[..., None])
    torch.testing.assert_close(model(noisy)["logits"], out)
    longer = dict(batch, question_tokens=torch.cat([batch["question_tokens"], torch.randn(5, 4, 6)], 1),
                  question_token_mask=torch.cat([batch["question_token_mask"], torch.zeros(5, 4, dtype=bool)], 1))
    torch.testing.assert_close(model(longer)["logits"], out, rtol=1e-5, atol=1e-5)
    real = batch["question_tokens"].clone()
    real[0, 1] += 3.0                                                     # a real word does matter
    assert not torch.allclose(model(dict(batch, question_tokens=real))["logits"][0], out[0])


def test_a_question_alone_gets_the_answer_it_gets_in_a_batch():
    """Per-video computation (fusion's self/cross attention, patch keys) spread to questions changes nothing."""
    model = small_model(seed=4).eval()
    batch = make_batch(U=3, B=6, seed=4, video_index=[0, 2, 1, 2, 0, 1])
    out = model(batch)["logits"]
    b, video = 3, 2
    alone = {k: (v[video:video + 1] if k in ("visual", "visual_tokens", "audio") else v[b:b + 1])
             for k, v in batch.items()}
    alone["video_index"] = torch.zeros(1, dtype=torch.long)
    torch.testing.assert_close(model(alone)["logits"][0], out[b], rtol=1e-5, atol=1e-5)


# --- training, autocast, inputs --------------------------------------------------------------------------------------
def test_adam_steps_lower_the_loss_on_a_fixed_batch():
    batch = make_batch(U=3, B=8, T1=20, seed=5)
    model = small_model(seed=5)
    fit_on(model, batch)
    losses = [float(terms["total"]) for terms in adam_steps(model, batch, steps=30, lr=3e-3)]
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("audio_experts.router"))


def test_bf16_autocast_forward_and_backward():
    batch = make_batch(U=2, B=4, T1=20, seed=6)
    model = small_model(seed=6)
    fit_on(model, batch)
    reference = model.eval()(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
        total, _ = model.loss(batch, out)
    total.backward()
    assert out["gaussians_audio"].dtype == out["router_visual"].dtype == torch.float32
    assert bool(torch.isfinite(out["logits"].float()).all()) and torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(out["logits"].float(), reference["logits"], atol=0.1, rtol=0.05)


def test_input_statistics_sources():
    model, batch = small_model(), make_batch()
    assert input_sources(model) == set(QA_TIGER_SOURCES)
    assert sorted(fit_on(model, batch)) == sorted(QA_TIGER_SOURCES)
    assert input_sources(small_model(input_norm="none")) == set()


def test_bad_batches_are_named():
    model, batch = small_model(), make_batch()
    with pytest.raises(KeyError, match="question_tokens"):
        model({k: v for k, v in batch.items() if k != "question_tokens"})
    with pytest.raises(ValueError, match="question_tokens"):
        model({**batch, "question_tokens": batch["question_tokens"][..., :3]})
    empty = batch["question_token_mask"].clone()
    empty[2] = False
    with pytest.raises(ValueError, match="at least one real token"):
        model({**batch, "question_token_mask": empty})
    with pytest.raises(ValueError, match="visual_tokens"):
        model({**batch, "visual_tokens": batch["visual_tokens"][:, :, :3]})
    with pytest.raises(ValueError, match="video_index"):
        model({**batch, "video_index": torch.tensor([0, 1, 2, 3, 0])})


# --- parameters and FLOPs at the paper's shapes ---------------------------------------------------------------------
def linear(i, o):
    return i * o + o


def expected_parameters(d=512, D=768, Dt=1024, Dw=768, A=128, E=7, n=42):
    h, mha, ln = d // 2, 4 * linear(d, d), 2 * d
    mlp = linear(d, h) + linear(h, d)
    experts = lambda branches: mha + linear(d, E) + linear(d, 2 * E) + E * mlp + branches * ln   # noqa: E731
    return {"inputs": linear(A, d) + 2 * linear(D, d) + linear(Dt, d) + linear(Dw, d),
            "fusion": 3 * mha + 2 * linear(d, d) + 2 * ln,
            "patch_selection": 2 * mha + mlp + 2 * ln,
            "experts": experts(1) + experts(2),
            "grounding": mha + mlp + ln,
            "head": linear(d, n)}


def expected_macs(T=60, N=14, L=14, d=512, D=768, Dt=1024, Dw=768, A=128, E=7, n=42):
    """Multiply-accumulates of the matrix products of one question's forward pass (B = U = 1)."""
    h = d // 2
    inputs = T * A * d + T * D * d + T * N * Dt * d + L * Dw * d + D * d
    fusion = 2 * (8 * T * d * d + 4 * T * T * d) + 2 * L * d * d + 4 * T * d * d + 4 * T * L * d + 4 * T * d * d
    patches = 4 * T * N * d * d + 2 * T * N * N * d + 2 * T * N * d * d + 4 * T * d * d + 4 * T * N * d + 4 * T * d * h
    routing = 2 * d * d + 2 * T * d * d + 2 * T * d + 3 * d * E
    branch = T * E * d * h + E * T * h + E * h * d + E * d                   # hidden per second, then pooled
    experts = 2 * routing + 3 * branch                                          # audio: 1 branch, visual: 2
    grounding = 2 * (6 * d * d + 4 * d + 2 * d * h)
    return inputs + fusion + patches + experts + grounding + d * n


def test_parameters_and_gflops_at_the_papers_shapes():
    """T1 = 60 seconds, 14 merged tokens, a 12-word question (14 CLIP tokens), d = 512, ViT-L/14@336 sizes."""
    model = build_model("qa_tiger")
    blocks = {"inputs": ("audio_proj", "frame_proj", "patch_proj", "word_proj", "question_proj"),
              "fusion": ("fusion",), "patch_selection": ("patch_selection",),
              "experts": ("audio_experts", "visual_experts"), "grounding": ("grounding",), "head": ("head",)}
    for block, expected in expected_parameters().items():
        assert sum(count_trainable(getattr(model, name)) for name in blocks[block]) == expected, block
    cost = model_cost("qa_tiger", {})
    assert cost["params"] == sum(expected_parameters().values()) == 14_960_212
    assert default_shapes("qa_tiger", {})["T"] == 60
    assert cost["gflops"] == pytest.approx(2 * expected_macs() / 1e9, rel=1e-9)     # 5.08 GFLOPs per question


# --- the question-words store ---------------------------------------------------------------------------------------
def write_annotations(path, rows):
    """Annotation parquet of (question_id, template, values) rows, the question filled from its template."""
    records = [{"question_id": qid, "video_id": "v", "question": template.replace("<Object>", "{}").format(*values),
                "template": template, "templ_values": json.dumps(values)} for qid, template, values in rows]
    pd.DataFrame(records).to_parquet(path)


def test_questions_vit_writes_the_word_features_once_per_distinct_question(tmp_path):
    from avqa import cli
    from avqa.training.dataset import clip_word_batch, clip_word_features, clip_word_stats
    from avqa import store
    from avqa.features import encoders
    from avqa.specs.features import QuestionsVitSpec

    sound, count = "Is there a <Object> sound?", "How many musical instruments were heard throughout the video?"
    write_annotations(tmp_path / "train.parquet", [(30, sound, ["flute"]), (10, count, [])])
    write_annotations(tmp_path / "test.parquet", [(20, sound, ["flute"])])
    questions = ["Is there a flute sound?", count]
    out = tmp_path / "questions_clip_vit.zarr"
    spec = QuestionsVitSpec(backbone="ViT-B-32", weights="random", weights_seed=0, device="cpu", batch=2)
    assert cli.main(["questions-vit", "--annotations", str(tmp_path / "train.parquet"),
                     str(tmp_path / "test.parquet"), "--out", str(out), "--spec", spec.to_json()]) == 0
    group = store.open_read(out)
    ids, rows = group["question_id"][:].tolist(), group["question_token_row"][:]
    assert ids == [10, 20, 30] and group.attrs["n_question_texts"] == 2 == group["question_tokens"].shape[0]
    assert rows[1] == rows[2] != rows[0]                                   # one row per distinct question text
    model = encoders.load_clip_vit("random", 0, "cpu", "ViT-B-32")
    tokenizer = encoders.clip_vit_tokenizer("ViT-B-32")
    reference = encoders.clip_vit_text(model, tokenizer, [questions[1], questions[0]], context_length=77)  # id 10, 20
    L = int(reference["token_mask"].sum(1).max())                          # the longest question, not 77
    assert group.attrs["question_context_length"] == L < 77
    assert group["question_tokens"].shape == (2, L, 512) and group["question_tokens"].dtype == np.float16
    mask = group["question_token_mask"][:]
    np.testing.assert_array_equal(mask[rows[[0, 1]]], reference["token_mask"][:, :L])
    np.testing.assert_allclose(group["question_tokens"][:][rows[[0, 1]]].astype(np.float32),
                               reference["tokens"][:, :L].astype(np.float32), atol=2e-3)
    assert not group["question_tokens"][:][~mask].any()                    # zero at padding
    # the dataset's side: the table's questions in its order, cut to their own longest question
    words = clip_word_features(out, pd.Series([20, 30]))
    assert words["tokens"].shape[0] == 1 and words["row"].tolist() == [0, 0]
    assert words["mask"].shape[1] == int(reference["token_mask"][1].sum())
    batch = clip_word_batch(words, np.array([1, 0]))
    assert batch["question_tokens"].dtype == torch.float32 and batch["question_token_mask"].all()
    mean, std = clip_word_stats(words)
    real = words["tokens"][0][words["mask"][0]].astype(np.float64)
    np.testing.assert_allclose(mean, real.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, real.std(0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="question_id"):
        clip_word_features(out, pd.Series([99]))
    assert json.loads(json.dumps(dict(group.attrs)))["content_digest"]    # digested with the new arrays
