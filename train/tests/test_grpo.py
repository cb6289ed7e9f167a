"""Stage 2 math: the tiered reward, group-relative advantages, Plackett–Luce sampling and log-probabilities,
the KL terms, and the loss's gradient."""
import itertools
import math

import pytest
import torch

from starstream_train.grpo import (
    group_advantages,
    grpo_loss,
    gumbel_topk,
    pl_k3_kl,
    pl_log_prob,
    positions_of,
    softmax_kl,
    tiered_reward,
)


def brute_pl(scores: list[float], ranking: tuple[int, ...]) -> float:
    """P of a ranking prefix under Plackett–Luce, straight from the definition."""
    left, p = list(range(len(scores))), 1.0
    for i in ranking:
        p *= math.exp(scores[i]) / sum(math.exp(scores[j]) for j in left)
        left.remove(i)
    return p


def test_tiered_reward():
    got = tiered_reward(torch.tensor([0, 1, 2, 3, 4, 5, 19, -1]))
    assert got.tolist() == pytest.approx([1, 2 / 3, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])


def test_positions_of():
    perms = torch.tensor([[[2, 0, 1], [0, 1, 2]], [[1, 2, 0], [2, 1, 0]]])
    assert positions_of(perms, torch.tensor([0, 1])).tolist() == [[1, 0], [0, 1]]
    assert positions_of(perms[:, :, :1], torch.tensor([0, 1])).tolist() == [[-1, 0], [0, -1]]


def test_group_advantages_are_standardised_within_groups():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [2 / 3, 0.0, 0.0, 0.0]])
    a = group_advantages(r)
    assert a[0].tolist() == pytest.approx([1, -1, -1, 1], abs=1e-5)
    mean, std = 1 / 6, math.sqrt((0.5 ** 2 + 3 * (1 / 6) ** 2) / 4)  # population std
    assert a[1].tolist() == pytest.approx([(2 / 3 - mean) / std, -mean / std, -mean / std, -mean / std], abs=1e-4)
    assert a.sum(-1).tolist() == pytest.approx([0, 0], abs=1e-5)


def test_zero_variance_groups_get_no_advantage():
    r = torch.tensor([[1.0] * 8, [0.0] * 8, [2 / 3] * 8, [1 / 3] * 7 + [0.0]])
    a = group_advantages(r)
    assert torch.equal(a[:3], torch.zeros(3, 8))
    assert a[3].abs().sum() > 0


@pytest.mark.parametrize("k", [3, 2, 1])
def test_pl_log_prob_matches_brute_force_on_three_items(k):
    scores = [0.3, -1.2, 2.0]
    perms = list(itertools.permutations(range(3), k))
    got = pl_log_prob(torch.tensor([scores], dtype=torch.float64), torch.tensor([perms]))
    for p, lp in zip(perms, got[0].tolist(), strict=True):
        assert lp == pytest.approx(math.log(brute_pl(scores, p)), abs=1e-12)
    assert sum(math.exp(x) for x in got[0].tolist()) == pytest.approx(1.0)  # a distribution over prefixes


def test_pl_log_prob_ignores_padding():
    scores = torch.tensor([[0.3, -1.2, 2.0, 50.0]], dtype=torch.float64)  # column 3 is padding
    valid = torch.tensor([[True, True, True, False]])
    perms = torch.tensor([[[2, 0, 1, 3], [1, 2, 0, 3]]])
    got = pl_log_prob(scores, perms, valid)
    want = pl_log_prob(scores[:, :3], perms[:, :, :3])
    assert torch.allclose(got, want)


def test_gumbel_topk_samples_plackett_luce():
    scores = torch.tensor([[0.3, -1.2, 2.0]])
    gen = torch.Generator().manual_seed(0)
    n = 20000
    perms = gumbel_topk(scores, n, 2, gen)[0]
    assert perms.shape == (n, 2)
    for p in itertools.permutations(range(3), 2):
        freq = float(((perms[:, 0] == p[0]) & (perms[:, 1] == p[1])).double().mean())
        assert freq == pytest.approx(brute_pl(scores[0].tolist(), p), abs=0.012)


def test_gumbel_topk_never_draws_padding_before_real_candidates():
    scores = torch.tensor([[0.0, 0.0, -1e9, -1e9]])
    perms = gumbel_topk(scores, 500, 2, torch.Generator().manual_seed(1))
    assert set(perms.flatten().tolist()) == {0, 1}


def test_softmax_kl():
    p, q = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.0, 0.5, 0.2]])
    pp, qq = torch.softmax(p, -1)[0], torch.softmax(q, -1)[0]
    want = float((pp * (pp / qq).log()).sum())
    assert softmax_kl(p, q).item() == pytest.approx(want, rel=1e-5)
    assert softmax_kl(p, p + 3.0).item() == pytest.approx(0.0, abs=1e-6)  # equal PL policies: shift-invariant
    padded = softmax_kl(torch.cat([p, torch.tensor([[9.0]])], 1), torch.cat([q, torch.tensor([[-9.0]])], 1),
                        torch.tensor([[True, True, True, False]]))
    assert padded.item() == pytest.approx(want, rel=1e-5)


def test_pl_k3_kl_is_unbiased_for_the_prefix_kl():
    s, r = [0.3, -1.2, 2.0], [1.0, 0.1, -0.4]
    for k in (3, 2):
        perms = list(itertools.permutations(range(3), k))
        lp = pl_log_prob(torch.tensor([s], dtype=torch.float64), torch.tensor([perms]))[0]
        lr = pl_log_prob(torch.tensor([r], dtype=torch.float64), torch.tensor([perms]))[0]
        exact = float((lp.exp() * (lp - lr)).sum())
        expected_k3 = float((lp.exp() * pl_k3_kl(lp, lr)).sum())
        assert expected_k3 == pytest.approx(exact, abs=1e-12) and exact > 0


def test_grpo_gradient_moves_probability_towards_the_observed_item():
    # a large group makes the policy-gradient estimate close to its expectation
    scores = torch.zeros(4, 6, requires_grad=True)
    target = torch.tensor([0, 1, 2, 3])
    loss, stats = grpo_loss(scores, torch.zeros(4, 6), target, group=4000, top=5, kl_coef=0.0,
                            generator=torch.Generator().manual_seed(3))
    loss.backward()
    assert 0 < stats["reward"] < 1 and stats["zero_variance"] == 0
    for i, t in enumerate(target.tolist()):
        assert scores.grad is not None
        step = -scores.grad[i]  # gradient descent direction
        assert step[t] > 0 and step[t] == step.max()


def test_grpo_zero_variance_batch_has_no_policy_gradient():
    scores = torch.tensor([[30.0, 0.0, 0.0, 0.0]], requires_grad=True)  # item 0 is always first: reward 1 for all
    loss, stats = grpo_loss(scores, torch.zeros(1, 4), torch.tensor([0]), kl_coef=0.0)
    loss.backward()
    assert stats["zero_variance"] == 1.0 and stats["reward"] == 1.0
    assert scores.grad is not None and torch.count_nonzero(scores.grad) == 0


def test_kl_gradient_pulls_towards_the_reference():
    scores = torch.tensor([[3.0, 0.0, 0.0, 0.0]], requires_grad=True)
    softmax_kl(scores, torch.zeros(1, 4)).sum().backward()
    assert scores.grad is not None
    assert scores.grad[0, 0] > 0 and (scores.grad[0, 1:] < 0).all()  # descent lowers the score that ran away


def test_grpo_loss_kl_estimators():
    scores = torch.tensor([[1.0, 0.5, 0.0, -0.5]], requires_grad=True)
    ref = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    for est in ("softmax", "pl_k3"):
        _, stats = grpo_loss(scores, ref, torch.tensor([2]), kl_estimator=est, generator=torch.Generator().manual_seed(0))
        assert stats["kl"] > 0
    with pytest.raises(ValueError, match="grpo_kl_estimator"):
        grpo_loss(scores, ref, torch.tensor([2]), kl_estimator="bogus")
