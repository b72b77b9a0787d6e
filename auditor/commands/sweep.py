"""`auditor sweep DATA --out DIR`: train, generate and audit a grid of DP settings; the privacy-utility frontier."""

from __future__ import annotations

from pathlib import Path

import click

from auditor.bounds import JOBS, BoundedType
from auditor.commands._options import (AUDIT_FLAGS, CONFIG_FLAG, FLAGS, SAMPLE_FLAGS, TRAIN_FLAGS, click_option,
                                       given, merged, options, overlay)
from auditor.config import load_yaml
from auditor.sweep.config import AXES, UTILITIES, SweepConfig, parse_list

# The settings a point sets itself: its grid axes, and DP or not (the baseline).
_POINT_FLAGS = {*AXES, "no_dp", "lora", "lora_rank"}
_SHARED_FLAGS = tuple(n for n in (*TRAIN_FLAGS, *SAMPLE_FLAGS, *AUDIT_FLAGS) if n not in _POINT_FLAGS)


def _grid_options(f):
    """Each axis takes the flag of its setting, as comma-separated values."""
    for axis in reversed(list(AXES)):
        flag = FLAGS[axis]
        f = click_option(flag, name=f"grid_{axis}", type=str, metavar="V1,V2,...",
                         help=f"Comma-separated values to sweep: {flag.help[0].lower()}{flag.help[1:]}")(f)
    return f


@click.command("sweep")
@click.argument("data", type=click.Path(dir_okay=False), required=False)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Sweep directory (re-run to resume).")
@click.option("--config", CONFIG_FLAG, type=click.Path(dir_okay=False), metavar="FILE",
              help="Sweep YAML (see docs/sweep.md); flags given here win over it.")
@_grid_options
@click.option("--no-dp-baseline", is_flag=True, help="Add points trained without DP (one per setting of the non-DP axes).")
@options(*_SHARED_FLAGS, defaults={"train.seed": "drawn once, saved in DIR/sweep_config.json"})
@click.option("--utility", type=click.Choice(UTILITIES), help="Utility of the frontier and the choice  [default: tstr]")
@click.option("--jobs", "-j", type=BoundedType(JOBS), help="Points at once (default: one per two cores); each gets cores // jobs threads.")
@click.option("--threads", type=BoundedType(JOBS), help="Torch/OpenMP threads per point (default: cores // jobs; on a busy machine 1 can be much faster).")
@click.option("--quiet", "-q", is_flag=True)
@click.pass_context
def command(ctx, data, out, quiet, **values):
    """Run DATA through train -> generate -> audits -> report for every setting of a grid, in DIR.

    Every point shares the data split, canary layout and seed. Re-running the same
    command resumes: finished points are kept, interrupted ones continue, failed
    ones are retried. Writes DIR/sweep.json and DIR/sweep.html (table, plots,
    Pareto frontiers; with --policy, the best passing setting). Exit 1 when a
    policy is given and no point passes it.
    """
    config = sweep_config(ctx, data, values)
    # Deferred on purpose: the API imports torch, transformers and Opacus (seconds), which --help never needs.
    from auditor import api
    from auditor.overwrite import refuse_overwriting_inputs
    from auditor.policies import policy_file
    from auditor.sweep.layout import SweepDir

    refuse_overwriting_inputs({"DATA": config.data.path, "--schema": config.data.schema,
                               "--config": values[CONFIG_FLAG], "--policy": policy_file(config.policy.name)},
                              {"--out": SweepDir(Path(out)).tool_paths()})
    outcome = api.sweep(config, out, quiet=quiet)
    click.echo(outcome.summary())
    return outcome.exit_code


def sweep_config(ctx: click.Context, data: str | None, values: dict) -> SweepConfig:
    """The sweep's config: its YAML file (``--config``), then every flag the user gave, then DATA."""
    mapping = load_yaml(values[CONFIG_FLAG]) if values.get(CONFIG_FLAG) else {}
    own = {k: mapping.pop(k) for k in ("grid", "no_dp_baseline", "utility", "jobs", "threads") if k in mapping}
    run = overlay(ctx, merged({}, mapping), values)
    if data is not None:
        run["data"]["path"] = data
    grid = dict(own.get("grid") or {})
    for axis in AXES:
        if given(ctx, f"grid_{axis}"):
            grid[axis] = parse_list(values[f"grid_{axis}"], axis)
    own["grid"] = grid
    if given(ctx, "no_dp_baseline"):
        own["no_dp_baseline"] = values["no_dp_baseline"]
    for key in ("utility", "jobs", "threads"):
        if given(ctx, key):
            own[key] = values[key]
    return SweepConfig.from_dict({**run, **own})
