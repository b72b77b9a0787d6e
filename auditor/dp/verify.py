"""``auditor verify-dp``: does our DP-SGD deliver the epsilon it claims? (white-box)

Runs the real training code (:func:`auditor.train.fit`: model preset, clipping engine,
noise multiplier, sampling rate, processes) with :class:`GradientCanaries` among the
records, reads the privatised gradient after every step, estimates the per-step
mechanism along the canaries (:func:`attacks.whitebox.estimate_step`) and composes it
over the claimed number of steps with the PRV accountant: a point estimate and a lower
confidence bound of the epsilon the implementation delivers. A lower bound above the
claimed epsilon is a bug (design rule 5). Method and its assumptions: docs/verify-dp.md.

The records are a public stand-in (the bundled fake demo table, cycled to the size
asked): the check is about the mechanism, and a second DP run on the private records
would spend their privacy budget again.
"""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attacks.whitebox import estimate_step
from auditor.config import DataConfig, TrainConfig
from auditor.dp.accounting import epsilon_of
from auditor.errors import UserError
from reports.summary import fmt_epsilon

SIGMA_FLOOR = 0.25
"""Smallest noise multiplier handed to the accountant (PRV fails near 0): beyond it the
bound is reported as "at least"."""

ASSUMPTIONS = [
    "each step is a Poisson-subsampled Gaussian mechanism along the canary directions, steps independent",
    "the per-step mechanism is the same at every step, so the steps run compose to the claimed steps",
    "the canaries' gradients are clipped, noised and reduced like records' (they go through the same engine)",
]


@dataclass
class Claim:
    """The mechanism a run claims: what the accountant was told."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    max_grad_norm: float = 1.0

    @property
    def epsilon(self) -> float:
        return epsilon_of([(self.noise_multiplier, self.sample_rate, self.steps)], delta=self.delta)


@dataclass
class Trial:
    """How the verification run trains: the code path under test and its size."""

    model: str = "tiny"
    clipping: str = "auto"
    processes: int = 1
    records: int = 2000
    physical_batch_size: int = 128
    steps: int = 50
    lr: float = 3e-3
    inserted: int = 1000
    held_out: int = 1000
    seed: int | None = None

    def batch_size(self, claim: Claim) -> int:
        """Records per step at a rate never above the claimed one (so rounding cannot raise the bound)."""
        return max(1, math.floor(claim.sample_rate * self.records))


FAST_STEPS = 40
FAST_RECORDS = 1000
"""Defaults of the verification run: at most this many steps and stand-in records (the
sampling rate and noise are the claimed ones, and the estimate is composed to the
claimed steps), so that the demo's settings verify in about a minute on 2 cores."""


def claim_from_flags(*, epsilon: float | None, noise_multiplier: float | None, delta: float | None, batch_size: int,
                     records: int, epochs: float | None, steps: int | None, max_grad_norm: float) -> Claim:
    """The claim of a training configuration given as flags (``auditor train``'s meaning,
    checked by ``TrainConfig.validate`` and ``check_records``)."""
    from auditor.dp.accounting import default_delta, noise_for_epsilon

    if epochs is not None and steps is not None:
        raise UserError("give --epochs or --steps, not both")
    if steps is not None and steps < 1:
        raise UserError("--steps must be >= 1")
    if records < 2:
        raise UserError("--records must be >= 2")
    config = TrainConfig(model="tiny", epsilon=epsilon, noise_multiplier=noise_multiplier, delta=delta,
                         batch_size=batch_size, epochs=20.0 if epochs is None else epochs, max_grad_norm=max_grad_norm)
    config.validate()
    config.check_records(records)
    delta = default_delta(records) if delta is None else delta
    q = batch_size / records
    steps = steps if steps is not None else max(1, math.ceil((20.0 if epochs is None else epochs) / q))
    sigma = noise_multiplier or noise_for_epsilon(target_epsilon=epsilon, delta=delta, sample_rate=q, steps=steps)
    return Claim(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta, max_grad_norm=max_grad_norm)


def claim_from_run(root: Path) -> tuple[Claim, dict]:
    """The DP-SGD claim recorded by a trained run, and its training settings
    (``model``, ``clipping``, ``processes``, ``physical_batch_size``, ``lr``, ``records``)."""
    from auditor.model import PRESETS
    from auditor.rundir import RunDir, read_json

    run = RunDir(Path(root))
    run.require_trained()
    privacy = read_json(run.privacy)
    if not privacy.get("dp"):
        raise UserError(f"{root}: trained without DP: there is no epsilon to verify")
    train = read_json(run.run_json)["config"]["train"]
    if train["model"] not in PRESETS:
        raise UserError(f"{root}: verify-dp runs size presets ({', '.join(PRESETS)}), not the pretrained "
                        f"model {train['model']!r}")
    claim = Claim(noise_multiplier=privacy["noise_multiplier"], sample_rate=privacy["sample_rate"],
                  steps=privacy["steps"], delta=privacy.get("delta_accountant", privacy["delta"]),
                  max_grad_norm=privacy["max_grad_norm"])
    settings = {"model": train["model"], "clipping": "opacus" if privacy.get("clipping") == "opacus-hooks" else "bookkeeping",
                "processes": int(privacy.get("world_size", 1)), "physical_batch_size": train["physical_batch_size"],
                "lr": train["lr"], "records": privacy["n_records"], "run_epsilon": privacy["epsilon"]}
    return claim, settings


def stand_in_sequences(records: int):
    """``records`` rows of the bundled fake demo table (cycled), encoded, and the codec."""
    from auditor.codec import RowCodec
    from auditor.data import DEMO_CSV, DEMO_SCHEMA
    from auditor.loading import load_dataset, records_of, resolve_schema
    from auditor.pipeline import _fill_domains

    dataset = load_dataset(DEMO_CSV)
    schema, _ = resolve_schema(dataset, str(DEMO_SCHEMA))
    _fill_domains(schema, dataset.frame, DataConfig(domains="data"), None, np.random.default_rng(0))
    codec = RowCodec(schema)
    encoded = [codec.encode(r) for r in records_of(dataset.frame.head(records), schema)]
    return [encoded[i % len(encoded)] for i in range(records)], codec


def observe(claim: Claim, trial: Trial) -> dict:
    """Train once with gradient canaries in this process (or as one rank of ``torchrun``)."""
    from auditor.dp.gradient_canaries import GradientCanaries
    from auditor.dp.ledger import PrivacyLedger
    from auditor.train import fit

    sequences, codec = stand_in_sequences(trial.records)
    batch = trial.batch_size(claim)
    cfg = TrainConfig(model=trial.model, dp=True, epsilon=None, noise_multiplier=claim.noise_multiplier,
                      max_grad_norm=claim.max_grad_norm, epochs=(trial.steps - 0.5) * batch / trial.records,
                      batch_size=batch, physical_batch_size=trial.physical_batch_size, lr=trial.lr,
                      clipping=trial.clipping, seed=trial.seed, checkpoint_every=10**9)
    canaries = GradientCanaries(inserted=trial.inserted, held_out=trial.held_out, seed=cfg.seed or 0)
    result = fit(sequences, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id, config=cfg,
                 ledger=PrivacyLedger.for_training(cfg, delta=claim.delta), max_length=codec.max_length,
                 gradient_canaries=canaries)
    obs = canaries.observations()
    return {**obs, "engine": result.engine["clipping"], "processes": result.engine["world_size"],
            "sample_rate_run": batch / trial.records, "steps_run": len(obs["included"])}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def observe_distributed(claim: Claim, trial: Trial) -> dict:
    """:func:`observe` under ``torchrun`` with ``trial.processes`` CPU processes (gloo)."""
    with tempfile.TemporaryDirectory(prefix="verify-dp-") as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "observations.npz"
        spec.write_text(json.dumps({"claim": asdict(claim), "trial": asdict(trial)}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(trial.processes),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "auditor.dp.verify", str(spec), str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the {trial.processes}-process verification run failed: {done.stderr[-1500:]}")
        with np.load(out, allow_pickle=False) as data:
            obs = {k: data[k] for k in data.files}
    return {**obs, "engine": str(obs["engine"]), "processes": int(obs["processes"]),
            "sample_rate_run": float(obs["sample_rate_run"]), "steps_run": int(obs["steps_run"])}


def _epsilon(mu: float, q: float, claim: Claim) -> tuple[float, bool]:
    """epsilon of ``claim.steps`` steps of a ``(1/mu, q)`` subsampled Gaussian; True if the
    noise multiplier was floored (the value is then a lower bound of the estimate)."""
    if mu <= 0 or q <= 0:
        return 0.0, False
    sigma = 1.0 / mu
    floored = sigma < SIGMA_FLOOR
    return epsilon_of([(max(sigma, SIGMA_FLOOR), min(q, 1.0), claim.steps)], delta=claim.delta), floored


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def verify(claim: Claim, trial: Trial, *, confidence: float = 0.95) -> dict:
    """Run the check; the record written to ``audit/dp_verify.json``."""
    t0 = time.perf_counter()
    obs = observe_distributed(claim, trial) if trial.processes > 1 else observe(claim, trial)
    included = obs["included"]
    est = estimate_step(included=obs["inserted"][included], held_out=obs["held_out"], hits=int(included.sum()),
                        trials=included.size, alpha=1.0 - confidence)
    eps_hat, floored_hat = _epsilon(est.mu, est.sample_rate, claim)
    eps_lo, floored_lo = _epsilon(est.mu_lower, est.sample_rate_lower, claim)
    claimed = claim.epsilon
    violation = eps_lo > claimed
    steps_note = ("" if obs["steps_run"] == claim.steps else
                  f"; ran {obs['steps_run']} of the claimed {claim.steps} steps, the estimate is composed to {claim.steps}")
    message = (f"VIOLATION: the DP-SGD implementation delivers epsilon >= {fmt_epsilon(eps_lo)} at {confidence:.0%} "
               f"confidence, above the claimed {fmt_epsilon(claimed)}: a bug in sampling, clipping or noise"
               if violation else
               f"passed: epsilon lower bound {fmt_epsilon(eps_lo)} <= claimed {fmt_epsilon(claimed)} "
               f"(estimate {fmt_epsilon(eps_hat)})")
    return {
        "method": "white-box gradient canaries: per-step Gaussian-DP fit (mu, sample rate) with "
                  "lower confidence bounds, composed by the PRV accountant",
        "claimed_epsilon": claimed,
        "delta": claim.delta,
        "epsilon_lower_bound": eps_lo,
        "epsilon_estimate": eps_hat,
        "lower_bound_is_at_least": floored_lo,
        "confidence": confidence,
        "violation": violation,
        "message": message + steps_note,
        "canaries": {"inserted": trial.inserted, "held_out": trial.held_out, "observations_included": est.n_included,
                     "observations_held_out": est.n_held_out},
        "steps": {"claimed": claim.steps, "run": obs["steps_run"]},
        "sample_rate": {"claimed": claim.sample_rate, "run": obs["sample_rate_run"], "measured": est.sample_rate,
                        "lower": est.sample_rate_lower},
        "noise_multiplier": {"claimed": claim.noise_multiplier,
                             "measured": est.noise_sd / est.shift if est.shift > 0 else None},
        # JSON has no infinity (docs/audit-contract.md): a noiseless step has mu null.
        "mu": {"claimed": 1.0 / claim.noise_multiplier, "estimate": _finite(est.mu), "lower": _finite(est.mu_lower)},
        "clipped_shift": est.shift,
        "engine": obs["engine"],
        "processes": obs["processes"],
        "model": trial.model,
        "data": f"public stand-in: the bundled fake demo table, {trial.records} rows",
        "assumptions": ASSUMPTIONS,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _worker(spec_path: str, out_path: str) -> None:
    from auditor.train import distributed_context

    spec = json.loads(Path(spec_path).read_text())
    obs = observe(Claim(**spec["claim"]), Trial(**spec["trial"]))
    if distributed_context()[0] == 0:
        np.savez(out_path, **obs)


if __name__ == "__main__":
    _worker(*sys.argv[1:3])


def verify_dp(run=None, *, model=None, epsilon=None, noise_multiplier=None, delta=None, batch_size=128, records=None,
              epochs=None, steps=None, max_grad_norm=1.0, clipping=None, processes=None, run_steps=None,
              stand_in_records=None, canaries=1000, confidence=0.95, seed=None, out=None,
              say: Callable[[str], None] | None = None) -> dict:
    """``auditor verify-dp``: the claim of a run directory (``run``) or of the flags, checked by :func:`verify`.

    With ``run`` the result goes to ``RUN/audit/dp_verify.json``; without, to ``OUT/audit/dp_verify.json``
    when ``out`` is given. ``say`` receives the progress lines. Raises ``UserError`` on a bad claim or trial.
    """
    # Deferred on purpose: the presets and the run-dir writer import torch and pandas.
    from auditor.model import PRESETS
    from auditor.rundir import write_json


    if not 0.5 <= confidence < 1:
        raise UserError("--confidence must be in [0.5, 1)")
    if canaries < 10:
        raise UserError("--canaries must be >= 10")
    if model is not None and model not in PRESETS:
        raise UserError(f"--model {model!r}: verify-dp runs size presets ({', '.join(PRESETS)})")
    if run:
        if epsilon is not None or noise_multiplier is not None or records is not None or steps is not None \
                or epochs is not None or delta is not None:
            raise UserError("with RUN the claim is the run's: drop --epsilon/--noise-multiplier/--delta/--records/"
                            "--epochs/--steps")
        if out:
            raise UserError("with RUN the result goes to RUN/audit/dp_verify.json: drop --out")
        claim, recorded = claim_from_run(Path(run))
        target = Path(run)
    else:
        if records is None:
            raise UserError("give a RUN directory, or the claim's --records (and --epsilon or --noise-multiplier)")
        if epsilon is None and noise_multiplier is None:
            epsilon = 8.0
        claim = claim_from_flags(epsilon=epsilon, noise_multiplier=noise_multiplier, delta=delta,
                                   batch_size=batch_size, records=records, epochs=epochs, steps=steps,
                                   max_grad_norm=max_grad_norm)
        recorded = {"model": "small", "clipping": "auto", "processes": 1, "physical_batch_size": 128, "lr": 3e-3,
                    "records": records}
        target = Path(out) if out else None
    model = model or recorded["model"]
    if model not in PRESETS:
        raise UserError(f"--model {model!r}: verify-dp runs size presets ({', '.join(PRESETS)})")
    processes = processes or recorded["processes"]
    if not 1 <= processes <= 16:
        raise UserError("--processes must be in [1, 16]")
    if (processes > 1) and (clipping or recorded["clipping"]) == "opacus":
        raise UserError("several processes need the book-keeping engine (--clipping auto or bookkeeping)")
    run_steps = run_steps or min(claim.steps, FAST_STEPS)
    if not 1 <= run_steps <= claim.steps:
        raise UserError(f"--run-steps must be in [1, {claim.steps}] (the claimed steps)")
    stand_in = stand_in_records or min(recorded["records"], FAST_RECORDS)
    if stand_in < 2 or int(claim.sample_rate * stand_in) < 1:
        raise UserError(f"--stand-in-records {stand_in}: too few for one record per step at sample rate "
                        f"{claim.sample_rate:.4g}")
    trial = Trial(model=model, clipping=clipping or recorded["clipping"], processes=processes, records=stand_in,
                    physical_batch_size=recorded["physical_batch_size"], steps=run_steps, lr=recorded["lr"],
                    inserted=canaries, held_out=canaries, seed=seed)
    if say is not None:
        say(f"verify-dp: {model} preset, {trial.clipping} clipping, {processes} process(es), "
                   f"{run_steps} of {claim.steps} steps on {stand_in} stand-in records, "
                   f"sigma {claim.noise_multiplier:.3f}, q {claim.sample_rate:.4g}")
    result = verify(claim, trial, confidence=confidence)
    if "run_epsilon" in recorded:
        result["run_epsilon"] = recorded["run_epsilon"]
    if target is not None:
        path = write_json(target / "audit" / "dp_verify.json", result)
        if say is not None:
            say(f"verify-dp: wrote {path}")
    return result
