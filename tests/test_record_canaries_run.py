"""Tiny runs on tables with only numeric or only categorical columns: canaries are planted as
record spans and their exposure is computed over an exact space (issue 15.1)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from auditor.config import DataConfig, RunConfig
from auditor.loading import load_codec, load_trained_model
from auditor.pipeline import train
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from auditor.train import TrainConfig
from canaries.config import CanaryConfig
from canaries.exposure_audit import ExposureInputs, run as exposure_run
from canaries.manifest import Manifest

CANARIES = CanaryConfig(repetitions=(1, 2), per_repetition=1, twins=1, audit_canaries=4, beam_width=2)


def _tiny_run(tmp_path, schema: Schema, frame: pd.DataFrame):
    schema_path = tmp_path / "schema.yaml"
    schema.dump(schema_path)
    cfg = RunConfig(data=DataConfig(schema=str(schema_path)),
                    train=TrainConfig(model="tiny", epochs=1, batch_size=16, physical_batch_size=16, lr=0.01,
                                      seed=1, device="cpu", reproducible_noise=5),
                    canaries=CANARIES)
    outcome = train(frame, tmp_path / "run", config=cfg)
    run = outcome.run
    manifest = Manifest.load(run.canaries)
    scorer = ModelScorer(load_trained_model(run, "cpu"), load_codec(run))
    result = exposure_run(ExposureInputs(scorer=scorer, manifest=manifest, synthetic=frame.to_dict("records")),
                          CanaryConfig.from_dict(manifest.config))
    return outcome, manifest, result


def test_numeric_only_table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 60).astype(str),
                          "amount": [f"{x:.1f}" for x in rng.uniform(10, 99, 60)]})
    schema = Schema(columns=[Column("age", "numeric", integer=True, sig_digits=2, minimum=0, maximum=120),
                             Column("amount", "numeric", sig_digits=2, minimum=0)])
    outcome, manifest, out = _tiny_run(tmp_path, schema, frame)
    # age: 10..99 (|part| 90); amount: 10..99 at magnitude 1e+1 (90): one span of both, 8,100 secrets
    assert {tuple(c.fields) for c in manifest.canaries} == {("age", "amount")}
    assert outcome.privacy["n_canary_rows"] == manifest.n_planted_rows > 0
    assert out["log2_space"] == pytest.approx(math.log2(90 * 90))
    assert {r["method"] for r in out["canaries"]} == {"exact"}
    assert [m["method"] for m in out["methods"].values()] == ["exact"]
    assert [m["n_references"] for m in out["methods"].values()] == [8100]
    assert [m["prefixes"] for m in out["methods"].values()] == [1]  # every canary starts at BOS
    for r in out["canaries"]:
        assert 0.0 <= r["exposure"] <= math.log2(8100) + 1e-9
        assert r["secret"] == "[***, ***]"
    assert out["extraction"]["n_canaries"] == 2
    assert not any(c.secret in json.dumps(out) for c in manifest.canaries)


def test_categorical_only_table(tmp_path):
    rng = np.random.default_rng(1)
    domains = {"color": ["red", "green", "blue"], "size": ["S", "M", "L", "XL"], "grade": list("ABCDE")}
    frame = pd.DataFrame({k: rng.choice(v, 60) for k, v in domains.items()})
    schema = Schema(columns=[Column(k, "categorical", categories=v) for k, v in domains.items()])
    _, manifest, out = _tiny_run(tmp_path, schema, frame)
    assert {tuple(c.fields) for c in manifest.canaries} == {("color", "size", "grade")}
    assert out["log2_space"] == pytest.approx(math.log2(3 * 4 * 5))
    assert {r["method"] for r in out["canaries"]} == {"exact"}
    assert [m["n_references"] for m in out["methods"].values()] == [60]
    inserted = [r for r in out["canaries"] if r["inserted"]]
    # the one synthetic source here is the real frame: a canary's combination may occur in it by chance
    assert out["extraction"]["synthetic_full_occurrences"] == sum(r["synthetic_full"] for r in inserted)
