"""`auditor sweep DATA --out DIR`: train, generate and audit a grid of DP settings; the privacy-utility frontier."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.bounds import AUDIT_CANARIES, DATA, JOBS, NUM_RECORDS, REPETITIONS, SAMPLE, TRAIN, BoundedListType, BoundedType
from auditor.sweep.config import AXES, UTILITIES, SweepConfig, load_yaml, parse_list

_GRID_HELP = "Comma-separated values to sweep"


def _grid_options(f):
    opts = [
        click.option("--epsilon", "grid_epsilon", help=f"{_GRID_HELP}: target ε (noise found by the accountant). Default 8 when no --noise-multiplier grid."),
        click.option("--noise-multiplier", "grid_noise_multiplier", help=f"{_GRID_HELP}: fixed noise multipliers (instead of --epsilon)."),
        click.option("--max-grad-norm", "grid_max_grad_norm", help=f"{_GRID_HELP}: per-example clipping norms C (default 1.0)."),
        click.option("--epochs", "grid_epochs", help=f"{_GRID_HELP}: epochs (default 20)."),
        click.option("--batch-size", "grid_batch_size", help=f"{_GRID_HELP}: expected batch sizes (default 128)."),
        click.option("--lr", "grid_lr", help=f"{_GRID_HELP}: learning rates (default: fitted to the table, docs/defaults.md)."),
        click.option("--model", "grid_model", help=f"{_GRID_HELP}: size presets tiny | small | medium | base (default small)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.command("sweep")
@click.argument("data", type=click.Path(dir_okay=False), required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Sweep directory (re-run to resume).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Sweep YAML (see docs/sweep.md); flags given here win over it.")
@_grid_options
@click.option("--no-dp-baseline", is_flag=True, default=None, help="Add points trained without DP (one per setting of the non-DP axes).")
@click.option("--schema", type=click.Path(dir_okay=False), help="Declared (public) schema YAML.")
@click.option("--seed", type=BoundedType(TRAIN["seed"]), help="Seed shared by every point (split, canary layout, model initialisation); drawn once and saved when omitted.")
@click.option("--delta", type=BoundedType(TRAIN["delta"]), help="Target delta; default min(1e-5, 0.1/n).")
@click.option("--physical-batch-size", type=BoundedType(TRAIN["physical_batch_size"]), help="Examples per forward pass (memory only; default 128).")
@click.option("--holdout", type=BoundedType(DATA["holdout"]), help="Fraction of records held out (default 0.2).")
@click.option("--domains", type=click.Choice(["dp", "data"]), help="Undeclared categorical domains (default dp).")
@click.option("--no-canaries", is_flag=True, default=None, help="Do not plant canaries (no exposure audit).")
@click.option("--canary-repetitions", type=BoundedListType(REPETITIONS), help="Copies per scheduled canary (default 1,2,4,8,16).")
@click.option("--audit-canaries", type=BoundedType(AUDIT_CANARIES), help="Coin-flip canaries for the one-run DP audit (default 300).")
@click.option("--device", help="auto | cpu | cuda (default auto).")
@click.option("--checkpoint-every", type=BoundedType(TRAIN["checkpoint_every"]), help="Steps between checkpoints (default 25).")
@click.option("--num-records", "-n", type=BoundedType(NUM_RECORDS), help="Rows each point generates (default: as many as the input records).")
@click.option("--temperature", type=BoundedType(SAMPLE["temperature"]), help="Sampling temperature (default 1.0).")
@click.option("--top-p", type=BoundedType(SAMPLE["top_p"]), help="Nucleus sampling (default 1.0).")
@click.option("--magnitude-min-p", type=BoundedType(SAMPLE["magnitude_min_p"]), help="Cut of unlikely number magnitudes when sampling (default 0).")
@click.option("--gen-seed", type=BoundedType(SAMPLE["seed"]), help="Seed of the sampler (default 0).")
@click.option("--scrub-pii", type=click.Choice(["replayed"]), help="Drop rows replaying training PII (outside the DP guarantee).")
@click.option("--no-ner", is_flag=True, default=None, help="PII scan with pattern recognizers only.")
@click.option("--policy", help="internal, external, or a policy YAML: name the best setting that passes.")
@click.option("--utility", type=click.Choice(UTILITIES), help="Utility of the frontier and the choice (default tstr).")
@click.option("--jobs", "-j", type=BoundedType(JOBS), help="Points at once (default: one per two cores); each gets cores // jobs threads.")
@click.option("--threads", type=BoundedType(JOBS), help="Torch/OpenMP threads per point (default: cores // jobs; on a busy machine 1 can be much faster).")
@click.option("--quiet", "-q", is_flag=True)
def command(data, out, config_file, quiet, **flags):
    """Run DATA through train -> generate -> audits -> report for every setting of a grid, in DIR.

    Every point shares the data split, canary layout and seed. Re-running the same
    command resumes: finished points are kept, interrupted ones continue, failed
    ones are retried. Writes DIR/sweep.json and DIR/sweep.html (table, plots,
    Pareto frontiers; with --policy, the best passing setting). Exit 1 when a
    policy is given and no point passes it.
    """
    from auditor.overwrite import refuse_overwriting_inputs
    from auditor.policies import policy_file
    from auditor.sweep.layout import SweepDir
    from auditor.sweep.runner import run_sweep

    config = SweepConfig.from_dict(_overlay(load_yaml(config_file) if config_file else {}, data, flags))
    refuse_overwriting_inputs({"DATA": config.data.path, "--schema": config.data.schema, "--config": config_file,
                               "--policy": policy_file(config.policy)}, {"--out": SweepDir(Path(out)).tool_paths()})
    outcome = run_sweep(config, out, quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code


def _overlay(base: dict, data: str | None, flags: dict) -> dict:
    """The YAML mapping with every flag given on the command line put in."""
    d = dict(base)
    source = d.get("data")
    source = dict(source) if isinstance(source, dict) else ({"path": source} if source else {})
    if data is not None:
        source["path"] = data
    for key in ("holdout", "domains"):
        if flags[key] is not None:
            source[key] = flags[key]
    if flags["schema"] is not None:
        d["schema"] = flags["schema"]
    d["data"] = source
    grid = dict(d.get("grid") or {})
    for axis in AXES:
        if flags[f"grid_{axis}"] is not None:
            grid[axis] = parse_list(flags[f"grid_{axis}"], axis)
    d["grid"] = grid
    train = dict(d.get("train") or {})
    for key in ("seed", "delta", "physical_batch_size", "device", "checkpoint_every"):
        if flags[key] is not None:
            train[key] = flags[key]
    d["train"] = train
    canaries = dict(d.get("canaries") or {})
    if flags["no_canaries"]:
        canaries["enabled"] = False
    if flags["canary_repetitions"] is not None:
        canaries["repetitions"] = list(flags["canary_repetitions"])
    if flags["audit_canaries"] is not None:
        canaries["audit_canaries"] = flags["audit_canaries"]
    d["canaries"] = canaries
    generate = dict(d.get("generate") or {})
    for flag, key in (("num_records", "num_records"), ("temperature", "temperature"), ("top_p", "top_p"),
                      ("magnitude_min_p", "magnitude_min_p"),
                      ("gen_seed", "seed"), ("scrub_pii", "scrub_pii")):
        if flags[flag] is not None:
            generate[key] = flags[flag]
    d["generate"] = generate
    if flags["no_ner"]:
        d["audit"] = {**(d.get("audit") or {}), "pii_ner": False}
    if flags["no_dp_baseline"]:
        d["no_dp_baseline"] = True
    for key in ("policy", "utility", "jobs", "threads"):
        if flags[key] is not None:
            d[key] = flags[key]
    return d
