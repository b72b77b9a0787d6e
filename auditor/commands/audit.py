"""`auditor audit RUN` (all audits of a run) or `auditor audit --synthetic S --train T --out DIR` (model-free)."""

from __future__ import annotations

import click

from auditor.commands._options import FLAGS, click_option, engine_config
from auditor.config import AuditConfig
from auditor.errors import UserError


#: The audits dp-auditor registers itself, in run order, for the help (the registry itself imports torch;
#: ``tests/test_audit_registry.py`` keeps the two equal). Audits registered by other code run too.
BUILTIN_AUDITS = ("exposure", "mia", "dp_audit", "distance", "pii", "duplicates", "anonymity", "quality")


@click.command("audit")
@click.argument("run", required=False, type=click.Path(file_okay=False))
@click.option("--only", default=None,
              help=f"Comma-separated subset of the registered audits: {', '.join(BUILTIN_AUDITS)} and any "
                   "registered by other code (default: all; an unknown name is refused, with the list).")
@click.option("--synthetic", type=click.Path(dir_okay=False), help="Model-free mode: synthetic data from any generator.")
@click.option("--train", "train_file", type=click.Path(dir_okay=False), help="Model-free mode: the real training data.")
@click.option("--holdout", type=click.Path(dir_okay=False), help="Model-free mode: real records not used for training.")
@click.option("--schema", type=click.Path(dir_okay=False), help="Model-free mode: declared schema YAML.")
@click.option("--out", type=click.Path(file_okay=False), help="Model-free mode: the output directory.")
@click_option(FLAGS["policy"])
@click_option(FLAGS["no_ner"])
@click_option(FLAGS["device"])
@click_option(FLAGS["engine"])
@click_option(FLAGS["address"])
@click_option(FLAGS["workers"])
@click.option("--force", is_flag=True, help="Model-free mode: overwrite --out.")
@click.option("--quiet", "-q", is_flag=True)
def command(run, only, synthetic, train_file, holdout, schema, out, policy, no_ner, device, engine, address, workers,
            force, quiet):
    """Run the audits and write the report.

    With RUN: every audit of a trained run (canary exposure, membership inference,
    DP audit, distance, PII, quality). With --synthetic/--train/--out: the audits
    that need no model, on files produced by any tool.
    """
    from auditor.policies import load_policy

    if policy is not None:
        load_policy(policy)  # a bad policy is bad input: fail before anything is written
    audits = tuple(a.strip() for a in only.split(",")) if only else None
    cfg = AuditConfig(audits=audits, pii_ner=not no_ner)
    cfg.validate()
    engine_cfg = engine_config({"engine": engine, "address": address, "workers": workers})
    model_free = synthetic or train_file or out
    if model_free and (run or not (synthetic and train_file and out)):
        raise UserError("model-free mode needs --synthetic, --train and --out (and no RUN)")
    if not model_free and not run:
        raise UserError("give a RUN directory, or --synthetic/--train/--out for model-free audits")
    # Deferred on purpose: the API imports torch and transformers (seconds), which --help never needs.
    from auditor import api, execution
    from auditor.progress import silence_library_bars

    say = (lambda s: None) if quiet else (lambda s: click.echo(f"audit: {s}", err=True))
    if quiet:
        silence_library_bars()
    with execution.activated(engine_cfg):
        if model_free:
            api.audit_files(synthetic=synthetic, train=train_file, holdout=holdout, out=out, schema=schema,
                            config=cfg, force=force, stage=say)
            target = out
        else:
            api.audit(run, config=cfg, device=device or "auto", stage=say)
            target = run
    outcome = api.report(target, policy=policy)
    if not quiet:
        click.echo(f"report: {outcome.paths['html']} (verdict: {outcome.verdict})")
    return outcome.exit_code
