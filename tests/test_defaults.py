"""The training defaults fitted to the table (auditor.defaults): exact values of the documented rule."""

from __future__ import annotations

import math

import pytest

from auditor import defaults
from auditor.commands.demo import DEMO_TRAIN
from auditor.defaults import FittedTraining, fill_training_defaults, fitted_magnitude_min_p, fitted_training
from auditor.train import TrainConfig


@pytest.mark.parametrize("n, length, expected, steps", [
    # E = min(20, 2.5e6 / (2200 * 45) = 25.3) = 20; B = pow2(20 * 2200 / 100 = 440) = 512; lr 1e-2
    (2200, 45, FittedTraining(20.0, 512, 1e-2, 256), 86),
    # E = floor10(2.5e6 / 450,000 = 5.56) = 5.5; B = pow2(550) = 512: 108 steps instead of 20 * 10000 / 128 = 1,563
    (10_000, 45, FittedTraining(5.5, 512, 1e-2, 256), 108),
    # E = 20; B = pow2(60) = 64 (<= 300 // 4); lr = 1e-2 * sqrt(64 / 512)
    (300, 20, FittedTraining(20.0, 64, 1e-2 * math.sqrt(0.125), 64), 94),
    # E = max(1, 0.1) = 1; B = pow2(1000) = 1024; physical = pow2_floor(256 * 64 / 200 = 81.9) = 64
    (100_000, 200, FittedTraining(1.0, 1024, 1e-2, 64), 98),
    # B = max(16, 8) = 16, then at most 40 // 4 = 10
    (40, 30, FittedTraining(20.0, 10, 1e-2 * math.sqrt(10 / 512), 10), 80),
])
def test_rule_exact_values(n, length, expected, steps):
    got = fitted_training(n=n, max_length=length)
    assert got.epochs == expected.epochs and got.batch_size == expected.batch_size
    assert got.physical_batch_size == expected.physical_batch_size
    assert got.lr == pytest.approx(expected.lr, rel=1e-12)
    assert got.steps(n) == steps


def test_nearest_power_of_two():
    assert [defaults.nearest_power_of_two(x) for x in (0.5, 1, 3, 362, 363, 460, 724)] == [1, 1, 4, 256, 512, 512, 512]


def test_demo_settings_are_the_defaults():
    """The demo's ~2,000-2,400 training rows (1,920 + planted canaries) of 45 tokens get DEMO_TRAIN."""
    for n in (2048, 2200, 2344):
        got = fitted_training(n=n, max_length=45)
        assert {k: getattr(got, k) for k in ("epochs", "batch_size", "physical_batch_size", "lr")} == {
            k: v for k, v in DEMO_TRAIN.items() if k != "model"}


def test_given_settings_win():
    cfg = TrainConfig(batch_size=128, lr=3e-3)
    assert fill_training_defaults(cfg, n=10_000, max_length=45) == ["epochs", "physical_batch_size"]
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.physical_batch_size) == (5.5, 128, 3e-3, 128)
    cfg = TrainConfig(epochs=2.0)
    fill_training_defaults(cfg, n=10_000, max_length=45)
    assert (cfg.batch_size, cfg.lr) == (256, pytest.approx(1e-2 * math.sqrt(0.5)))  # pow2(2 * 10000 / 100 = 200)
    full = TrainConfig(epochs=1.0, batch_size=8, lr=0.1, physical_batch_size=4)
    assert fill_training_defaults(full, n=100, max_length=10) == []


def test_magnitude_min_p():
    assert fitted_magnitude_min_p(dp=True, learns_numeric=True) == 0.1
    assert fitted_magnitude_min_p(dp=False, learns_numeric=True) == 0.0
    assert fitted_magnitude_min_p(dp=True, learns_numeric=False) == 0.0
