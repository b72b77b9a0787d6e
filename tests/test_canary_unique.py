"""Canary secrets are drawn without replacement across schedule, twins and audit set (issue 13.5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.data import DEMO_SCHEMA
from auditor.errors import UserError
from auditor.schema import Column, Schema
from canaries.config import CanaryConfig
from canaries.formats import make_format
from canaries.plant import plant, unique_secrets

SCHEMA = Schema(columns=[Column("kind", "categorical", categories=["a", "b"]), Column("note", "text", max_tokens=24)])
REAL = [{"kind": "a", "note": f"note {i}"} for i in range(20)]


@settings(max_examples=60, deadline=None)
@given(spec=st.sampled_from(["digits:1", "digits:2", "digits:3", "pattern:Ad", "ssn", "card"]),
       share=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_unique_secrets_are_distinct_members_of_the_space(spec, share, seed):
    fmt = make_format(spec)
    count = min(int(share * fmt.size), 300)
    secrets = unique_secrets(fmt, count, np.random.default_rng(seed))
    assert len(secrets) == count == len(set(secrets))
    if fmt.size <= 1000:
        assert set(secrets) <= set(fmt.enumerate())


@settings(max_examples=25, deadline=None)
@given(per_repetition=st.integers(1, 6), twins=st.integers(1, 3), audit=st.integers(0, 60),
       seed=st.integers(0, 2**32 - 1))
def test_every_canary_of_a_run_has_its_own_secret(per_repetition, twins, audit, seed):
    """digits:2 (100 secrets) and up to 108 canaries: drawn with replacement, repeats are near certain."""
    config = CanaryConfig(format="digits:2", repetitions=(1, 2, 4), per_repetition=per_repetition, twins=twins,
                          audit_canaries=audit)
    n = 3 * per_repetition * (1 + twins) + audit
    if n > 100:
        with pytest.raises(ValueError, match="100 distinct secrets, fewer than the"):
            plant(REAL, SCHEMA, config=config, rng=np.random.default_rng(seed),
                  secret_rng=np.random.default_rng(seed + 1))
        return
    _, manifest = plant(REAL, SCHEMA, config=config, rng=np.random.default_rng(seed),
                        secret_rng=np.random.default_rng(seed + 1))
    secrets = [c.secret for c in manifest.canaries]
    assert len(secrets) == n
    assert len(set(secrets)) == n  # no twin or audit canary equals an inserted one, no repeat at all


def test_too_small_a_space_is_bad_input_and_writes_nothing(tmp_path, demo_small_csv):
    from auditor.pipeline import train
    from auditor.config import DataConfig, RunConfig, TrainConfig

    config = RunConfig(data=DataConfig(schema=str(DEMO_SCHEMA)),
                       train=TrainConfig(model="tiny", epochs=0.2, batch_size=32, seed=1, device="cpu"),
                       canaries=CanaryConfig(format="digits:1", repetitions=(1, 2), audit_canaries=10))
    with pytest.raises(UserError, match="has 10 distinct secrets, fewer than the 26 canaries"):
        train(demo_small_csv, tmp_path / "run", config=config)
    assert not (tmp_path / "run").exists()
