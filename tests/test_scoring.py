import math

import numpy as np
import pytest
import torch

from auditor.codec import RowCodec
from auditor.model import build_model
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from canaries.scorer import Scorer

SCHEMA = Schema(columns=[
    Column(name="kind", kind="categorical", categories=["a", "b", "c"]),
    Column(name="code", kind="pattern", pattern="dd-d"),
    Column(name="note", kind="text", max_tokens=10),
])
RECORD = {"kind": "b", "code": "12-3", "note": "PIN 4567"}


@pytest.fixture(scope="module")
def scorer():
    codec = RowCodec(SCHEMA)
    return ModelScorer(build_model("tiny", codec.vocab_size, seed=3), codec, batch_size=7)


def naive(scorer, prefix, continuations):
    """Full-sequence scoring: one forward pass per candidate, masked log-probs summed."""
    out = []
    for c in continuations:
        if not c:
            out.append(0.0)
            continue
        stats = scorer.token_stats([list(prefix) + list(c)])[0]
        out.append(float(stats.logprob[-len(c):].sum()))
    return np.array(out)


def test_is_a_scorer(scorer):
    assert isinstance(scorer, Scorer)


def test_exact_enumeration_matches_naive_and_sums_to_one(scorer):
    prefix = scorer.encode_prefix(RECORD, "code")
    values = [f"{i:02d}-{j}" for i in range(100) for j in range(10)]
    conts = [scorer.encode_value("code", v) for v in values]
    fast = scorer.continuation_logprobs(prefix, conts)
    subset = list(range(0, 1000, 37))
    np.testing.assert_allclose(fast[subset], naive(scorer, prefix, [conts[i] for i in subset]), atol=1e-4)
    # The grammar allows exactly these 1000 values here: their masked probabilities sum to 1.
    assert float(np.exp(fast).sum()) == pytest.approx(1.0, abs=1e-4)


def test_ragged_duplicate_and_empty_continuations_match_naive(scorer):
    prefix = scorer.encode_prefix(RECORD, "note") + scorer.encode_value("note", "PIN ")
    texts = ["4567", "45", "4", "4567", "9", "Mary Smith", "", "45678", "PIN"]
    conts = [scorer.encode_value("note", t) for t in texts]
    fast = scorer.continuation_logprobs(prefix, conts)
    np.testing.assert_allclose(fast, naive(scorer, prefix, conts), atol=1e-4)
    assert fast[0] == fast[3] and fast[6] == 0.0
    one_node_at_a_time = ModelScorer(scorer.model, scorer.codec, max_cache_bytes=1)
    np.testing.assert_allclose(one_node_at_a_time.continuation_logprobs(prefix, conts), fast, atol=1e-5)


def test_tokens_outside_the_grammar_score_minus_infinity(scorer):
    prefix = scorer.encode_prefix(RECORD, "code")
    letter = scorer.codec.class_ids["A"][0]
    digit = scorer.codec.digit_ids[1]
    out = scorer.continuation_logprobs(prefix, [[letter], [digit, letter], [digit, digit]])
    assert out[0] == -math.inf and out[1] == -math.inf and math.isfinite(out[2])


def test_token_stats_are_the_masked_distribution(scorer):
    seq = scorer.encode(RECORD)
    stats = scorer.token_stats([seq, seq[:5]])
    assert len(stats[0].logprob) == len(seq) - 1 and len(stats[1].logprob) == 4
    np.testing.assert_allclose(stats[1].logprob, stats[0].logprob[:4], atol=1e-5)
    # Position 1 predicts the "code" field's first digit: 10 allowed tokens.
    with torch.no_grad():
        logits = scorer.model(input_ids=torch.tensor([seq[:2]])).logits[0, -1]
    digits = scorer.codec.digit_ids
    lp = torch.log_softmax(logits[digits], -1).double().numpy()
    p = np.exp(lp)
    mean = float((p * lp).sum())
    assert stats[0].logprob[1] == pytest.approx(lp[digits.index(seq[2])], abs=1e-5)
    assert stats[0].mean[1] == pytest.approx(mean, abs=1e-5)
    assert stats[0].std[1] == pytest.approx(math.sqrt((p * (lp - mean) ** 2).sum()), abs=1e-5)
    with pytest.raises(ValueError, match="sequence 1 leaves the grammar"):
        scorer.token_stats([seq, [seq[0], scorer.codec.class_ids["A"][0]]])


def test_wide_beam_is_exhaustive_and_ranked(scorer):
    prefix = scorer.encode_prefix(RECORD, "code")
    values = [f"{i:02d}-{j}" for i in range(100) for j in range(10)]
    exact = scorer.continuation_logprobs(prefix, [scorer.encode_value("code", v) for v in values])
    beam = scorer.complete(prefix, field="code", beam_width=1000, max_new_tokens=5)
    assert len(beam) == 1000
    assert [v for v, _ in beam[:20]] == [values[i] for i in np.argsort(-exact, kind="stable")[:20]]
    got = dict(beam)
    np.testing.assert_allclose([got[v] for v in values], exact, atol=1e-4)


def test_greedy_follows_the_argmax_and_stops_at_the_field_end(scorer):
    prefix = scorer.encode_prefix(RECORD, "code")
    ids = list(prefix)
    for _ in range(3):
        digits = scorer.codec.digit_ids
        lp = scorer.continuation_logprobs(ids, [[d] for d in digits])
        ids.append(digits[int(np.argmax(lp))])
    (value, score), = scorer.complete(prefix, field="code", beam_width=1, max_new_tokens=10)
    assert value == scorer.decode_value("code", ids[len(prefix):])
    assert score == pytest.approx(float(scorer.continuation_logprobs(prefix, [ids[len(prefix):]])[0]), abs=1e-4)
    note_prefix = scorer.encode_prefix(RECORD, "note")
    for value, _ in scorer.complete(note_prefix, field="note", beam_width=3, max_new_tokens=12):
        assert isinstance(value, str) and "<sep>" not in value
    with pytest.raises(ValueError, match="inside field 'note'"):
        scorer.complete(prefix, field="note")
