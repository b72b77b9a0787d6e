"""`auditor verify-dp [RUN]`: a white-box test that DP-SGD delivers the epsilon it claims."""

from __future__ import annotations


import click

from auditor.bounds import NUM_RECORDS, TRAIN, BoundedType



@click.command("verify-dp")
@click.argument("run", required=False, type=click.Path(file_okay=False))
@click.option("--model", default=None, help="Size preset (tiny | small | medium | base | large). Default: the run's, else small.")
@click.option("--epsilon", type=BoundedType(TRAIN["epsilon"]), default=None, help="Claimed epsilon (noise found by the accountant), without RUN.")
@click.option("--noise-multiplier", type=BoundedType(TRAIN["noise_multiplier"]), default=None, help="Claimed noise multiplier instead of --epsilon.")
@click.option("--delta", type=BoundedType(TRAIN["delta"]), default=None, help="Delta of the claim; default min(1e-5, 0.1/n).")
@click.option("--batch-size", type=BoundedType(TRAIN["batch_size"]), default=128, show_default=True, help="Expected batch size of the claim.")
@click.option("--records", type=BoundedType(NUM_RECORDS), default=None, help="Training records n of the claim (sample rate = batch / n).")
@click.option("--epochs", type=BoundedType(TRAIN["epochs"]), default=None, help="Epochs of the claim (default 20), or give --steps.")
@click.option("--steps", type=int, default=None, help="Steps of the claim.")
@click.option("--max-grad-norm", type=BoundedType(TRAIN["max_grad_norm"]), default=1.0, show_default=True)
@click.option("--clipping", type=click.Choice(["auto", "bookkeeping", "opacus"]), default=None,
              help="Clipping engine under test. Default: the run's, else auto.")
@click.option("--processes", type=int, default=None, help="CPU processes (gloo) of the run under test. Default: the run's, else 1.")
@click.option("--run-steps", type=int, default=None, help="Steps the check trains (default: the claimed steps, at most 40); "
              "the measured step is composed to the claimed steps.")
@click.option("--stand-in-records", type=int, default=None, help="Public stand-in records to train on (default: n, at "
              "most 1000), at the claimed sample rate.")
@click.option("--canaries", type=int, default=1000, show_default=True, help="Inserted canaries (as many held out).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--seed", type=BoundedType(TRAIN["seed"]), default=None, help="Seed of the check's model, canaries and sampling.")
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
    # Deferred on purpose: the check imports torch and the model code (seconds), which --help never needs.
    from auditor import api

    result = api.verify_dp(run, model=model, epsilon=epsilon, noise_multiplier=noise_multiplier, delta=delta,
                           batch_size=batch_size, records=records, epochs=epochs, steps=steps,
                           max_grad_norm=max_grad_norm, clipping=clipping, processes=processes, run_steps=run_steps,
                           stand_in_records=stand_in_records, canaries=canaries, confidence=confidence, seed=seed,
                           out=out, say=None if quiet else (lambda line: click.echo(line, err=True)))
    click.echo(f"{'!!! ' if result['violation'] else ''}{result['message']} "
               f"[{result['engine']}, {result['processes']} process(es), {result['seconds']:.0f} s]")
    return 1 if result["violation"] else 0
