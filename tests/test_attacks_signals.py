"""MIA signals against hand-computed values."""

import zlib

import numpy as np
import pytest

from attacks.signals import (
    LossSignal,
    MinKPlusPlusSignal,
    MinKSignal,
    ReferenceSignal,
    Signal,
    SignalInput,
    ZlibSignal,
    available_signals,
    create_signal,
    lowest_fraction_mean,
    mean_loss,
    needs_reference,
    record_text,
    register_signal,
    signal,
    standardised_logprob,
    unregister_signal,
)
from canaries.scorer import TokenStats

LOGPROB = np.array([-1.0, -2.0, -3.0, -4.0, -5.0, -0.5, -0.25, -6.0, -0.1, -0.2])
STATS = TokenStats(logprob=LOGPROB, mean=np.full(10, -2.0), std=np.full(10, 2.0))


def test_loss_and_zlib_by_hand():
    # loss = mean(-logprob) = 22.05 / 10
    assert mean_loss(LOGPROB) == pytest.approx(2.205)
    item = SignalInput(stats=STATS, text="name: Ann\nage: 41")
    assert LossSignal().score(item) == pytest.approx(-2.205)
    compressed = len(zlib.compress("name: Ann\nage: 41".encode(), 9))
    assert ZlibSignal().score(item) == pytest.approx(-2.205 / compressed)


def test_min_k_by_hand():
    # 20% of 10 tokens = 2 lowest: -6 and -5 -> -5.5.
    assert lowest_fraction_mean(LOGPROB, fraction=0.2) == pytest.approx(-5.5)
    assert MinKSignal(fraction=0.2).score(SignalInput(stats=STATS, text="")) == pytest.approx(-5.5)
    # At least one token: 20% of 3 tokens -> the single lowest.
    assert lowest_fraction_mean(np.array([-1.0, -3.0, -2.0]), fraction=0.2) == -3.0


def test_min_k_plus_plus_by_hand():
    # z = (logprob + 2) / 2; the two lowest are (-6+2)/2 = -2 and (-5+2)/2 = -1.5.
    item = SignalInput(stats=STATS, text="")
    assert MinKPlusPlusSignal(fraction=0.2).score(item) == pytest.approx(-1.75)


def test_min_k_plus_plus_drops_forced_positions():
    stats = TokenStats(
        logprob=np.array([0.0, -1.0, -3.0]), mean=np.array([0.0, -1.5, -1.0]), std=np.array([0.0, 0.5, 1.0])
    )
    # Position 0 is forced (std 0). z = [(-1+1.5)/0.5, (-3+1)/1] = [1, -2].
    np.testing.assert_allclose(standardised_logprob(stats), [1.0, -2.0])
    forced = TokenStats(logprob=np.zeros(3), mean=np.zeros(3), std=np.zeros(3))
    assert MinKPlusPlusSignal().score(SignalInput(stats=forced, text="")) == 0.0


def test_reference_signal_by_hand():
    reference = TokenStats(logprob=np.full(10, -3.0), mean=np.zeros(10), std=np.ones(10))
    item = SignalInput(stats=STATS, text="", reference=reference)
    # loss_ref - loss_target = 3 - 2.205
    assert ReferenceSignal().score(item) == pytest.approx(0.795)
    with pytest.raises(ValueError, match="reference"):
        ReferenceSignal().score(SignalInput(stats=STATS, text=""))


def test_record_text():
    assert record_text("plain") == "plain"
    assert record_text({"a": 1, "b": "x"}) == "a: 1\nb: x"
    with pytest.raises(ValueError, match="record"):
        record_text(3)


def test_registry():
    assert {"loss", "zlib", "min_k", "min_k_pp", "reference"} <= set(available_signals())
    assert create_signal("min_k", fraction=0.5).fraction == 0.5
    with pytest.raises(ValueError, match="unknown signal 'nope'"):
        create_signal("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_signal("loss", LossSignal)

    class Constant(Signal):
        name = "constant_test"

        def score(self, item):
            return 1.0

    register_signal("constant_test", Constant)
    try:
        assert create_signal("constant_test").score(SignalInput(stats=STATS, text="")) == 1.0
    finally:
        unregister_signal("constant_test")  # MiaConfig() scores every registered signal
    assert "constant_test" not in available_signals()


def test_a_signal_is_one_registered_function():
    @signal("lowest_token_test")
    def lowest_token(item):
        """The least likely token's log-probability."""
        return np.min(item.stats.logprob)

    try:
        made = create_signal("lowest_token_test")
        assert made.score(SignalInput(stats=STATS, text="")) == -6.0 and not made.needs_reference
        assert "lowest_token_test" in available_signals() and not needs_reference("lowest_token_test")
        with pytest.raises(ValueError, match="already registered"):
            signal("lowest_token_test")(lowest_token)
    finally:
        unregister_signal("lowest_token_test")
    assert needs_reference("reference") and not needs_reference("loss")
    with pytest.raises(ValueError, match="unknown signal"):
        needs_reference("lowest_token_test")


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="no predicted tokens"):
        mean_loss(np.array([]))
    with pytest.raises(ValueError, match="fraction"):
        MinKSignal(fraction=0)
    bad = TokenStats(logprob=np.zeros(3), mean=np.zeros(2), std=np.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        standardised_logprob(bad)
