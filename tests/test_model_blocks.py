"""The scaffolding the models share (avqa.models.blocks, avqa.models.__init__): the one multi-head attention against
the formula and against torch's nn.MultiheadAttention, the batch check, one options dataclass per model (the
defaults' one place, documented in docs/models.md), and every model's parameter names, order and shapes, stored
in tests/data/model_state_keys.json: checkpoints, AVST -> TASS-Net layer transfer and seeded initialisation all
depend on them."""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import pytest
import torch

from avqa.models import (REGISTRY, build_model, default_options, model_class, model_options, options_class,
                         valid_options)
from avqa.models.blocks import MultiHeadAttention, check_batch, options_table
from model_batches import BATCHES, SMALL, small_model

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
STATE_KEYS = Path(__file__).parent / "data" / "model_state_keys.json"


# --- the attention ----------------------------------------------------------------------------------------------
def reference_attention(attention: MultiHeadAttention, query, x, key_mask=None):
    """head_i = softmax(Q W_q^i (X W_k^i)^T / sqrt(d_h)) X W_v^i per head, out = W_o [head_1; ...; head_H], in
    float64, loop over heads; returns the output and the weights averaged over heads."""
    H = attention.heads
    d = query.shape[-1]
    dh = d // H

    def linear(layer, t):
        return t.double() @ layer.weight.double().T + layer.bias.double()

    q, k, v = linear(attention.q, query), linear(attention.k, x), linear(attention.v, x)
    heads, weights = [], []
    for h in range(H):
        part = slice(h * dh, (h + 1) * dh)
        scores = q[..., part] @ k[..., part].transpose(-1, -2) / math.sqrt(dh)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        w = scores.softmax(-1)
        heads.append(w @ v[..., part])
        weights.append(w)
    out = linear(attention.out, torch.cat(heads, -1))
    return out, torch.stack(weights).mean(0)


@pytest.mark.parametrize("heads,Lq,Lk", [(1, 1, 5), (2, 1, 9), (4, 3, 6)])
def test_attention_is_the_multi_head_formula(heads, Lq, Lk):
    torch.manual_seed(0)
    attention = MultiHeadAttention(16, heads, dropout=0.5).eval()
    query, x = torch.randn(3, Lq, 16), torch.randn(3, Lk, 16)
    mask = torch.arange(Lk)[None] < torch.tensor([[Lk], [2], [1]])
    for key_mask in (None, mask):
        out, weights = attention(query, x, key_mask)
        expected, expected_weights = reference_attention(attention, query, x, key_mask)
        torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weights.double(), expected_weights, atol=1e-6, rtol=1e-5)
    assert torch.all(weights[1, :, 2:] == 0) and torch.all(weights[2, :, 1:] == 0)    # masked keys get no weight


def test_attention_matches_torch_multihead_attention():
    torch.manual_seed(1)
    attention = MultiHeadAttention(16, 4, dropout=0.0).eval()
    reference = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([attention.q.weight, attention.k.weight, attention.v.weight]))
        reference.in_proj_bias.copy_(torch.cat([attention.q.bias, attention.k.bias, attention.v.bias]))
        reference.out_proj.weight.copy_(attention.out.weight)
        reference.out_proj.bias.copy_(attention.out.bias)
    query, x = torch.randn(2, 3, 16), torch.randn(2, 7, 16)
    mask = torch.arange(7)[None] < torch.tensor([[7], [4]])
    out, weights = attention(query, x, mask)
    expected, expected_weights = reference(query, x, x, key_padding_mask=~mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)


def test_attention_dropout_acts_on_the_weights_and_the_returned_weights_are_clean():
    torch.manual_seed(2)
    attention = MultiHeadAttention(16, 2, dropout=0.5)
    query, x = torch.randn(4, 2, 16), torch.randn(4, 6, 16)
    clean_out, clean = attention.eval()(query, x)
    torch.manual_seed(3)
    noisy_out, weights = attention.train()(query, x)
    assert torch.equal(weights, clean)
    assert not torch.allclose(noisy_out, clean_out)
    torch.manual_seed(3)
    assert torch.equal(attention(query, x)[0], noisy_out)            # seeded: the same dropout mask


def test_attention_keys_once_for_several_queries():
    torch.manual_seed(4)
    attention = MultiHeadAttention(8, 2, dropout=0.0).eval()
    x = torch.randn(2, 5, 8)
    k, v = attention.keys(x)
    for query in (torch.randn(2, 1, 8), torch.randn(2, 3, 8)):
        assert torch.equal(attention.attend(query, k, v)[0], attention(query, x)[0])


def test_attention_scores_run_in_float32_under_bf16_autocast():
    torch.manual_seed(5)
    attention = MultiHeadAttention(16, 2, dropout=0.0).eval()
    query, x = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, weights = attention(query, x)
    assert weights.dtype == torch.float32 and out.dtype == torch.bfloat16
    torch.testing.assert_close(weights, attention(query, x)[1], atol=2e-2, rtol=0)


def test_attention_needs_heads_that_divide_the_width():
    with pytest.raises(ValueError, match="not divisible by heads=3"):
        MultiHeadAttention(16, 3, 0.0)


# --- the batch check --------------------------------------------------------------------------------------------
SHAPES = {"visual": ("U", "T", None, 4), "video_index": ("B",), "sentence": ("B", 3)}


def good_batch(**changes):
    batch = {"visual": torch.zeros(2, 5, 7, 4), "video_index": torch.tensor([0, 1, 1]), "sentence": torch.zeros(3, 3)}
    return {**batch, **changes}


def test_check_batch_binds_the_named_sizes():
    assert check_batch(good_batch(), SHAPES, "M") == {"U": 2, "T": 5, "B": 3}


def test_check_batch_names_every_missing_key():
    with pytest.raises(KeyError, match=r"batch lacks \['visual', 'sentence'\]; M needs"):
        check_batch({"video_index": torch.zeros(3)}, SHAPES, "M")


@pytest.mark.parametrize("key,value,expected", [
    ("visual", torch.zeros(2, 5, 7, 3), r"batch\['visual'\] has shape \(2, 5, 7, 3\), expected \(U=2, T=5, \*, 4\)"),
    ("visual", torch.zeros(2, 5, 4), r"batch\['visual'\] has shape \(2, 5, 4\)"),
    ("sentence", torch.zeros(2, 3), r"batch\['sentence'\] has shape \(2, 3\), expected \(B=3, 3\)"),
])
def test_check_batch_names_the_key_and_the_expected_shape(key, value, expected):
    with pytest.raises(ValueError, match=expected):
        check_batch(good_batch(**{key: value}), SHAPES, "M")


def test_check_batch_video_index_must_index_the_videos():
    with pytest.raises(ValueError, match=r"video_index'\] holds values outside \[0, 2\)"):
        check_batch(good_batch(video_index=torch.tensor([0, 2, 1])), SHAPES, "M")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_model_checks_its_batch(name):
    model, batch = small_model(name), BATCHES[name]()
    needed = next(iter(model.batch_shapes))
    with pytest.raises(KeyError, match=needed):
        model({k: v for k, v in batch.items() if k != needed})
    with pytest.raises(ValueError, match=needed):
        model({**batch, needed: batch[needed][..., :1]})


# --- one options dataclass per model ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_options_are_one_frozen_dataclass_per_model(name):
    cls = options_class(name)
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert valid_options(name) == [f.name for f in dataclasses.fields(cls)]
    assert all(f.metadata.get("doc") for f in dataclasses.fields(cls)), "every option has a one-line meaning"
    # the defaults live in the dataclass only: the model takes the dataclass, with no keyword defaults of its own
    assert list(inspect.signature(model_class(name).__init__).parameters) == ["self", "options"]
    options = model_options(name, **SMALL[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.d_model = 8
    model = model_class(name)(options)
    assert model.options == options


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_build_model_refuses_unknown_options_naming_model_and_option(name):
    with pytest.raises(ValueError, match=rf"model '{name}': unknown option\(s\) \['strid'\]; valid options: "):
        build_model(name, **SMALL[name], strid=2)


def test_required_options_and_defaults():
    assert "vocab_size" not in default_options("avst") and default_options("avst")["d_model"] == 512
    with pytest.raises(TypeError, match=r"model 'avst': option\(s\) \['vocab_size'\] required"):
        build_model("avst")
    assert default_options("tass")["combine"] == "add" and default_options("tass")["tau"] is None


def test_docs_models_md_lists_every_models_options_as_the_dataclasses_hold_them():
    text = (ROOT / "docs" / "models.md").read_text()
    for name in sorted(REGISTRY):
        assert options_table(options_class(name)) in text, (
            f"docs/models.md: the options table of {name!r} is stale; regenerate it with "
            f"avqa.models.blocks.options_table(avqa.models.options_class({name!r}))")


# --- parameter names, order and shapes ---------------------------------------------------------------------------
def state_key_cases() -> dict[str, dict]:
    """Every registered model at its default sizes, and TASS-Net with the switches the config's variants use."""
    tass = {"default": {}, "no_target": dict(target_aware=False), "no_ls": dict(use_ls=False),
            "no_tsg": dict(use_tsg=False, use_ls=False), "no_jtg": dict(use_jtg=False, use_cms=False),
            "dual": dict(stream="dual"), "tjstg_forms": dict(jtg_ffn=True, mean_fusion="tjstg"),
            "no_input_norm": dict(input_norm="none")}
    cases = {f"tass/{case}": ("tass", options) for case, options in tass.items()}
    cases.update({f"{name}/default": (name, {"vocab_size": 92} if name == "avst" else {})
                  for name in sorted(REGISTRY) if name != "tass"})
    cases["sasr/no_match"] = ("sasr", dict(match_weight=0.0))
    return cases


def state_keys(name: str, options: dict) -> list[list]:
    return [[key, list(value.shape)] for key, value in build_model(name, **options).state_dict().items()]


@pytest.mark.parametrize("case", sorted(state_key_cases()))
def test_parameter_names_order_and_shapes_are_the_stored_ones(case):
    name, options = state_key_cases()[case]
    stored = json.loads(STATE_KEYS.read_text())
    assert state_keys(name, options) == stored[case]
