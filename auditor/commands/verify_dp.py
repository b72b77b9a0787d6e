"""`auditor verify-dp [RUN]`: a white-box test that DP-SGD delivers the epsilon it claims."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.errors import UserError


@click.command("verify-dp")
@click.argument("run", required=False, type=click.Path(file_okay=False))
@click.option("--model", default=None, help="Size preset (tiny | small | medium | base | large). Default: the run's, else small.")
@click.option("--epsilon", type=float, default=None, help="Claimed epsilon (noise found by the accountant), without RUN.")
@click.option("--noise-multiplier", type=float, default=None, help="Claimed noise multiplier instead of --epsilon.")
@click.option("--delta", type=float, default=None, help="Delta of the claim; default min(1e-5, 0.1/n).")
@click.option("--batch-size", type=int, default=128, show_default=True, help="Expected batch size of the claim.")
@click.option("--records", type=int, default=None, help="Training records n of the claim (sample rate = batch / n).")
@click.option("--epochs", type=float, default=None, help="Epochs of the claim (default 20), or give --steps.")
@click.option("--steps", type=int, default=None, help="Steps of the claim.")
@click.option("--max-grad-norm", type=float, default=1.0, show_default=True)
@click.option("--clipping", type=click.Choice(["auto", "bookkeeping", "opacus"]), default=None,
              help="Clipping engine under test. Default: the run's, else auto.")
@click.option("--processes", type=int, default=None, help="CPU processes (gloo) of the run under test. Default: the run's, else 1.")
@click.option("--run-steps", type=int, default=None, help="Steps the check trains (default: the claimed steps, at most 40); "
              "the measured step is composed to the claimed steps.")
@click.option("--stand-in-records", type=int, default=None, help="Public stand-in records to train on (default: n, at "
              "most 1000), at the claimed sample rate.")
@click.option("--canaries", type=int, default=1000, show_default=True, help="Inserted canaries (as many held out).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of the check's model, canaries and sampling.")
@click.option("--out", type=click.Path(file_okay=False), help="Without RUN: write OUT/audit/dp_verify.json.")
@click.option("--quiet", "-q", is_flag=True)
def command(run, model, epsilon, noise_multiplier, delta, batch_size, records, epochs, steps, max_grad_norm, clipping,
            processes, run_steps, stand_in_records, canaries, confidence, seed, out, quiet):
    """Train the real DP-SGD code path with white-box gradient canaries, observe every noisy
    update and bound the epsilon the implementation delivers (95% lower bound and estimate).

    With RUN: the run's recorded settings (sample rate, noise, steps, delta, engine,
    processes, preset); writes RUN/audit/dp_verify.json for the report. Without RUN: the
    claim from the flags. Exit 1 when the lower bound exceeds the claim (a DP bug).
    """
    from auditor.dp import verify as v
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
        claim, recorded = v.claim_from_run(Path(run))
        target = Path(run)
    else:
        if records is None:
            raise UserError("give a RUN directory, or the claim's --records (and --epsilon or --noise-multiplier)")
        if epsilon is None and noise_multiplier is None:
            epsilon = 8.0
        claim = v.claim_from_flags(epsilon=epsilon, noise_multiplier=noise_multiplier, delta=delta,
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
    run_steps = run_steps or min(claim.steps, v.FAST_STEPS)
    if not 1 <= run_steps <= claim.steps:
        raise UserError(f"--run-steps must be in [1, {claim.steps}] (the claimed steps)")
    stand_in = stand_in_records or min(recorded["records"], v.FAST_RECORDS)
    if stand_in < 2 or int(claim.sample_rate * stand_in) < 1:
        raise UserError(f"--stand-in-records {stand_in}: too few for one record per step at sample rate "
                        f"{claim.sample_rate:.4g}")
    trial = v.Trial(model=model, clipping=clipping or recorded["clipping"], processes=processes, records=stand_in,
                    physical_batch_size=recorded["physical_batch_size"], steps=run_steps, lr=recorded["lr"],
                    inserted=canaries, held_out=canaries, seed=seed)
    if not quiet:
        click.echo(f"verify-dp: {model} preset, {trial.clipping} clipping, {processes} process(es), "
                   f"{run_steps} of {claim.steps} steps on {stand_in} stand-in records, "
                   f"sigma {claim.noise_multiplier:.3f}, q {claim.sample_rate:.4g}", err=True)
    result = v.verify(claim, trial, confidence=confidence)
    if "run_epsilon" in recorded:
        result["run_epsilon"] = recorded["run_epsilon"]
    if target is not None:
        path = write_json(target / "audit" / "dp_verify.json", result)
        if not quiet:
            click.echo(f"verify-dp: wrote {path}", err=True)
    click.echo(f"{'!!! ' if result['violation'] else ''}{result['message']} "
               f"[{result['engine']}, {result['processes']} process(es), {result['seconds']:.0f} s]")
    return 1 if result["violation"] else 0
