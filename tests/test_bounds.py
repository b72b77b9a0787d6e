"""The numeric ranges (auditor.bounds): the CLI type and the configs refuse the same values."""

import math

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor import api
from auditor.bounds import AUDIT, DATA, SAMPLE, TRAIN, Bound, BoundedListType, BoundedType
from auditor.errors import UserError
from auditor.sweep.config import SweepConfig

ALL = {f"train.{k}": b for k, b in TRAIN.items()} | {f"data.{k}": b for k, b in DATA.items()} | \
      {f"sample.{k}": b for k, b in SAMPLE.items()} | {f"audit.{k}": b for k, b in AUDIT.items()}


def _inside(bound: Bound, x: float) -> bool:
    """The oracle, written out: finite, and each end open or closed as declared."""
    if not math.isfinite(x):
        return False
    lo_ok = x > bound.low or (x == bound.low and not bound.low_open)
    hi_ok = x < bound.high or (x == bound.high and not bound.high_open)
    return lo_ok and hi_ok


@pytest.mark.parametrize("name", sorted(ALL))
@settings(max_examples=30, deadline=None)
@given(x=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**40), 2**40),
                   st.sampled_from([0, -1, 1, 0.0, 1.0, -0.0])))
def test_the_click_type_takes_exactly_the_numbers_inside(name, x):
    bound = ALL[name]
    kind_ok = bound.kind is float or (isinstance(x, int) or (math.isfinite(x) and x == int(x)))
    text = str(int(x)) if bound.kind is int and kind_ok else repr(x)
    typ = BoundedType(bound)
    if kind_ok and _inside(bound, float(x)):
        assert typ.convert(text, None, None) == bound.kind(x)
    else:
        with pytest.raises(click.BadParameter):
            typ.convert(text, None, None)


def test_the_ends_of_a_range():
    eps = BoundedType(TRAIN["epsilon"])  # (0, 100]
    assert eps.convert("100", None, None) == 100.0
    assert eps.convert("1e-9", None, None) == 1e-9
    for bad in ("0", "100.00001", "nan", "-inf", "1e400", "eight"):
        with pytest.raises(click.BadParameter, match=r"finite number in \(0, 100\]"):
            eps.convert(bad, None, None)
    reps = BoundedListType(Bound(int, 1, 1000))
    assert reps.convert("1, 2,16", None, None) == (1, 2, 16)
    for bad in ("1,nan", "1,0", "1,1001", ",", "1.5"):
        with pytest.raises(click.BadParameter):
            reps.convert(bad, None, None)


@pytest.mark.parametrize("build,field", [
    (lambda: api.TrainConfig(epsilon=float("nan")), "TrainConfig.epsilon"),
    (lambda: api.TrainConfig(epsilon=float("inf")), "TrainConfig.epsilon"),
    (lambda: api.TrainConfig(epsilon=None, noise_multiplier=float("inf")), "TrainConfig.noise_multiplier"),
    (lambda: api.TrainConfig(lr=float("inf")), "TrainConfig.lr"),
    (lambda: api.TrainConfig(epochs=float("nan")), "TrainConfig.epochs"),
    (lambda: api.TrainConfig(max_grad_norm=float("nan")), "TrainConfig.max_grad_norm"),
    (lambda: api.TrainConfig(checkpoint_every=0), "TrainConfig.checkpoint_every"),
    (lambda: api.TrainConfig(physical_batch_size=0), "TrainConfig.physical_batch_size"),
    (lambda: api.TrainConfig(seed=-1), "TrainConfig.seed"),
    (lambda: api.TrainConfig(batch_size=2.5), "TrainConfig.batch_size"),
    (lambda: api.DataConfig(holdout=1.0), "DataConfig.holdout"),
    (lambda: api.SampleConfig(temperature=float("nan")), "SampleConfig.temperature"),
    (lambda: api.SampleConfig(top_p=0.0), "SampleConfig.top_p"),
    (lambda: api.AuditConfig(pii_threshold=float("nan")), "AuditConfig.pii_threshold"),
    (lambda: api.CanaryConfig(repetitions=(1, 1001)), "canaries.repetitions"),
    (lambda: api.CanaryConfig(audit_canaries=10**6), "canaries.audit_canaries"),
])
def test_the_api_configs_name_the_bad_field(build, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        build()


def test_a_training_config_set_after_construction_is_checked_again():
    cfg = api.TrainConfig(epsilon=4.0)
    cfg.epsilon = float("inf")
    with pytest.raises(UserError, match=r"TrainConfig\.epsilon"):
        cfg.validate()


@pytest.mark.parametrize("changes,needle", [
    ({"grid": {"epsilon": [1.0, float("nan")]}}, "--epsilon"),
    ({"grid": {"batch_size": [float("inf")]}}, "--batch-size"),
    ({"grid": {"noise_multiplier": [float("inf")]}}, "--noise-multiplier"),
    ({"jobs": 0}, "--jobs"),
    ({"generate": {"num_records": 0}}, "SampleConfig.num_records"),
    ({"generate": {"temperature": float("nan")}}, "SampleConfig.temperature"),
    ({"train": {"lr": float("inf")}}, "TrainConfig.lr"),
    ({"audit": {"max_members": 0}}, "AuditConfig.max_members"),
])
def test_a_sweep_yaml_with_bad_numbers_is_refused(changes, needle):
    with pytest.raises(UserError, match=needle):
        SweepConfig.from_dict({"data": "d.csv", "grid": {"epsilon": [1.0]}, **changes})
