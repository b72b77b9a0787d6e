"""Batched sampling under the codec's grammar, with a KV cache, on CPU or CUDA.

Each step feeds one token per sequence, masks the logits with
``grammar.allowed[state]``, samples (temperature, top-p) and advances the state
with ``grammar.next_state``: a gather per step, no host synchronisation until
the batch is done. Sequences that finished emit PAD in the grammar's ``done``
state, so a batch runs in lockstep until all are finished.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import numpy as np
import torch

from auditor.bounds import NUM_RECORDS
from auditor.config import SampleConfig
from auditor.errors import UserError


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches ``top_p`` (Holtzman et al. 2020)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
    drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before this token already enough
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)


def _min_p_filter(logits: torch.Tensor, min_p: float, rows: torch.Tensor) -> torch.Tensor:
    """In ``rows``, drop tokens less likely than ``min_p`` times the likeliest (min-p, Nguyen et al. 2024).

    Used at the leading (magnitude) token of numeric columns: DP noise leaves a
    floor of probability on every admitted magnitude, and mass on far-off
    magnitudes moves means a lot (a 2% floor on 5-digit costs triples the mean of
    a 3-digit one). The cut scales with the model's confidence, so a flat
    distribution keeps its spread. Categorical and text tokens are left alone,
    where the same cut would erase rare values. Post-processing of the trained
    model: no privacy cost.
    """
    if min_p <= 0.0:
        return logits
    cut = logits.max(dim=-1, keepdim=True).values + math.log(min_p)
    return logits.masked_fill((logits < cut) & rows[:, None], float("-inf"))


def _gumbel_argmax(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A sample of softmax(logits) per row by the Gumbel-max trick: argmax(logits + G), G ~ Gumbel(0, 1).

    One uniform draw per logit from ``generator`` (on the CPU, so a seed gives the
    same samples on any device); no sort and no host synchronisation.
    """
    u = torch.rand(logits.shape, generator=generator).clamp_(min=1e-20).to(logits.device)
    return torch.argmax(logits - torch.log(-torch.log(u)), dim=-1)


@torch.no_grad()
def sample_sequences(
    model: torch.nn.Module,
    grammar,
    *,
    n: int,
    bos_id: int,
    pad_id: int = 0,
    max_length: int,
    config: SampleConfig,
    generator: torch.Generator,
) -> list[list[int]]:
    """``n`` token sequences ``[BOS, ..., EOS]`` sampled under the grammar."""
    device = next(model.parameters()).device
    g = grammar.to(device)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out: list[list[int]] = []
    model.eval()
    while len(out) < n:
        b = min(config.batch_size, n - len(out))
        tokens = torch.full((b, max_length), pad_id, dtype=torch.long, device=device)
        tokens[:, 0] = bos_id
        state = torch.full((b,), g.start, dtype=torch.long, device=device)
        cache = None
        length = max_length
        for t in range(1, max_length):
            res = model(input_ids=tokens[:, t - 1 : t], use_cache=True, **{cache_arg: cache})
            cache = res.cache if cache_arg == "cache" else res.past_key_values
            logits = res.logits[:, -1].float() / config.temperature
            logits = logits.masked_fill(~g.allowed[state], float("-inf"))
            logits = _top_p_filter(logits, config.top_p)
            if config.magnitude_min_p:
                logits = _min_p_filter(logits, config.magnitude_min_p, g.magnitude[state])
            nxt = _gumbel_argmax(logits, generator)
            state = g.next_state[state, nxt]
            tokens[:, t] = nxt
            # One host sync every 8 steps, to stop once every sequence is done.
            if t % 8 == 0 and bool((state == g.done).all()):
                length = t + 1
                break
        out.extend(tokens[:, :length].tolist())
    return out


#: Rows per sampling stream when ``SampleConfig.partitions`` is None: up to this many rows are one stream,
#: so every run of the demo's size samples exactly as a single stream seeded with the seed does.
ROWS_PER_PARTITION = 25_000


def partition_count(n: int, config: SampleConfig) -> int:
    """The sampling streams of ``n`` rows: ``config.partitions``, or one per :data:`ROWS_PER_PARTITION` rows."""
    parts = config.partitions if config.partitions is not None else -(-n // ROWS_PER_PARTITION)
    return max(1, min(parts, n))


def partition_seed(seed: int, partitions: int, index: int) -> int:
    """The seed of stream ``index`` of ``partitions``: ``seed`` itself for one stream, else a
    ``numpy.random.SeedSequence`` child of ``(seed, partitions, index)`` (independent streams)."""
    if partitions == 1:
        return seed
    words = np.random.SeedSequence((seed, partitions, index)).generate_state(2, dtype=np.uint32)
    return int(words[0]) << 31 | int(words[1]) >> 1  # 63 bits: torch seeds are signed 64-bit


def generate_records(
    model: torch.nn.Module,
    codec,
    *,
    n: int,
    config: SampleConfig,
    progress: Callable[[int, int], None] | None = None,
    executor=None,
) -> tuple[list, dict]:
    """``n`` valid records and the counts (requested, generated, valid, invalid, validity).

    Invalid samples (those that do not decode) are dropped and counted; more are
    drawn until ``n`` are valid. If the invalid rate exceeds
    ``config.max_invalid_rate`` after at least one batch, a UserError says so
    instead of looping.

    The rows are cut into :func:`partition_count` contiguous partitions (sizes
    differing by at most one), each sampled as its own stream seeded with
    :func:`partition_seed` and concatenated in order: the records depend on the
    seed and the number of partitions only. With an ``executor``
    (``auditor.execution``) of more than one worker, the partitions are sampled
    on its workers, on the CPU, from a CPU copy of the model sent once per worker.
    """
    config.validate()
    if not NUM_RECORDS.admits(n):
        raise UserError(f"--num-records must be {NUM_RECORDS.describe()}, got {n!r}")
    from auditor.execution import partition_sizes

    partitions = partition_count(n, config)
    sizes = partition_sizes(n, partitions)
    parts = [(partition_seed(config.seed, partitions, i), size) for i, size in enumerate(sizes)]
    if partitions == 1 or executor is None or executor.workers <= 1:
        done = [0]

        def step(k: int, _: int) -> None:
            if progress is not None:
                progress(done[0] + k, n)

        results = []
        for seed, size in parts:
            results.append(_sample_stream(model, codec, n=size, config=config, seed=seed, progress=step))
            done[0] += size
    else:
        shared = (_cpu_copy(model), codec, config)
        finished = [0]

        def part_done(i: int) -> None:
            finished[0] += sizes[i]
            if progress is not None:
                progress(finished[0], n)

        results = executor.map(_sample_part, parts, shared=shared, on_done=part_done)
    records = [rec for part, _ in results for rec in part]
    generated = sum(s["generated"] for _, s in results)
    invalid = sum(s["invalid"] for _, s in results)
    stats = {
        "requested": n,
        "generated": generated,
        "valid": generated - invalid,
        "invalid": invalid,
        "validity": (generated - invalid) / generated,
        "partitions": partitions,
    }
    return records, stats


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    if next(model.parameters()).device.type == "cpu":
        return model
    import copy

    return copy.deepcopy(model).cpu()


def _sample_part(shared, part: tuple[int, int]) -> tuple[list, dict]:
    """On a worker: one partition's stream (seed, rows) on the CPU."""
    model, codec, config = shared
    seed, size = part
    return _sample_stream(model, codec, n=size, config=config, seed=seed, progress=None)


def _sample_stream(model, codec, *, n: int, config: SampleConfig, seed: int,
                   progress: Callable[[int, int], None] | None) -> tuple[list, dict]:
    """``n`` valid records of one stream seeded with ``seed``, and its generated/invalid counts."""
    gen = torch.Generator().manual_seed(seed)
    records: list = []
    generated = invalid = 0
    while len(records) < n:
        want = min(config.batch_size, max(1, n - len(records)))
        for seq in sample_sequences(model, codec.grammar, n=want, bos_id=codec.bos_id, pad_id=codec.pad_id,
                                    max_length=codec.max_length, config=config, generator=gen):
            generated += 1
            rec = codec.decode(seq)
            if rec is None:
                invalid += 1
            elif len(records) < n:
                records.append(rec)
        if progress is not None:
            progress(len(records), n)
        if generated >= config.batch_size and invalid / generated > config.max_invalid_rate:
            raise UserError(
                f"{invalid} of {generated} sampled rows were invalid (more than {config.max_invalid_rate:.0%}); "
                "train longer or check the schema"
            )
    return records, {"generated": generated, "invalid": invalid}
