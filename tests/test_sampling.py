"""Sampling filters: exact behaviour on hand-made logits, and the magnitude cut through the grammar."""

import math

import torch

from auditor.codec import RowCodec
from auditor.config import SampleConfig
from auditor.generate import _min_p_filter, _top_p_filter, sample_sequences
from auditor.schema import Column, Schema


def test_min_p_cuts_only_the_marked_rows_relative_to_their_top_token():
    probs = torch.tensor([[0.50, 0.30, 0.12, 0.08], [0.50, 0.30, 0.12, 0.08]])
    logits = probs.log()
    out = _min_p_filter(logits, 0.2, torch.tensor([True, False]))
    # row 0: the cut is 0.2 * 0.5 = 0.1 -> 0.08 goes, 0.12 stays; row 1 is untouched
    assert torch.isinf(out[0, 3]) and torch.isfinite(out[0, :3]).all()
    assert torch.equal(out[1], logits[1])
    kept = torch.softmax(out[0], -1)
    assert torch.allclose(kept[:3], probs[0, :3] / 0.92)


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.tensor([[0.5, 0.3, 0.12, 0.08]]).log()
    out = _top_p_filter(logits, 0.8)
    assert torch.isfinite(out[0, :2]).all() and torch.isinf(out[0, 2:]).all()


class _Fixed(torch.nn.Module):
    """A 'model' whose next-token distribution is fixed: a floor everywhere, one favourite lead token."""

    def __init__(self, vocab: int, favourite: int):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.logits = torch.zeros(vocab)
        self.logits[favourite] = math.log(30.0)  # 30x the floor

    def forward(self, input_ids, use_cache=True, past_key_values=None):
        b = input_ids.shape[0]
        out = type("Out", (), {})()
        out.logits = self.logits.expand(b, 1, -1).clone()
        out.past_key_values = None
        return out


def test_magnitude_min_p_removes_the_floor_on_number_leads_only():
    schema = Schema([Column("c", "categorical", categories=["a", "b", "c"]),
                     Column("x", "numeric", minimum=0, maximum=99999, sig_digits=2)])
    codec = RowCodec(schema)
    fav = codec.lead_ids[(1, 2, 3)]  # 300..399
    model = _Fixed(codec.vocab_size, fav)
    seqs = {}
    for cut in (0.0, 0.1):
        cfg = SampleConfig(magnitude_min_p=cut, batch_size=400)
        seqs[cut] = [codec.decode(s) for s in sample_sequences(
            model, codec.grammar, n=400, bos_id=codec.bos_id, max_length=codec.max_length, config=cfg,
            generator=torch.Generator().manual_seed(0))]
    # without the cut the favourite has 30 / (30 + 116 other leads + ZERO) = 0.20 of the mass; with it, all
    no_cut = [r["x"] for r in seqs[0.0]]
    assert 0.15 < sum(v.startswith("3") and len(v.split(".")[0]) == 3 for v in no_cut) / 400 < 0.35
    assert all(300 <= float(r["x"]) < 400 for r in seqs[0.1])
    # the categorical column (no favourite, flat) keeps all three values
    assert {r["c"] for r in seqs[0.1]} == {"a", "b", "c"}
