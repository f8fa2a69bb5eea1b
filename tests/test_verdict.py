"""Issue 24's rule "pretraining pays", read from one scored study entry (vitnirs.evaluate.verdict)."""

from __future__ import annotations

import pytest

from vitnirs.evaluate.verdict import axis_ratios, pays, verdict


def scores(within=1.10, few=(0.95, 0.97, 0.90), drift=1.0, shift=1.0, corn=0.40, tablet=10.0) -> dict:
    """One entry's scores as the study writes them; the untrained control: within 1.00, few-shot
    vs-untrained ratios as given, robustness 1.2 on both kinds, transfer corn 0.50, tablets 20."""
    return {
        "regression_ratio": within, "untrained_ratio": 1.0,
        "axes": {
            "fewshot": {n: {"vs_untrained": f} for n, f in zip(("10", "25", "50"), few, strict=True)},
            "robustness": {"by_kind": {"drift": {"embedding": drift, "untrained": 1.2},
                                       "shift": {"embedding": shift, "untrained": 1.2}}},
        },
        "transfer": {"corn": {"embedding": corn, "untrained": 0.5}, "tablet": {"embedding": tablet, "untrained": 20.0}},
    }  # fmt: skip


def test_each_axis_is_the_embedding_over_its_untrained_twin():
    r = axis_ratios(scores(drift=0.6, shift=1.2))
    assert r["within"] == pytest.approx(1.10)
    assert r["fewshot"] == pytest.approx(0.95)  # the median of the three sizes
    assert r["robustness"] == pytest.approx(0.75)  # median of 0.5 and 1.0
    assert r["transfer"] == pytest.approx(0.65)  # median of 0.8 and 0.5
    worst = axis_ratios(scores(drift=0.6, shift=1.2), worst=True)
    assert worst["robustness"] == pytest.approx(1.0) and worst["transfer"] == pytest.approx(0.8)


def test_pays_needs_three_axes_and_nothing_worse_by_more_than_two_percent():
    assert pays(scores(within=1.01)) == (True, "better on 3/4")
    ok, why = pays(scores(within=1.03))
    assert not ok and "worse by > 2 % on within" in why
    # the robustness median is better, but one kind (shift) is 25 % worse than the untrained twin
    ok, why = pays(scores(within=0.99, drift=0.5, shift=1.5))
    assert not ok and "robustness" in why
    # two axes better only
    assert not pays(scores(within=0.99, few=(1.01, 1.01, 1.01), drift=1.2, shift=1.2))[0]
    assert verdict(scores(within=0.9)) == "pays (better on 4/4)"


def test_axes_that_were_not_scored_are_left_out():
    s = {"regression_ratio": 0.9, "untrained_ratio": 1.0}
    assert axis_ratios(s) == {
        "within": pytest.approx(0.9),
        "fewshot": None,
        "robustness": None,
        "transfer": None,
    }
    assert pays(s) == (False, "better on 1/1")


def test_seeds_are_pooled_part_by_part_before_the_rule():
    # seed a: 3 % worse within; seed b: shift 5 % worse than the twin; each fails alone
    a, b = scores(within=1.03), scores(within=0.95, shift=1.26)
    assert not pays(a)[0] and not pays(b)[0]
    r = axis_ratios([a, b], worst=True)
    assert r["within"] == pytest.approx(0.99)  # the mean of 1.03 and 0.95
    assert r["robustness"] == pytest.approx((1.0 / 1.2 + 1.26 / 1.2) / 2)  # shift, the mean of the seeds
    assert verdict([a, b]) == "pays (better on 4/4)"
    assert not pays([a, scores(within=1.05)])[0]  # both worse within: the mean too
