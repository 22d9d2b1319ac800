"""avqa.models.losses: Jensen-Shannon divergence (CMS loss, eqs. 10-12 and 17), match loss L_s (eq. 6), L_qa,
the weighted total (sec. 4.1)."""
import math

import pytest
import torch

from avqa.models import losses

pytestmark = pytest.mark.usefixtures("one_thread")


def random_distributions(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=g).softmax(-1)


def test_js_is_symmetric():
    p, q = random_distributions(8, 10, 0), random_distributions(8, 10, 1)
    torch.testing.assert_close(losses.js_divergence(p, q), losses.js_divergence(q, p))


def test_js_zero_iff_equal():
    p, q = random_distributions(8, 10, 0), random_distributions(8, 10, 1)
    assert torch.all(losses.js_divergence(p, p).abs() < 1e-7)
    assert torch.all(losses.js_divergence(p, q) > 1e-6)


def test_js_bounded_by_ln2_and_reaches_it_on_disjoint_supports():
    p, q = random_distributions(64, 5, 2), random_distributions(64, 5, 3)
    assert torch.all(losses.js_divergence(p, q) <= math.log(2))
    disjoint = losses.js_divergence(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.5, 0.5]))
    assert disjoint.item() == pytest.approx(math.log(2), abs=1e-6)


def test_js_hand_computed_value():
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4); KL(p||m) = 1/2 ln(4/3), KL(q||m) = ln(4/3) -> JS = 3/4 ln(4/3)
    value = losses.js_divergence(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))
    assert value.item() == pytest.approx(0.75 * math.log(4 / 3), rel=1e-6)


def test_js_gradients_finite_with_zeros():
    p = torch.tensor([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]], requires_grad=True)
    q = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    losses.js_divergence(p, q).sum().backward()
    assert torch.isfinite(p.grad).all() and torch.isfinite(q.grad).all()


def test_cms_loss_renormalises_each_modality():
    v, a = random_distributions(4, 10, 4), random_distributions(4, 10, 5)
    expected = losses.js_divergence(v, a).mean()
    torch.testing.assert_close(losses.cms_loss(0.5 * v, 0.25 * a), expected)


def test_match_loss_labels_matched_as_class_one():
    confident = torch.tensor([[-10.0, 10.0]]).expand(6, 2)
    assert losses.match_loss(confident, -confident).item() < 1e-6
    assert losses.match_loss(-confident, confident).item() > 10
    undecided = torch.zeros(6, 2)
    assert losses.match_loss(undecided, undecided).item() == pytest.approx(math.log(2))


def test_qa_loss_float32_from_bf16_logits():
    logits = torch.zeros(3, 42, dtype=torch.bfloat16)
    value = losses.qa_loss(logits, torch.tensor([0, 5, 41]))
    assert value.dtype == torch.float32
    assert value.item() == pytest.approx(math.log(42), rel=1e-6)


def test_total_loss_weights_terms():
    terms = {"qa": torch.tensor(2.0), "cms": torch.tensor(0.5), "match": torch.tensor(0.6)}
    total, floats = losses.total_loss(terms, {"qa": 1.0, "cms": 1.0, "match": 0.5})
    assert total.item() == pytest.approx(2.0 + 0.5 + 0.3)
    assert floats == pytest.approx({"qa": 2.0, "cms": 0.5, "match": 0.6, "total": 2.8})


def test_tass_net_weights_its_terms_as_the_paper():
    """Sec. 4.1: L = L_qa + L_cms + lambda L_s with lambda = 0.5."""
    from avqa.models import build_model

    model = build_model("tass", d_model=16, heads=2, visual_dim=8, audio_dim=8, sentence_dim=8, token_dim=8)
    assert model.loss_weights == {"qa": 1.0, "cms": 1.0, "match": 0.5}
