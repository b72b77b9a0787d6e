import json
import math
import re

import numpy as np
import pytest

from auditor.codec import RowCodec
from auditor.model import build_model
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from canaries.exposure_audit import ExposureInputs, run
from canaries.config import CanaryConfig
from canaries.occurrences import scrub
from canaries.plant import plant
from canaries.prompts import canary_prompt, secret_logprobs

SCHEMA = Schema(columns=[
    Column(name="kind", kind="categorical", categories=["a", "b"]),
    Column(name="note", kind="text", max_tokens=16),
])
REAL = [{"kind": "a", "note": f"visit {i}"} for i in range(10)]
CONFIG = CanaryConfig(format="digits:4", repetitions=(1, 2), per_repetition=1, twins=1, audit_canaries=3,
                      beam_width=3)


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield k
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


@pytest.fixture(scope="module")
def setup():
    codec = RowCodec(SCHEMA)
    planted, manifest = plant(REAL, SCHEMA, config=CONFIG, rng=np.random.default_rng(0), secret_rng=np.random.default_rng(0 + 100), encoder=codec)
    scorer = ModelScorer(build_model("tiny", codec.vocab_size, seed=1), codec, batch_size=64)
    return codec, planted, manifest, scorer


@pytest.fixture(scope="module")
def audited(setup):
    _, _, manifest, scorer = setup
    synthetic = REAL[:3] + [manifest.group("schedule")[0].record]
    result = scrub(synthetic, {c.id: c.secret for c in manifest.canaries},
                   drop_ids=[c.id for c in manifest.inserted()])
    return run(ExposureInputs(scorer=scorer, manifest=manifest, scrub=result.to_dict()), CONFIG)


def test_exact_audit_matches_the_contract_and_hides_secrets(setup, audited):
    _, _, manifest, _ = setup
    out = audited
    strings = [s for s in _strings(json.loads(json.dumps(out))) if not re.fullmatch(r"c\d{4}|h:[0-9a-f]{12}", s)]
    for c in manifest.canaries:
        assert not any(c.secret in s for s in strings)
    assert out["log2_space"] == pytest.approx(math.log2(10**4))
    assert [r["repetitions"] for r in out["by_repetition"]] == [1, 2]
    for r in out["by_repetition"]:
        assert r["method"] == "exact" and r["n"] == 1 and r["held_out"]["n"] == 2
        assert r["exposure_max"] <= r["max_possible"] + 1e-9
    assert [r["repetitions"] for r in out["memorization"]["by_repetition"]] == [1, 2]
    ext = out["extraction"]
    assert ext["n_canaries"] == 2 and ext["beam_width"] == 3
    assert ext["scrubbed_rows"] == 1 and ext["synthetic_full_occurrences"] == 1
    assert len(out["canaries"]) == 4
    row = out["canaries"][0]
    assert set(row) >= {"id", "format", "repetitions", "inserted", "secret", "hash", "exposure", "method",
                        "greedy_extracted", "beam_rank"}
    assert row["secret"] == "****" and row["hash"].startswith("h:")


def test_exact_exposure_is_the_rank_in_the_space(setup, audited):
    _, _, manifest, scorer = setup
    out = audited
    canary = manifest.group("twin")[0]
    prefix = canary_prompt(scorer, canary).prefix
    space = scorer.continuation_logprobs(prefix, [scorer.encode_value("note", f"{i:04d}") for i in range(10**4)])
    rank = int((space >= space[int(canary.secret)]).sum())
    row = next(r for r in out["canaries"] if r["id"] == canary.id)
    assert row["exposure"] == pytest.approx(math.log2(10**4) - math.log2(rank))


def test_sampled_references_give_both_estimates(setup):
    codec, _, _, scorer = setup
    config = CanaryConfig(format="digits:5", repetitions=(1,), per_repetition=2, twins=1, audit_canaries=0,
                          exact_max_space=100, n_references=60, beam_width=2)
    _, manifest = plant(REAL, SCHEMA, config=config, rng=np.random.default_rng(2), secret_rng=np.random.default_rng(2 + 100), encoder=codec)
    out = run(ExposureInputs(scorer=scorer, manifest=manifest, synthetic=REAL), config)
    method = out["methods"]["digits:5"]
    assert {k: method[k] for k in ("method", "n_references", "log2_space")} == {
        "method": "sampled", "n_references": 60, "log2_space": math.log2(10**5)}
    for row in out["canaries"]:
        assert row["method"] == "extrapolation"
        assert row["exposure"] == row["exposure_extrapolation"] <= math.log2(10**5)
        assert row["exposure_interpolation"] <= math.log2(60)
    assert out["extraction"]["synthetic_full_occurrences"] == 0
    assert run(ExposureInputs(scorer=scorer, manifest=manifest), config)["extraction"]["scrubbed_rows"] is None


def test_audit_set_scores_for_the_one_run_audit(setup):
    _, _, manifest, scorer = setup
    audit = manifest.group("audit")
    scores = secret_logprobs(scorer, audit)
    assert scores.shape == (3,) and np.all(scores < 0)
    prompt = canary_prompt(scorer, audit[0])
    prefix, secret = prompt.prefix, prompt.secret
    assert scores[0] == pytest.approx(scorer.token_stats([prefix + secret])[0].logprob[-len(secret):].sum(), abs=1e-4)


def test_truncated_canaries_are_refused_before_training():
    schema = Schema(columns=[Column(name="note", kind="text", max_tokens=6)])
    codec = RowCodec(schema)
    with pytest.raises(ValueError, match="canary c0001 .* does not encode as prefix \\+ secret"):
        plant([{"note": "x"}], schema, config=CONFIG, rng=np.random.default_rng(0), secret_rng=np.random.default_rng(0 + 100), encoder=codec)


def test_text_records_score_and_complete():
    schema = Schema(columns=[Column(name="text", kind="text", max_tokens=24)], text=True)
    codec = RowCodec(schema)
    config = CanaryConfig(format="digits:4", repetitions=(1,), per_repetition=2, twins=1, audit_canaries=0)
    planted, manifest = plant(["a plain note", "another one"], schema, config=config,
                              rng=np.random.default_rng(3), secret_rng=np.random.default_rng(3 + 100), encoder=codec)
    scorer = ModelScorer(build_model("tiny", codec.vocab_size, seed=2), codec)
    canary = manifest.group("schedule")[0]
    assert isinstance(canary.record, str) and canary.field is None
    prompt = canary_prompt(scorer, canary)
    prefix, secret = prompt.prefix, prompt.secret
    assert prefix == codec.encode(canary.record)[:len(prefix)] and len(secret) == 4 and prompt.lead == ""
    (value, score), = scorer.complete(prefix, field=None, beam_width=1, max_new_tokens=4)
    assert isinstance(value, str) and score < 0
    assert secret_logprobs(scorer, [canary])[0] < 0


def test_word_secrets_after_a_space_carry_the_space():
    # Byte-level BPE glues the space before a word onto it (" Mary"): the split moves it.
    codec = RowCodec(SCHEMA)
    config = CanaryConfig(format="name", repetitions=(1,), per_repetition=1, twins=1, audit_canaries=0,
                          beam_width=2)
    _, manifest = plant(REAL, SCHEMA, config=config, rng=np.random.default_rng(4), secret_rng=np.random.default_rng(4 + 100), encoder=codec)
    scorer = ModelScorer(build_model("tiny", codec.vocab_size, seed=2), codec)
    canary = manifest.canaries[0]
    prompt = canary_prompt(scorer, canary)
    assert prompt.lead == " " and codec.decode_value("note", prompt.secret) == " " + canary.secret
    small = CanaryConfig(format="name", repetitions=(1,), per_repetition=1, twins=1, audit_canaries=0,
                         beam_width=2, exact_max_space=10, n_references=30)
    out = run(ExposureInputs(scorer=scorer, manifest=manifest), small)
    assert out["methods"]["name"]["method"] == "sampled" and len(out["canaries"]) == 2


def test_single_copy_exposure_is_the_per_record_claim(audited):
    # The schedule holds one canary inserted once and one inserted twice: the
    # policy value reads only the former; max_exposure keeps the memorization picture.
    inserted = [r for r in audited["canaries"] if r["inserted"]]
    once = [r["exposure"] for r in inserted if r["repetitions"] == 1]
    assert len(once) == 1 and len(inserted) == 2
    assert audited["max_exposure_single_copy"] == once[0]
    assert audited["max_exposure"] == max(r["exposure"] for r in inserted)
