"""auditor.dp.secret: the secret streams are the documented formulas, resume exactly, and never repeat."""

import numpy as np
import pytest
import torch

from auditor.codec import RowCodec
from auditor.dp.ledger import PrivacyLedger
from auditor.dp.secret import NOISE_GENERATORS, STREAMS, SecretSource, SecretStreams
from auditor.schema import Column, Schema
from auditor.config import TrainConfig
from auditor.train import fit

CPU = torch.device("cpu")


def _seeds(source: SecretSource, stream: str, count: int) -> list[int]:
    return [int(s) for s in np.random.SeedSequence(source.entropy, spawn_key=(STREAMS[stream],)).generate_state(
        count, np.uint64)]


def test_noise_is_the_half_sum_of_four_independently_seeded_draws():
    source = SecretSource.reproducible_from(7)
    ref = torch.zeros(3, 5)
    got = SecretStreams(source, CPU).gaussian(ref, 1.5)
    gens = [torch.Generator().manual_seed(s) for s in _seeds(source, "noise", NOISE_GENERATORS)]
    expected = sum(torch.normal(0.0, 1.5, size=(3, 5), generator=g) for g in gens) / 2
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert len(set(_seeds(source, "noise", NOISE_GENERATORS))) == NOISE_GENERATORS


def test_noise_has_the_requested_spread():
    x = SecretStreams(SecretSource.reproducible_from(1), CPU).gaussian(torch.zeros(200_000), 2.0)
    assert abs(float(x.std()) - 2.0) < 0.02 and abs(float(x.mean())) < 0.02  # 200k draws: sd of std ~ 0.003


def test_poisson_sample_is_the_sum_of_two_uniforms_mod_one():
    source = SecretSource.reproducible_from(3)
    got = SecretStreams(source, CPU).poisson(1000, 0.1)
    u = sum(torch.rand(1000, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
            for s in _seeds(source, "sampling", 2)) % 1.0
    assert torch.equal(got, torch.nonzero(u < 0.1).flatten())
    assert 60 < len(got) < 140


def test_state_round_trip_continues_the_same_streams():
    a = SecretStreams(SecretSource.reproducible_from(9), CPU)
    a.poisson(50, 0.5), a.gaussian(torch.zeros(4), 1.0)
    state = a.state()
    next_a = (a.poisson(50, 0.5), a.gaussian(torch.zeros(4), 1.0))
    b = SecretStreams(SecretSource.from_state(a.source.to_state()), CPU)
    b.load_state(state)
    next_b = (b.poisson(50, 0.5), b.gaussian(torch.zeros(4), 1.0))
    assert torch.equal(next_a[0], next_b[0]) and torch.equal(next_a[1], next_b[1])


def test_fresh_sources_have_256_bits_and_never_repeat():
    sources = [SecretSource.fresh() for _ in range(8)]
    assert len({s.entropy for s in sources}) == 8 and not any(s.reproducible for s in sources)
    assert max(s.entropy.bit_length() for s in sources) > 200
    draws = [tuple(SecretStreams(s, CPU).poisson(64, 0.5).tolist()) for s in sources]
    assert len(set(draws)) == 8


@pytest.mark.parametrize("clipping", ["bookkeeping", "opacus"])
def test_both_clipping_engines_draw_their_noise_from_the_secret_streams(clipping):
    """The same reproducible source gives the same model; another source, another model."""
    schema = Schema([Column("kind", "categorical", categories=["a", "b", "c"]),
                     Column("n", "numeric", integer=True, minimum=0, maximum=99, sig_digits=2)])
    codec = RowCodec(schema)
    seqs = [codec.encode({"kind": "abc"[i % 3], "n": str(i)}) for i in range(40)]
    config = TrainConfig(model="tiny", noise_multiplier=1.0, epsilon=None, epochs=1.0, batch_size=8,
                         physical_batch_size=8, lr=1e-2, accountant="rdp", seed=0, device="cpu", clipping=clipping)

    def weights(source):
        result = fit(seqs, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id, config=config,
                     ledger=PrivacyLedger.for_training(config, delta=1e-3), max_length=codec.max_length,
                     secret=source)
        return torch.cat([p.detach().flatten() for p in result.model.parameters()])

    a, b = weights(SecretSource.reproducible_from(4)), weights(SecretSource.reproducible_from(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, weights(SecretSource.reproducible_from(5)))
