"""Benchmark: the exposure audit under the compute-budget rule vs the old rule (exact whenever |R| <= 10^6).

Two settings, untrained weights (speed does not depend on them):

1. ``digits:d`` canaries (d = 4, 5, 6: spaces 10^4, 10^5, 10^6) in the demo table's
   ``note`` column after the default template ``{name} PIN {secret}``: every canary
   has its own prefix (its fake name and filler row), as in a run without a schema.
   Old: the audit with an unlimited budget (exact enumeration per canary, the
   previous behaviour). New: the audit with ``canaries.audit_budget_s`` (default 120 s).
2. Record-span canaries in a numeric/categorical table whose span starts at the
   first column, so every canary's prefix is ``[BOS]``: old = one exact
   enumeration per canary (no sharing), new = the audit (one trie for all).

Prints, per setting, wall seconds of old and new, their ratio, the method and
references the rule chose, and its estimate of the seconds spent scoring.

    python benchmarks/exposure_cost.py --preset tiny --canaries 8 --threads 1
"""

from __future__ import annotations

import argparse
import csv
import time
from importlib import resources

import numpy as np
import torch

from auditor.codec import RowCodec
from auditor.model import build_model
from auditor.schema import Column, Schema
from auditor.scoring import ModelScorer
from canaries.config import CanaryConfig
from canaries.exposure_audit import ExposureInputs, run
from canaries.formats import make_format
from canaries.plant import plant
from canaries.prompts import canary_prompt, space_ids


class _Seconds(float):
    """Wall seconds, carrying the CPU seconds of this process (robust on a shared machine)."""

    cpu: float


def _timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall = _Seconds(time.perf_counter() - t0)
    wall.cpu = time.process_time() - c0
    return out, wall


def _s(t: _Seconds) -> str:
    return f"{t:.1f} s ({t.cpu:.1f} s CPU)"


def _canary_config(n_canaries: int, **kw) -> CanaryConfig:
    # n_canaries audited = schedule + twins: repetitions (1, 2) x per_repetition x (1 + 1 twin)
    return CanaryConfig(repetitions=(1, 2), per_repetition=max(1, n_canaries // 4), twins=1, audit_canaries=0,
                        beam_width=1, **kw)


def _describe(out: dict) -> str:
    m = next(iter(out["methods"].values()))
    return (f"{m['method']} n={m['n_references']:,} prefixes={m['prefixes']} "
            f"estimate {m['estimated_s']:.1f} s (exact {m['exact_estimated_s']:.1f} s)")


def digits_setting(scorer: ModelScorer, codec: RowCodec, rows: list[dict], digits: int, n_canaries: int,
                   budget: float) -> None:
    cfg_new = _canary_config(n_canaries, format=f"digits:{digits}", audit_budget_s=budget)
    cfg_old = _canary_config(n_canaries, format=f"digits:{digits}", audit_budget_s=1e12)
    _, manifest = plant(rows, codec.schema, config=cfg_new, rng=np.random.default_rng(0),
                        secret_rng=np.random.default_rng(1), encoder=codec)
    new, t_new = _timed(lambda: run(ExposureInputs(scorer=scorer, manifest=manifest), cfg_new))
    old, t_old = _timed(lambda: run(ExposureInputs(scorer=scorer, manifest=manifest), cfg_old))
    n = len(new["canaries"])
    print(f"10^{digits} digits, {n} canaries: old {_s(t_old)} [{_describe(old)}]; new {_s(t_new)} "
          f"[{_describe(new)}]; old/new {t_old / t_new:.1f}x wall, {t_old.cpu / t_new.cpu:.1f}x CPU; "
          f"old at 40 canaries ~{t_old.cpu * 40 / n:.0f} s CPU")


def record_setting(scorer_of, n_canaries: int, budget: float) -> None:
    # flag x grade x amount = 2 x 5 x 900; a zone column of k values multiplies it
    for k in (1, 10, 100):  # |R| = 9,000, 90,000, 900,000
        columns = [Column("flag", "categorical", categories=["no", "yes"]),
                   Column("grade", "categorical", categories=list("ABCDE")),
                   Column("amount", "numeric", sig_digits=3, minimum=0, magnitudes=["1e+2"])]
        if k > 1:
            columns.insert(2, Column("zone", "categorical", categories=[f"z{i}" for i in range(k)]))
        schema = Schema(columns=columns)
        codec = RowCodec(schema)
        scorer = scorer_of(codec)
        spec = make_format(_span_spec(schema)).spec
        cfg = _canary_config(n_canaries, format=spec, audit_budget_s=budget)
        rows = [{c.name: (c.categories[0] if c.categories else "150") for c in schema.columns} for _ in range(20)]
        _, manifest = plant(rows, schema, config=cfg, rng=np.random.default_rng(0),
                            secret_rng=np.random.default_rng(1), encoder=codec)
        audited = manifest.group("schedule") + manifest.group("twin")
        fmt = make_format(spec)

        def old_path():
            prompt = canary_prompt(scorer, audited[0])
            space = space_ids(scorer, audited[0], prompt, fmt)
            for c in audited:
                p = canary_prompt(scorer, c)
                scorer.continuation_logprobs(p.prefix, space + [p.secret])

        _, t_old = _timed(old_path)
        new, t_new = _timed(lambda: run(ExposureInputs(scorer=scorer, manifest=manifest), cfg))
        print(f"record span |R| = {fmt.size:,}, {len(audited)} canaries on one prefix: old {_s(t_old)} "
              f"[exact per canary]; new {_s(t_new)} [{_describe(new)}]; old/new {t_old / t_new:.1f}x wall, "
              f"{t_old.cpu / t_new.cpu:.1f}x CPU")


def _span_spec(schema: Schema) -> str:
    from canaries.spans import record_part
    from canaries.formats import RecordFormat

    return RecordFormat([record_part(c) for c in schema.columns]).spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--canaries", type=int, default=8, help="audited canaries (schedule + twins); a run has 40")
    ap.add_argument("--digits", default="4,5,6", help="digits:d spaces of setting 1")
    ap.add_argument("--budget", type=float, default=CanaryConfig().audit_budget_s)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--skip-records", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    def scorer_of(codec: RowCodec) -> ModelScorer:
        return ModelScorer(build_model(args.preset, codec.vocab_size, seed=0), codec, device="cpu")

    data = resources.files("auditor") / "data"
    codec = RowCodec(Schema.load(str(data / "demo_schema.yaml")))
    with (data / "demo.csv").open(encoding="utf-8") as fh:
        rows = [dict(r) for _, r in zip(range(50), csv.DictReader(fh))]
    scorer = scorer_of(codec)
    print(f"preset {args.preset}, {torch.get_num_threads()} CPU thread(s), budget {args.budget:.0f} s")
    for d in (int(x) for x in args.digits.split(",") if x):
        digits_setting(scorer, codec, rows, d, args.canaries, args.budget)
    if not args.skip_records:
        record_setting(scorer_of, args.canaries, args.budget)


if __name__ == "__main__":
    main()
