"""The ``exposure`` audit: exposure, memorization test and extraction of canaries.

``run(inputs, config) -> dict`` is written by ``auditor.pipeline`` to
``RUN/audit/exposure.json`` (shape: ``docs/audit-contract.md``). Secrets leave
only masked, with the manifest's salted hash.

For each scheduled canary and held-out twin (the coin-flip audit set is
scored by ``attacks.dp_audit`` through ``canaries.prompts.secret_logprobs``):

1. Scores ``-log p(candidate | canary prefix)`` of references: the whole space
   R (method ``exact``, rank in R), or uniform samples of R shared by all
   canaries of the format, with both the interpolation and the skew-normal
   extrapolation estimate (``config.sampled_method`` is the one reported as
   ``exposure``; extrapolations are capped at ``log2 |R|``, the exposure of
   rank 1). Which one, and how many samples, is chosen by the compute budget
   ``config.audit_budget_s`` against the scorer's measured speed
   (``canaries.exposure_cost``). Canaries whose prefix is the same token
   sequence are scored in one call (one trie expansion per distinct prefix).
2. The one-sided rank test of inserted canaries vs the pooled twins, per
   repetition count (``canaries.memorization``).
3. Extraction: greedy and beam completions of the secret's field from its
   prefix (``len(secret tokens)`` new tokens); full/partial occurrences of
   secrets in the synthetic rows and the number of rows scrubbed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from canaries.config import CanaryConfig
from canaries.exposure import exposure_exact, exposure_extrapolation, exposure_interpolation
from canaries.exposure_cost import CostChoice, choose_references
from canaries.formats import SecretFormat, make_format, record_values
from canaries.manifest import Canary, Manifest
from canaries.memorization import memorization_test
from canaries.occurrences import Occurrences, ScrubResult, count_occurrences
from canaries.prompts import Prompt, candidate_ids, canary_prompt, space_ids
from canaries.scorer import Record, Scorer


@dataclass
class ExposureInputs:
    """What the exposure audit reads.

    Attributes:
        scorer: the trained model as a ``Scorer``.
        manifest: the canary manifest.
        synthetic: generated rows to count occurrences in (when ``scrub`` is None).
        scrub: ``ScrubResult.to_dict()`` recorded when generation scrubbed its rows
            (counts taken before scrubbing); preferred over ``synthetic``.
        rng: generator of the reference samples (default: seeded with 0, so a
            re-run of the audit gives the same numbers).
        progress: called as ``progress(done, total)`` after each canary.
    """

    scorer: Scorer
    manifest: Manifest
    synthetic: Sequence[Record] | None = None
    scrub: Mapping[str, Any] | None = None
    rng: np.random.Generator | None = None
    progress: Callable[[int, int], None] | None = None


@dataclass
class _Space:
    """Reference candidates of one format: the whole space (``values`` None) or a sample,
    and their ids per slot."""

    fmt: SecretFormat
    method: str
    values: list[str] | None
    ids: dict[tuple, list[list[int]]]
    cost: CostChoice | None = None

    @property
    def n(self) -> int:
        return self.fmt.size if self.values is None else len(self.values)

    def ids_for(self, scorer: Scorer, canary: Canary, prompt: Prompt) -> list[list[int]]:
        key = (tuple(canary.fields) if canary.fields else canary.field, prompt.lead)
        if key not in self.ids:
            self.ids[key] = (space_ids(scorer, canary, prompt, self.fmt) if self.values is None
                             else [candidate_ids(scorer, canary, prompt, v) for v in self.values])
        return self.ids[key]


CALIBRATION_EXACT = 20_000
CALIBRATION_SAMPLED = 2_000


@dataclass(frozen=True)
class _Speed:
    """Measured seconds per candidate: scoring in the exact and the sampled regime, and encoding."""

    exact: float
    sampled: float
    encode: float


def _measured_speed(scorer: Scorer, fmt: SecretFormat, canary: Canary, prompt: Prompt,
                    rng: np.random.Generator) -> _Speed:
    """The scorer's speed after the canary's prefix (see ``canaries.exposure_cost``).

    Exact regime: the first ``CALIBRATION_EXACT`` candidates of R in enumeration order,
    a sub-trie of R that shares beginnings as R does. Sampled: ``CALIBRATION_SAMPLED``
    uniform draws.
    """
    m = min(CALIBRATION_EXACT, fmt.size)
    t0 = time.perf_counter()
    exact = space_ids(scorer, canary, prompt, fmt, limit=m)
    encode = (time.perf_counter() - t0) / m
    k = min(CALIBRATION_SAMPLED, fmt.size)
    sampled = [candidate_ids(scorer, canary, prompt, fmt.sample(rng)) for _ in range(k)]
    scorer.continuation_logprobs(prompt.prefix, exact[:8])  # warm-up: first-call allocations
    out = []
    for ids in (exact, sampled):
        t0 = time.perf_counter()
        scorer.continuation_logprobs(prompt.prefix, ids)
        out.append((time.perf_counter() - t0) / len(ids))
    return _Speed(exact=out[0], sampled=out[1], encode=encode)


def _space(fmt: SecretFormat, config: CanaryConfig, rng: np.random.Generator, *, groups: int,
           speed: _Speed) -> _Space:
    cost = choose_references(size=fmt.size, groups=groups, exact_s_per_candidate=speed.exact,
                             sampled_s_per_candidate=speed.sampled, encode_s_per_candidate=speed.encode,
                             budget_s=config.audit_budget_s, exact_max_space=config.exact_max_space,
                             n_references=config.n_references)
    if cost.method == "exact":
        return _Space(fmt=fmt, method="exact", values=None, ids={}, cost=cost)
    return _Space(fmt=fmt, method="sampled", values=[fmt.sample(rng) for _ in range(cost.n)], ids={}, cost=cost)


def _canary_exposure(space: _Space, secret_score: float, reference: np.ndarray,
                     config: CanaryConfig) -> dict[str, Any]:
    max_possible = space.fmt.log2_size
    if space.method == "exact":
        exp = exposure_exact({0: [secret_score]}, reference)[0][0]
        return {"exposure": exp, "method": "exact", "exposure_interpolation": None, "exposure_extrapolation": None}
    interp = exposure_interpolation({0: [secret_score]}, reference)[0][0]
    extrap = min(exposure_extrapolation({0: [secret_score]}, reference)[0][0], max_possible)
    chosen = extrap if config.sampled_method == "extrapolation" else interp
    return {"exposure": chosen, "method": config.sampled_method,
            "exposure_interpolation": interp, "exposure_extrapolation": extrap}


def _extraction(scorer: Scorer, canary: Canary, prompt: Prompt, config: CanaryConfig) -> dict[str, Any]:
    if canary.fields:
        return _span_extraction(scorer, canary, prompt, config)
    n = len(prompt.secret)
    target = prompt.lead + canary.secret
    greedy = scorer.complete(prompt.prefix, field=canary.field, beam_width=1, max_new_tokens=n)
    beam = scorer.complete(prompt.prefix, field=canary.field, beam_width=config.beam_width, max_new_tokens=n)
    rank = next((i + 1 for i, (value, _) in enumerate(beam) if value == target), None)
    return {"greedy_extracted": bool(greedy) and greedy[0][0] == target, "beam_rank": rank}


def _span_beam(scorer: Scorer, canary: Canary, prefix: list[int], values: list[str], width: int
               ) -> list[list[str]]:
    """Beam search over a record span, field by field: each hypothesis is extended by the
    ``width`` best completions of the next field (``Scorer.complete``), and the ``width`` best
    joint hypotheses are kept. ``width`` 1 is greedy decoding of the whole span."""
    hyps: list[tuple[list[int], list[str], float]] = [(list(prefix), [], 0.0)]
    for field, value in zip(canary.fields, values):
        n = len(scorer.encode_value(field, value))
        grown = []
        for ids, vals, score in hyps:
            for v, lp in scorer.complete(ids, field=field, beam_width=width, max_new_tokens=n):
                try:
                    more = list(scorer.encode_value(field, v))
                except ValueError:  # a completion outside the field's encodable values ends there
                    continue
                grown.append((ids + more, vals + [v], score + lp))
        hyps = sorted(grown, key=lambda h: -h[2])[:width]
    return [vals for _, vals, _ in hyps]


def _span_extraction(scorer: Scorer, canary: Canary, prompt: Prompt, config: CanaryConfig) -> dict[str, Any]:
    target = record_values(canary.secret, len(canary.fields))
    greedy = _span_beam(scorer, canary, prompt.prefix, target, 1)
    beam = _span_beam(scorer, canary, prompt.prefix, target, config.beam_width)
    rank = next((i + 1 for i, vals in enumerate(beam) if vals == target), None)
    return {"greedy_extracted": bool(greedy) and greedy[0] == target, "beam_rank": rank}


def _masked(redactor: Any, canary: Canary) -> str:
    """The printable secret: every letter and digit masked; a record span shows one ``***`` per
    column (its values' lengths would tell categories apart)."""
    if canary.fields:
        return "[" + ", ".join("***" for _ in canary.fields) + "]"
    return redactor.redact(canary.secret, "secret")["masked"]


def _occurrences(inputs: ExposureInputs, manifest: Manifest, config: CanaryConfig
                 ) -> tuple[dict[str, Occurrences] | None, int | None]:
    if inputs.scrub is not None:
        scrubbed, occ = ScrubResult.counts_from_dict(inputs.scrub)
        return occ, scrubbed
    if inputs.synthetic is not None:
        secrets = {c.id: c.secret for c in manifest.canaries}
        return count_occurrences(secrets, list(inputs.synthetic), partial_fraction=config.partial_fraction,
                                 fields={c.id: c.field for c in manifest.canaries}), None
    return None, None


def _summary(values: Sequence[float]) -> dict[str, Any]:
    return {"n": len(values), "exposure_mean": float(np.mean(values)) if values else None,
            "exposure_max": float(np.max(values)) if values else None}


def run(inputs: ExposureInputs, config: CanaryConfig) -> dict[str, Any]:
    """The ``exposure.json`` dict (see the module docstring and ``docs/audit-contract.md``)."""
    manifest = inputs.manifest
    scorer = inputs.scorer
    rng = inputs.rng if inputs.rng is not None else np.random.default_rng(0)
    redactor = manifest.redactor()
    audited = manifest.group("schedule") + manifest.group("twin")
    if not audited:
        raise ValueError("the manifest has no scheduled canaries to audit")
    prompts = {c.id: canary_prompt(scorer, c) for c in audited}
    # Canaries whose prefix is the same token sequence share one trie expansion.
    groups: dict[tuple, list[Canary]] = {}
    for canary in audited:
        prompt = prompts[canary.id]
        key = (canary.format, tuple(canary.fields) if canary.fields else canary.field, prompt.lead,
               tuple(prompt.prefix))
        groups.setdefault(key, []).append(canary)
    spaces: dict[str, _Space] = {}
    for spec in dict.fromkeys(c.format for c in audited):
        first = next(c for c in audited if c.format == spec)
        fmt = make_format(spec)
        speed = _measured_speed(scorer, fmt, first, prompts[first.id], rng)
        spaces[spec] = _space(fmt, config, rng, groups=sum(1 for k in groups if k[0] == spec), speed=speed)
    by_id: dict[str, dict[str, Any]] = {}
    done = 0
    for (spec, _, _, _), members in groups.items():
        space = spaces[spec]
        prompt = prompts[members[0].id]
        # The secrets are scored in the same call as their references, so in the exact
        # method each one's score is bit-identical to its own entry of the space.
        logprobs = scorer.continuation_logprobs(
            prompt.prefix, space.ids_for(scorer, members[0], prompt) + [prompts[c.id].secret for c in members])
        scores = -np.asarray(logprobs, dtype=float)
        reference = scores[: len(scores) - len(members)]
        for j, canary in enumerate(members):
            secret_score = float(scores[len(reference) + j])
            row = {"id": canary.id, "group": canary.group, "format": canary.format,
                   "repetitions": canary.repetitions, "inserted": canary.inserted,
                   "secret": _masked(redactor, canary), "hash": redactor.hash(canary.secret),
                   "log_perplexity": secret_score, "max_possible": space.fmt.log2_size}
            row.update(_canary_exposure(space, secret_score, reference, config))
            row.update(_extraction(scorer, canary, prompts[canary.id], config))
            by_id[canary.id] = row
            done += 1
            if inputs.progress is not None:
                inputs.progress(done, len(audited))
    rows = [by_id[c.id] for c in audited]

    occ, scrubbed = _occurrences(inputs, manifest, config)
    for row in rows:
        o = occ.get(row["id"]) if occ is not None else None
        row["synthetic_full"] = o.full if o is not None else None
        row["synthetic_partial"] = o.partial if o is not None else None

    inserted = [r for r in rows if r["inserted"]]
    twins = [r for r in rows if not r["inserted"]]
    by_repetition = []
    memorization_rows = []
    min_detected = None
    for fmt_spec in sorted({r["format"] for r in rows}):
        fmt_rows = [r for r in inserted if r["format"] == fmt_spec]
        fmt_twins = [r["exposure"] for r in twins if r["format"] == fmt_spec]
        groups: dict[int, list[float]] = {}
        for r in fmt_rows:
            groups.setdefault(r["repetitions"], []).append(r["exposure"])
        method = next(r["method"] for r in rows if r["format"] == fmt_spec)
        max_possible = next(r["max_possible"] for r in rows if r["format"] == fmt_spec)
        for reps in sorted(groups):
            by_repetition.append({"repetitions": reps, "format": fmt_spec, "method": method,
                                  "max_possible": max_possible, **_summary(groups[reps]),
                                  "held_out": _summary(fmt_twins)})
        if groups and fmt_twins:
            test = memorization_test(groups, fmt_twins, alpha=config.alpha)
            memorization_rows += [dict(r, format=fmt_spec) for r in test["by_repetition"]]
            found = test["min_detected_repetitions"]
            if found is not None:
                min_detected = found if min_detected is None else min(min_detected, found)

    def total(key: str, rows_: list[dict]) -> int | None:
        return sum(r[key] for r in rows_) if occ is not None else None

    return {
        "max_exposure": max((r["exposure"] for r in inserted), default=None),
        # The per-record guarantee speaks about records present once; repeated
        # canaries are groups (covered at k eps), shown in by_repetition.
        "max_exposure_single_copy": max((r["exposure"] for r in inserted if r["repetitions"] == 1), default=None),
        "log2_space": max(s.fmt.log2_size for s in spaces.values()),
        "by_repetition": by_repetition,
        "memorization": {"by_repetition": memorization_rows, "min_detected_repetitions": min_detected,
                         "alpha": config.alpha, "test": "one-sided Mann-Whitney U, inserted vs pooled twins"},
        "extraction": {
            "greedy_extracted": sum(r["greedy_extracted"] for r in inserted),
            "beam_extracted": sum(r["beam_rank"] is not None for r in inserted),
            "beam_width": config.beam_width,
            "n_canaries": len(inserted),
            "twins_greedy_extracted": sum(r["greedy_extracted"] for r in twins),
            "synthetic_full_occurrences": total("synthetic_full", inserted),
            "synthetic_partial_occurrences": total("synthetic_partial", inserted),
            "twins_synthetic_full_occurrences": total("synthetic_full", twins),
            "scrubbed_rows": scrubbed,
        },
        "methods": {spec: {"method": s.method, "n_references": s.n, "log2_space": s.fmt.log2_size,
                           "prefixes": s.cost.groups, "budget_s": s.cost.budget_s,
                           "estimated_s": round(s.cost.estimated_s, 3),
                           "exact_estimated_s": round(s.cost.exact_estimated_s, 3)}
                    for spec, s in spaces.items()},
        "canaries": rows,
    }

