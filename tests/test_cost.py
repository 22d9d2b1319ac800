"""avqa.models.cost: forward GFLOPs per question (FlopCounterMode + LSTMs) and trainable parameters."""
import pytest
import torch
from torch import nn

from avqa.models.cost import DEFAULT_SHAPES, example_batch, forward_gflops, input_shapes, measured_cost, model_cost
from avqa.store import open_new


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1024, 42)

    def forward(self, batch):
        return {"logits": self.fc(batch["sentence"])}


class WithLSTM(nn.Module):
    def __init__(self, bidirectional: bool):
        super().__init__()
        self.lstm = nn.LSTM(128, 64, batch_first=True, bidirectional=bidirectional)

    def forward(self, batch):
        out, _ = self.lstm(batch["audio"])
        return {"logits": out}


def test_a_linear_layer_costs_two_flops_per_multiply_add():
    assert forward_gflops(Linear(), example_batch()) == pytest.approx(2 * 1024 * 42 / 1e9)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstms_are_counted_by_their_gate_products(bidirectional):
    T = DEFAULT_SHAPES["T"]
    per_step = 2 * 4 * 64 * (128 + 64) * (2 if bidirectional else 1)
    counted = forward_gflops(WithLSTM(bidirectional), example_batch())
    assert counted == pytest.approx(per_step * T / 1e9, rel=0.02)   # the counter itself sees no LSTM on CPU


def test_model_cost_of_the_registered_models_and_their_input_shapes():
    tass = model_cost("tass", {})
    assert tass["params"] > 1e6 and tass["gflops"] > 0.1
    smaller = model_cost("tass", {"visual_dim": 512}, {"map": (7, 7, 512)})
    assert smaller["gflops"] < tass["gflops"] and smaller["params"] < tass["params"]
    assert model_cost("tass", {}, {"T": 20})["gflops"] > tass["gflops"]   # cost grows with the segments
    qonly = model_cost("qonly", {})
    assert qonly["gflops"] < 0.01 * tass["gflops"]
    assert forward_gflops(Linear(), example_batch()) == forward_gflops(Linear(), example_batch())
    assert torch.equal(example_batch()["visual"], example_batch()["visual"])        # fixed, seeded inputs


class Words(nn.Module):
    """Reads question word ids through its own (small) embedding, as AVST does."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 8)

    def forward(self, batch):
        return {"logits": self.embed(batch["question_words"]).sum(dim=1)}


def test_a_run_is_measured_at_the_shapes_of_its_own_stores(tmp_path):
    from training_fixtures import make_dataset

    paths = make_dataset(tmp_path)                      # pooled stores of T = 2 segments of 7x7x2048 maps
    texts = open_new(tmp_path / "clip_texts.zarr")
    texts.create_array("prompt", shape=(3, 768), dtype="float16")
    assert input_shapes(paths["pooled"]["test"]) == {"T": 2, "map": (7, 7, 2048), "tokens": None}
    assert input_shapes(paths["pooled"]["test"], str(tmp_path / "clip_texts.zarr"))["text"] == 768
    cost = measured_cost(Linear(), input_shapes(paths["pooled"]["test"]))
    assert cost == {"params": 1024 * 42 + 42, "gflops": pytest.approx(2 * 1024 * 42 / 1e9),
                    "shapes": {"T": 2, "map": [7, 7, 2048], "tokens": None}}      # as metrics.json holds it
    assert measured_cost(Words(), DEFAULT_SHAPES)["params"] == 5 * 8   # word ids kept inside its 5-word table
