"""Every TASS-Net switch a table row sets is wired: each changes the model the way the paper says (issue 18).

The references below write the paper's equations out by hand from the model's own projected inputs (never by
calling the block under test), so a switch the model drops, or a block that ignores its option, fails here:
  TSG+ (sec. 3.3, eqs. 2-5): tau picks the positions of s_q that pass, combine is eq. 2's add or Table 4's
  mul / max, target_aware off leaves softmax(s_a), use_tsg off is global average pooling and no L_s;
  JTG (sec. 3.4, eqs. 13-16): order places the tokens (and the reported attention), positional adds sine/cosine
  codes, stream dual is one question attention per modality fused by a linear layer (Table 7), use_jtg off is
  mean fusion and no L_cms; the loss (sec. 4.1): cms_weight and ls_weight scale their terms.
test_every_table_row_switch_is_checked runs, for each (row, key) of config.yaml's TASS-Net rows in tables 2-7,
the check of that key with the row's value; a key without a check fails. The row-by-row audit against the
paper's words: docs/ablations.md.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from avqa import workflow as W
from avqa.features.layout import LAYOUT
from avqa.models import build_model
from avqa.models.tass_blocks import JTG, MeanFusion, question_query
from avqa.paths import Layout
from avqa.training.spec import build, split_dataset
from test_models import make_batch, small_model
from training_fixtures import make_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
ABLATION_TABLES = ("table2", "table3", "table4", "table5", "table6", "table7")
# The TASS-Net variants rows of tables 2-7 use (every encoder block, also those `blocks` leaves out), and each
# row's keys (besides model and label).
TASS_ROWS = sorted({v for t in ABLATION_TABLES
                    for v in (CONFIG["tables"][t] if isinstance(CONFIG["tables"][t], list)
                              else CONFIG["tables"][t]["variants"])
                    if CONFIG["variants"][v]["model"] == "tass"})
ROW_KEYS = [(v, k) for v in TASS_ROWS for k in CONFIG["variants"][v] if k not in ("model", "label")]
RUN_SPEC_KEYS = ("modalities", "pooling", "visual", "pretrain", "train")   # consumed by run_config, not the model
U, B, T = 3, 5, 4
# The float32 model against the float64 references: close at this tolerance, a dropped switch far outside it.
CLOSE = dict(rtol=1e-5, atol=1e-7)


pytestmark = pytest.mark.usefixtures("one_thread")


def model_options(variant: str) -> dict:
    return {k: v for k, v in CONFIG["variants"][variant].items() if k not in ("model", "label", *RUN_SPEC_KEYS)}


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a.double(), b.double(), **CLOSE)


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual.double(), expected.double(), **CLOSE)


def run(model, batch):
    model.eval()
    with torch.no_grad():
        out = model(batch)
        return out, model.loss(batch, out)[1]


# --- the paper's equations, by hand, from the model's own projections ------------------------------------------
def projections(model, batch):
    """maps (U, T, P, d), f_a (U, T, d), f_q (B, d) and the target f_tgt (B, d) or None: the model's inputs to
    TSG+ and JTG."""
    with torch.no_grad():
        maps = model.visual_proj(batch["visual"])
        f_a = model.audio_proj(batch["audio"])
        f_q = model.question_proj(batch["sentence"])
        f_tgt = (model.target_word(batch["tokens"], f_q, batch["token_mask"], batch["target_mask"])[0]
                 if hasattr(model, "target_word") else None)
    return maps, f_a, f_q, f_tgt


def paper_distributions(model, batch):
    """s_a and s_q (B, T, P) of eqs. 3-4 (plain dot products, softmax over the 49 positions), in float64."""
    maps, f_a, _, f_tgt = projections(model, batch)
    index = batch["video_index"]
    keys = maps[index].double()                                                  # (B, T, P, d)
    s_a = torch.einsum("btpd,btd->btp", keys, f_a[index].double()).softmax(-1)
    s_q = None if f_tgt is None else torch.einsum("btpd,bd->btp", keys, f_tgt.double()).softmax(-1)
    return s_a, s_q


def paper_spatial_attention(s_a, s_q, combine: str, tau: float):
    """Eq. 5: s_q_hat = s_q I(s_q - tau), I(x) = 1 for x >= 0; eq. 2's softmax(s_a + s_q_hat), Table 4's
    Hadamard product s_a * s_q_hat ("mul") or maximum ("max"); without a target (w/o T-A) softmax(s_a)."""
    if s_q is None:
        return s_a.softmax(-1)
    s_q_hat = torch.where(s_q >= tau, s_q, torch.zeros_like(s_q))
    scores = {"add": s_a + s_q_hat, "mul": s_a * s_q_hat, "max": torch.maximum(s_a, s_q_hat)}[combine]
    return scores.softmax(-1)


def paper_tsg_features(model, batch, combine: str = "add", tau: float = 0.025):
    """f_v (B, T, d) = FC(tanh([f_v,g ; f_v,i])) (text after eq. 5) with the hand attention, and the attention."""
    maps, _, _, _ = projections(model, batch)
    s_a, s_q = paper_distributions(model, batch)
    attention = paper_spatial_attention(s_a, s_q, combine, tau)
    own = maps[batch["video_index"]].double()
    attended = torch.einsum("btp,btpd->btd", attention, own)
    with torch.no_grad():
        f_v = model.tsg.fc(torch.tanh(torch.cat([own.mean(2), attended], -1)).float())
    return f_v, attention


def sinusoidal(n: int, d: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)) (Vaswani et al. 2017)."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)
    codes = torch.zeros(n, d, dtype=torch.float64)
    codes[:, 0::2] = torch.sin(pos / 10000 ** (i / d))
    codes[:, 1::2] = torch.cos(pos / 10000 ** (i / d))
    return codes.float()


def paper_positions(order: str, T: int) -> tuple[list[int], list[int]]:
    """Where v_t and a_t sit in the 2T tokens (eq. 13 and Table 6), written out: IL interleaves by segment, Cat
    concatenates by modality; (V;A) puts the visual token first."""
    first = {"IL": [2 * t for t in range(T)], "Cat": list(range(T))}
    second = {"IL": [2 * t + 1 for t in range(T)], "Cat": [T + t for t in range(T)]}
    kind = order.split("(")[0]
    return (first[kind], second[kind]) if order.endswith("(V;A)") else (second[kind], first[kind])


def paper_single_stream(model, batch, f_v, order: str, positional: str):
    """JTG single stream (eqs. 13-16): LSTMs, tokens arranged in `order` (+ position codes), one question
    attention over the 2T tokens, plus MLP(Avg(f_av)). Returns logits and the attention (B, 2T)."""
    _, f_a, f_q, _ = projections(model, batch)
    jtg = model.jtg
    with torch.no_grad():
        v_seq = jtg.lstm_v(f_v)[0]
        a_seq = jtg.lstm_a(f_a)[0][batch["video_index"]]
        v_pos, a_pos = paper_positions(order, v_seq.shape[1])
        tokens = torch.empty(v_seq.shape[0], 2 * v_seq.shape[1], v_seq.shape[2])
        tokens[:, v_pos], tokens[:, a_pos] = v_seq, a_seq
        if positional == "sinusoidal":
            tokens = tokens + sinusoidal(*tokens.shape[1:])
        x, weights = question_query(jtg.attn, f_q, tokens)
        fused = x + jtg.mean_mlp(torch.cat([v_seq, a_seq], 1).mean(1))
        return model.answer_head(fused, f_q), weights


def paper_dual_stream(model, batch, f_v):
    """Table 7's dual stream: one question attention per modality, their outputs fused by a linear layer on the
    concatenation, plus MLP(Avg(f_av)). Returns logits and the visual and audio distributions (B, T)."""
    _, f_a, f_q, _ = projections(model, batch)
    jtg = model.jtg
    with torch.no_grad():
        v_seq = jtg.lstm_v(f_v)[0]
        a_seq = jtg.lstm_a(f_a)[0][batch["video_index"]]
        x_v, w_v = question_query(jtg.attn, f_q, v_seq)
        x_a, w_a = question_query(jtg.attn_audio, f_q, a_seq)
        fused = jtg.stream_fuse(torch.cat([x_v, x_a], -1)) + jtg.mean_mlp(torch.cat([v_seq, a_seq], 1).mean(1))
        return model.answer_head(fused, f_q), w_v, w_a


def paper_js(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Eqs. 10-12 by hand, batch mean: JS = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2."""
    p, q = p.double() / p.double().sum(-1, keepdim=True), q.double() / q.double().sum(-1, keepdim=True)
    m = (p + q) / 2
    return (0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)).mean()


def uniform(shape) -> torch.Tensor:
    return torch.full(shape, 1.0 / shape[-1], dtype=torch.float64)


# --- one check per switch: the row's value does what the paper says, and differs from dropping it ---------------
def check_tau(options: dict) -> None:
    """Eq. 5: tau is the threshold on s_q; the row's tau gives eq. 2 with exactly the positions s_q >= tau."""
    batch = make_batch(U, B, T)
    model = small_model(**options)
    s_a, s_q = paper_distributions(model, batch)
    combine, tau = options.get("combine", "add"), options["tau"]
    expected = paper_spatial_attention(s_a, s_q, combine, tau)
    assert_close(run(model, batch)[0]["spatial_attn"], expected)
    if tau != 0.025:   # the full model's tau: another value passes other positions, and changes the attention
        assert not torch.equal(s_q >= tau, s_q >= 0.025)
        assert not close(expected, paper_spatial_attention(s_a, s_q, combine, 0.025))


def check_combine(options: dict) -> None:
    """Eq. 2 ("add") or Table 4's mul / max of s_a and the thresholded s_q, by hand."""
    batch = make_batch(U, B, T)
    model = small_model(**options)
    s_a, s_q = paper_distributions(model, batch)
    tau = options.get("tau", {"add": 0.025, "max": 0.025, "mul": 0.02}[options["combine"]])
    expected = paper_spatial_attention(s_a, s_q, options["combine"], tau)
    assert_close(run(model, batch)[0]["spatial_attn"], expected)
    if options["combine"] != "add":
        assert not close(expected, paper_spatial_attention(s_a, s_q, "add", tau))


def check_target_aware(options: dict) -> None:
    """w/o T-A (sec. 4.3, "audio-only visual spatial grounding"): no target word, attention softmax(s_a), and the
    question's tokens no longer reach the output; with the target they do."""
    assert options["target_aware"] is False
    batch = make_batch(U, B, T)
    other_tokens = dict(batch, tokens=torch.randn(batch["tokens"].shape, generator=torch.Generator().manual_seed(5)))
    model, full = small_model(**options), small_model()
    assert not hasattr(model, "target_word") and hasattr(full, "target_word")
    s_a, s_q = paper_distributions(model, batch)
    assert s_q is None
    out = run(model, batch)[0]
    assert "target_weights" not in out
    assert_close(out["spatial_attn"], s_a.softmax(-1))
    torch.testing.assert_close(run(model, other_tokens)[0]["logits"], out["logits"])
    assert not close(run(full, other_tokens)[0]["logits"], run(full, batch)[0]["logits"])
    assert not close(run(full, batch)[0]["spatial_attn"], s_a.softmax(-1))   # the target term is non-zero here


def check_use_ls(options: dict) -> None:
    """w/o L_s: no match classifier, L_s = 0 in the total; TSG+ stays (the row removes the loss only)."""
    assert options["use_ls"] is False
    batch = make_batch(U, B, T)
    model, full = small_model(**options), small_model()
    out, terms = run(model, batch)
    assert not hasattr(model, "match_head") and "match_logits" not in out and terms["match"] == 0.0
    if model.use_tsg:
        assert hasattr(model, "tsg") and not close(out["spatial_attn"], uniform(out["spatial_attn"].shape))
    assert terms["total"] == pytest.approx(terms["qa"] + 1.0 * terms["cms"], rel=1e-6)
    full_out, full_terms = run(full, batch)
    assert "match_logits" in full_out and full_terms["match"] > 0.1    # about ln 2 at initialisation


def check_use_cms(options: dict) -> None:
    """w/o L_cms: L_cms = 0 in the total while JTG stays; with it, L_cms is eq. 17's JS of the two distributions."""
    assert options["use_cms"] is False
    batch = make_batch(U, B, T)
    model = small_model(**options)
    out, terms = run(model, batch)
    assert terms["cms"] == 0.0 and (not model.use_jtg or isinstance(model.jtg, JTG))
    assert terms["total"] == pytest.approx(terms["qa"] + 0.5 * terms["match"], rel=1e-6)
    with_cms = small_model(**{**options, "use_cms": True}) if model.use_jtg else small_model()
    out, terms = run(with_cms, batch)
    expected = paper_js(out["temporal_attn_visual"], out["temporal_attn_audio"])
    assert expected > 0 and terms["cms"] == pytest.approx(float(expected), rel=1e-2)


def check_use_tsg(options: dict) -> None:
    """w/o TSG+ ("the entire TSG+ module along with its corresponding L_s", sec. 4.3): f_v is the globally
    pooled map, the spatial attention uniform, no target word, no L_s."""
    assert options["use_tsg"] is False
    batch = make_batch(U, B, T)
    model = small_model(**options)
    assert not any(hasattr(model, m) for m in ("tsg", "target_word", "match_head"))
    out, terms = run(model, batch)
    assert_close(out["spatial_attn"], uniform(out["spatial_attn"].shape))
    assert "match_logits" not in out and terms["match"] == 0.0
    maps, f_a, f_q, _ = projections(model, batch)
    index = batch["video_index"]
    with torch.no_grad():
        pooled = maps.mean(2)[index]
        fused = (model.jtg(pooled, f_a, f_q, index)[0] if model.use_jtg
                 else model.jtg(pooled, f_a[index]))
        assert_close(out["logits"], model.answer_head(fused, f_q))
    full_attention = run(small_model(), batch)[0]["spatial_attn"]
    assert not close(full_attention, uniform(full_attention.shape))


def check_use_jtg(options: dict) -> None:
    """w/o JTG ("JTG module (with its L_cms)", sec. 4.3): no LSTMs or question attention; f_av = FC(tanh([mean
    f_a ; mean f_v])) (own replacement); uniform temporal weights; L_cms = 0."""
    assert options["use_jtg"] is False
    batch = make_batch(U, B, T)
    model = small_model(**options)
    assert isinstance(model.jtg, MeanFusion) and not any("lstm" in n for n, _ in model.named_parameters())
    out, terms = run(model, batch)
    assert terms["cms"] == 0.0 and not model.use_cms
    assert_close(out["temporal_attn"], uniform(out["temporal_attn"].shape))
    _, f_a, f_q, _ = projections(model, batch)
    f_v = paper_tsg_features(model, batch)[0] if model.use_tsg else projections(model, batch)[0].mean(2)[
        batch["video_index"]]
    with torch.no_grad():
        mean_av = model.jtg.fuse_mean(torch.tanh(torch.cat([f_a[batch["video_index"]].mean(1), f_v.mean(1)], -1)))
        assert_close(out["logits"], model.answer_head(mean_av, f_q))
    full_attention = run(small_model(), batch)[0]["temporal_attn"]
    assert not close(full_attention, uniform(full_attention.shape))


def check_order(options: dict) -> None:
    """Table 6: the 2T tokens in the row's order (eq. 13's IL or Cat, V or A first), by hand. Without position
    codes (the paper's form) the attention is order-free, so the logits equal IL(V;A)'s and only the layout of
    the weights moves; with codes, the order changes the output."""
    batch = make_batch(U, B, T)
    order = options["order"]
    model, full = small_model(**options), small_model(**{**options, "order": "IL(V;A)"})
    out, full_out = run(model, batch)[0], run(full, batch)[0]
    logits, weights = paper_single_stream(model, batch, paper_tsg_features(model, batch)[0], order, "none")
    assert_close(out["logits"], logits)
    assert_close(out["temporal_attn"], weights)
    v_pos, a_pos = paper_positions(order, T)
    assert_close(out["temporal_attn"][:, v_pos], full_out["temporal_attn"][:, 0::2])
    assert_close(out["temporal_attn"][:, a_pos], full_out["temporal_attn"][:, 1::2])
    assert_close(out["logits"], full_out["logits"])
    if order != "IL(V;A)":
        assert not close(out["temporal_attn"], full_out["temporal_attn"])
        positional = {**options, "positional": "sinusoidal"}
        coded, coded_full = small_model(**positional), small_model(**{**positional, "order": "IL(V;A)"})
        assert not close(run(coded, batch)[0]["logits"], run(coded_full, batch)[0]["logits"])


def check_stream(options: dict) -> None:
    """Table 7's dual stream: one question attention per modality and a fusion layer (by hand), per-modality
    distributions straight from their own attention; L_cms (if on) is their JS."""
    assert options["stream"] == "dual"
    batch = make_batch(U, B, T)
    model = small_model(**options)
    assert hasattr(model.jtg, "attn_audio") and hasattr(model.jtg, "stream_fuse")
    assert not hasattr(small_model(**{**options, "stream": "single"}).jtg, "stream_fuse")
    out, terms = run(model, batch)
    logits, w_v, w_a = paper_dual_stream(model, batch, paper_tsg_features(model, batch)[0])
    assert_close(out["logits"], logits)
    assert_close(out["temporal_attn_visual"], w_v)
    assert_close(out["temporal_attn_audio"], w_a)
    v_pos, a_pos = paper_positions(options.get("order", "IL(V;A)"), T)
    assert_close(out["temporal_attn"][:, v_pos], w_v / 2)
    assert_close(out["temporal_attn"][:, a_pos], w_a / 2)
    expected_cms = float(paper_js(w_v, w_a)) if options.get("use_cms", True) else 0.0
    assert terms["cms"] == pytest.approx(expected_cms, rel=1e-2, abs=1e-12)  # float32 JS of near-equal rows


def check_modalities(variant: str, paths: dict) -> None:
    """A removed input is fed as zeros by the data pipeline (the model never sees the option): run_config ->
    run spec -> split_dataset -> batch."""
    spec = W.run_config(CONFIG, variant, 0)
    removed = {"audio", "visual"} - set(CONFIG["variants"][variant]["modalities"])
    assert spec["modalities"] == CONFIG["variants"][variant]["modalities"] and removed
    tiny = dict(spec, annotations=paths["annotations"], pooled=paths["pooled"], questions=paths["questions"])
    full = dict(tiny, modalities=["audio", "visual"])
    batch, full_batch = split_dataset(tiny, "train").batch([0, 1, 5]), split_dataset(full, "train").batch([0, 1, 5])
    for name in ("audio", "visual"):
        if name in removed:
            assert full_batch[name].any() and not batch[name].any()
        else:
            assert torch.equal(batch[name], full_batch[name])


def check_pooling(variant: str, paths: dict) -> None:
    """Table 3: the run reads the pooled store of the row's pooling (and visual encoder)."""
    entry = CONFIG["variants"][variant]
    spec = W.run_config(CONFIG, variant, 0)
    key = W.pooled_key(entry["pooling"], entry.get("visual", W.DEFAULT_VISUAL))
    assert spec["pooling"] == entry["pooling"]
    assert spec["pooled"] == {s: Layout.of(CONFIG).pooled(key, s) for s in W.SPLITS}
    if entry["pooling"] != "avg":
        assert spec["pooled"] != W.run_config(CONFIG, "tass", 0)["pooled"]


def check_visual(variant: str, paths: dict) -> None:
    """The row's visual encoder: its pooled store and the model's input channels."""
    entry = CONFIG["variants"][variant]
    spec = W.run_config(CONFIG, variant, 0)
    channels = LAYOUT[entry["visual"]].shape[-1]
    assert spec["visual_encoder"] == entry["visual"] and spec["model_options"]["visual_dim"] == channels
    assert all(entry["visual"] in path for path in spec["pooled"].values())
    assert build(spec).visual_proj.proj.in_features == channels


MODEL_CHECKS = {"tau": check_tau, "combine": check_combine, "target_aware": check_target_aware,
                "use_ls": check_use_ls, "use_cms": check_use_cms, "use_tsg": check_use_tsg,
                "use_jtg": check_use_jtg, "order": check_order, "stream": check_stream}
SPEC_CHECKS = {"modalities": check_modalities, "pooling": check_pooling, "visual": check_visual}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("switches"))


@pytest.mark.parametrize(("variant", "key"), ROW_KEYS, ids=[f"{v}-{k}" for v, k in ROW_KEYS])
def test_every_table_row_switch_is_checked(variant, key, tiny_data):
    assert key in MODEL_CHECKS or key in SPEC_CHECKS, f"variant {variant}: no behaviour check for option {key!r}"
    if key in MODEL_CHECKS:
        MODEL_CHECKS[key](model_options(variant))
    else:
        SPEC_CHECKS[key](variant, tiny_data)


# --- switches no table row sets (the full model's defaults) --------------------------------------------------------
@pytest.mark.parametrize("tau", [0.0, 0.005, 0.02, 0.03])
@pytest.mark.parametrize("combine", ["add", "mul", "max"])
def test_tau_and_combine_follow_eqs_2_and_5(combine, tau):
    check_tau({"combine": combine, "tau": tau})
    check_combine({"combine": combine, "tau": tau})


def test_tau_between_two_scores_passes_exactly_the_positions_above_it():
    batch = make_batch(U, B, T)
    s_q = paper_distributions(small_model(), batch)[1]
    values = s_q.flatten().sort().values
    tau = float((values[len(values) // 2] + values[len(values) // 2 + 1]) / 2)   # half the positions pass
    check_tau({"tau": tau})
    assert (s_q >= tau).float().mean() == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("order", ["IL(V;A)", "IL(A;V)", "Cat(V;A)", "Cat(A;V)"])
def test_positional_codes_are_added_to_the_tokens_in_order(order):
    """positional="sinusoidal" (own; the paper has none): the tokens in `order` plus sine/cosine codes."""
    batch = make_batch(U, B, T)
    model = small_model(order=order, positional="sinusoidal")
    out = run(model, batch)[0]
    logits, weights = paper_single_stream(model, batch, paper_tsg_features(model, batch)[0], order, "sinusoidal")
    assert_close(out["logits"], logits)
    assert_close(out["temporal_attn"], weights)
    assert not close(out["logits"], run(small_model(order=order), batch)[0]["logits"])


@pytest.mark.parametrize(("cms_weight", "ls_weight"), [(1.0, 0.5), (0.25, 2.0), (0.0, 0.0)])
def test_loss_weights_scale_their_terms(cms_weight, ls_weight):
    """Sec. 4.1: L = L_qa + cms_weight L_cms + ls_weight L_s (paper: 1 and 0.5), on distributions far apart so
    that L_cms is large."""
    batch = make_batch(U, B, T)
    model = small_model(cms_weight=cms_weight, ls_weight=ls_weight)
    out, _ = run(model, batch)
    peaked = F.one_hot(torch.arange(B) % T, T).float() * 0.9 + 0.1 / T
    out = dict(out, temporal_attn_visual=peaked, temporal_attn_audio=peaked.flip(-1))
    _, terms = model.loss(batch, out)
    cms = float(paper_js(peaked, peaked.flip(-1)))
    match = float(F.cross_entropy(torch.cat([out["match_logits"].reshape(-1, 2),
                                             out["mismatch_logits"].reshape(-1, 2)]),
                                  torch.cat([torch.ones(B * T), torch.zeros(B * T)]).long()))
    qa = float(F.cross_entropy(out["logits"], batch["answer"]))
    assert cms > 0.3 and match > 0.1
    assert terms["cms"] == pytest.approx(cms, rel=1e-5) and terms["match"] == pytest.approx(match, rel=1e-5)
    assert terms["total"] == pytest.approx(qa + cms_weight * cms + ls_weight * match, rel=1e-5)


def test_ls_goes_with_tsg_and_cms_with_jtg_unless_set():
    """L_s belongs to TSG+ and L_cms to JTG (sec. 4.3); L_s on the pooled maps without TSG+ only when asked."""
    batch = make_batch(U, B, T)
    assert not small_model(use_tsg=False).use_ls and not small_model(use_jtg=False).use_cms
    kept = small_model(use_tsg=False, use_ls=True)
    out, terms = run(kept, batch)
    maps, f_a, _, _ = projections(kept, batch)
    index = batch["video_index"]
    with torch.no_grad():
        assert_close(out["match_logits"], kept.match_head(f_a[index], maps.mean(2)[index]))
        assert_close(out["mismatch_logits"], kept.match_head(f_a[index], maps.mean(2)[(index + 1) % U]))
    assert terms["match"] > 0
    with pytest.raises(ValueError, match="use_cms=True needs use_jtg=True"):
        build_model("tass", use_jtg=False, use_cms=True)


# --- the run spec passes every row's options to the model unchanged ------------------------------------------------
@pytest.mark.parametrize("variant", TASS_ROWS)
def test_run_spec_passes_the_row_options_to_the_model_unchanged(variant):
    entry = CONFIG["variants"][variant]
    spec = W.run_config(CONFIG, variant, 0)
    options = model_options(variant)
    assert {k: spec["model_options"][k] for k in options} == options
    assert set(spec["model_options"]) - set(options) <= {"visual_dim"}     # derived from the visual encoder only
    assert spec["modalities"] == entry.get("modalities", ["audio", "visual"])
    assert spec["pooling"] == entry.get("pooling", "avg")
    model = build(spec)
    switches = model.switches
    assert {k: switches[k] for k in options} == options
    assert hasattr(model, "tsg") == switches["use_tsg"]
    assert hasattr(model, "target_word") == (switches["use_tsg"] and switches["target_aware"])
    assert hasattr(model, "match_head") == switches["use_ls"]
    assert isinstance(model.jtg, JTG) == switches["use_jtg"]
    if switches["use_tsg"]:
        assert (model.tsg.combine, model.tsg.tau, model.tsg.target_aware) == \
            (switches["combine"], switches["tau"], switches["target_aware"])
    if switches["use_jtg"]:
        assert (model.jtg.order, model.jtg.stream, model.jtg.positional) == \
            (switches["order"], switches["stream"], switches["positional"])
    assert model.loss_weights == {"qa": 1.0, "cms": switches["cms_weight"], "match": switches["ls_weight"]}
    assert model.dims["visual_dim"] == LAYOUT[entry.get("visual", W.DEFAULT_VISUAL)].shape[-1]


def test_every_ablation_row_of_the_paper_has_its_switches():
    """The rows docs/ablations.md audits: each paper row's variant sets exactly the paper's switches."""
    expected = {
        "tass_no_target": {"target_aware": False}, "tass_no_ls": {"use_ls": False},
        "tass_no_cms": {"use_cms": False}, "tass_no_tsg": {"use_tsg": False, "use_ls": False},
        "tass_no_jtg": {"use_jtg": False, "use_cms": False}, "tass_mul": {"combine": "mul", "tau": 0.02},
        "tass_max": {"combine": "max"}, "tass_tau0": {"tau": 0.0}, "tass_tau0005": {"tau": 0.005},
        "tass_tau002": {"tau": 0.02}, "tass_tau003": {"tau": 0.03}, "tass_cat_av": {"order": "Cat(A;V)"},
        "tass_cat_va": {"order": "Cat(V;A)"}, "tass_il_av": {"order": "IL(A;V)"}, "tass_dual": {"stream": "dual"},
        "tass_dual_no_cms": {"stream": "dual", "use_cms": False}, "tass": {},
    }
    assert {v: model_options(v) for v in expected} == expected
    assert build_model("tass").switches == dict(
        target_aware=True, combine="add", tau=0.025, use_tsg=True, use_jtg=True, use_ls=True, use_cms=True,
        order="IL(V;A)", stream="single", positional="none", cms_weight=1.0, ls_weight=0.5)
    assert math.isclose(build_model("tass", combine="mul").switches["tau"], 0.02)
