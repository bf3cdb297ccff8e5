"""The question-by-question comparison bench/retrieval_pools.py prints beside the recalls."""

import pytest

from bench.retrieval_pools import paired


def test_gains_and_losses_are_counted_at_k_and_ties_left_out():
    hybrid = [1, 3, None, 6, 2, 11]
    other = [2, None, 4, 2, 2, None]
    # at 5: q2 only hybrid (3 vs none), q3 only the other (none vs 4), q4 only the other (6 vs 2)
    assert {k: v for k, v in paired(hybrid, other, 5).items() if k != "p"} == {"gained": 1, "lost": 2}
    assert paired(hybrid, other, 1) == {"gained": 1, "lost": 0, "p": 1.0}  # q1: 1 against 2
    assert paired([None, 7], [None, 8], 5) == {"gained": 0, "lost": 0, "p": 1.0}


@pytest.mark.parametrize("gained, lost, p", [(0, 2, 0.5), (9, 2, 0.0654), (26, 27, 1.0), (10, 0, 0.00195)])
def test_the_sign_test_p_is_the_exact_two_sided_binomial(gained, lost, p):
    hybrid = [1] * gained + [None] * lost
    other = [None] * gained + [1] * lost
    assert paired(hybrid, other, 5)["p"] == pytest.approx(p, abs=5e-5)
