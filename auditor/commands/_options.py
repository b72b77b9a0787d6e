"""Options and progress display shared by the commands."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import click
from tqdm import tqdm

from auditor.bounds import AUDIT_CANARIES, DATA, NUM_RECORDS, REPETITIONS, SAMPLE, TRAIN, BoundedListType, BoundedType
from auditor.generate import SampleConfig
from auditor.pipeline import DataConfig, RunConfig
from auditor.train import TrainConfig
from canaries.config import CanaryConfig


def train_options(f):
    """The flags of `auditor train` (also used by `run`, `demo`, `sweep`)."""
    opts = [
        click.option("--schema", type=click.Path(dir_okay=False), help="Declared (public) schema YAML. Without it the schema is inferred and reported as outside the DP guarantee."),
        click.option("--model", "model", default="small", show_default=True, help="Size preset (tiny | small | medium | base | large), or a pretrained Hugging Face causal LM: a local directory, or a hub name (downloaded where the hub is reachable)."),
        click.option("--lora", is_flag=True, help="Pretrained --model only: train LoRA adapters (plus the embeddings) instead of every weight."),
        click.option("--lora-rank", type=BoundedType(TRAIN["lora_rank"]), default=8, show_default=True, help="Rank of the LoRA adapters."),
        click.option("--epsilon", type=BoundedType(TRAIN["epsilon"]), default=None, help="Target epsilon (noise found by the accountant). Default 8 when --noise-multiplier is not given."),
        click.option("--delta", type=BoundedType(TRAIN["delta"]), default=None, help="Target delta; default min(1e-5, 0.1/n)."),
        click.option("--noise-multiplier", type=BoundedType(TRAIN["noise_multiplier"]), default=None, help="Fixed noise multiplier instead of --epsilon."),
        click.option("--max-grad-norm", type=BoundedType(TRAIN["max_grad_norm"]), default=1.0, show_default=True, help="Per-example clipping norm C."),
        click.option("--epochs", type=BoundedType(TRAIN["epochs"]), default=None, help="Default: fitted to the table, at most 20 (docs/defaults.md)."),
        click.option("--batch-size", type=BoundedType(TRAIN["batch_size"]), default=None, help="Expected (logical) batch size; Poisson sampling. Default: fitted to the table (docs/defaults.md)."),
        click.option("--physical-batch-size", type=BoundedType(TRAIN["physical_batch_size"]), default=None, help="Examples per forward pass (memory only). Default: fitted to the row length."),
        click.option("--lr", type=BoundedType(TRAIN["lr"]), default=None, help="Peak learning rate. Default: 1e-2, scaled by sqrt(batch/512) below 512 (docs/defaults.md)."),
        click.option("--seed", type=BoundedType(TRAIN["seed"]), default=None, help="Seed of what is not a DP mechanism: model initialisation, holdout split, canary layout; fresh OS entropy when omitted. DP randomness (sampling, noise, domain selection, canary secrets) is always secret."),
        click.option("--reproducible-noise", type=BoundedType(TRAIN["seed"]), default=None, metavar="SEED", help="Debugging and tests only: draw the DP randomness from SEED, recorded in the run; the run has NO DP guarantee and every max_epsilon check fails."),
        click.option("--keep-checkpoints", is_flag=True, help="Keep the last checkpoint (private, mode 0600, under RUN/.private/) after training."),
        click.option("--keep-train-log", is_flag=True, help="Keep the exact training losses (private, mode 0600, RUN/.private/train_log.json); they are not DP."),
        click.option("--no-dp", is_flag=True, help="Train the same model without DP (baseline; no DP guarantee)."),
        click.option("--holdout", type=BoundedType(DATA["holdout"]), default=0.2, show_default=True, help="Fraction of records held out (never trained on)."),
        click.option("--domains", type=click.Choice(["dp", "data"]), default="dp", show_default=True, help="Undeclared categorical domains and numeric magnitudes: selected with DP, or taken from the data (outside the guarantee)."),
        click.option("--learn-identifiers", is_flag=True, help="Without --schema: learn the detected direct identifiers (names, emails, phones, IDs ...) instead of faking them."),
        click.option("--no-canaries", is_flag=True, help="Do not plant canaries (no exposure audit)."),
        click.option("--canary-repetitions", type=BoundedListType(REPETITIONS), default="1,2,4,8,16", show_default=True, help="Copies per scheduled canary."),
        click.option("--audit-canaries", type=BoundedType(AUDIT_CANARIES), default=300, show_default=True, help="Coin-flip canaries for the one-run DP audit."),
        click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda."),
        click.option("--clipping", type=click.Choice(["auto", "bookkeeping", "opacus"]), default="auto", show_default=True, help="Per-sample clipping engine (epsilon does not depend on it)."),
        click.option("--checkpoint-every", type=BoundedType(TRAIN["checkpoint_every"]), default=25, show_default=True, help="Steps between checkpoints."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def run_config(*, schema, model, lora=False, lora_rank=8, epsilon, delta, noise_multiplier, max_grad_norm, epochs, batch_size,
               physical_batch_size, lr, seed, no_dp, holdout, domains, no_canaries, canary_repetitions,
               audit_canaries, device, checkpoint_every, clipping, reproducible_noise=None, keep_checkpoints=False,
               keep_train_log=False, data_path=None, learn_identifiers=False) -> RunConfig:
    if no_dp and (epsilon is not None or noise_multiplier is not None):
        raise click.UsageError("--no-dp conflicts with --epsilon/--noise-multiplier")
    if epsilon is not None and noise_multiplier is not None:
        raise click.UsageError("give --epsilon or --noise-multiplier, not both")
    if epsilon is None and noise_multiplier is None and not no_dp:
        epsilon = 8.0
    try:
        canaries = CanaryConfig(enabled=not no_canaries, repetitions=canary_repetitions, audit_canaries=audit_canaries)
    except ValueError as exc:
        raise click.UsageError(f"--canary-repetitions: {exc}") from None
    return RunConfig(
        data=DataConfig(path=data_path, schema=schema, holdout=holdout, domains=domains,
                        learn_identifiers=learn_identifiers),
        train=TrainConfig(model=model, lora_rank=lora_rank if lora else None, dp=not no_dp, epsilon=epsilon, delta=delta,
                          noise_multiplier=noise_multiplier, max_grad_norm=max_grad_norm, epochs=epochs,
                          batch_size=batch_size, physical_batch_size=physical_batch_size, lr=lr, seed=seed,
                          device=device, checkpoint_every=checkpoint_every, clipping=clipping,
                          reproducible_noise=reproducible_noise, keep_checkpoints=keep_checkpoints,
                          keep_train_log=keep_train_log),
        canaries=canaries,
    )


def sample_options(f):
    opts = [
        click.option("--num-records", "-n", type=BoundedType(NUM_RECORDS), default=None, help="Rows to generate (default: as many as the training records)."),
        click.option("--temperature", type=BoundedType(SAMPLE["temperature"]), default=1.0, show_default=True),
        click.option("--top-p", type=BoundedType(SAMPLE["top_p"]), default=1.0, show_default=True),
        click.option("--magnitude-min-p", type=BoundedType(SAMPLE["magnitude_min_p"]), default=None,
                     help="At each number's magnitude token, drop magnitudes less likely than this times the "
                          "likeliest (cuts the DP noise floor that skews means). Default: 0.1 for a DP run, else 0."),
        click.option("--gen-seed", type=BoundedType(SAMPLE["seed"]), default=0, show_default=True, help="Seed of the sampler."),
        click.option("--scrub-pii", type=click.Choice(["replayed"]), default=None, help="Drop rows replaying training PII (outside the DP guarantee)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def sample_config(*, temperature, top_p, gen_seed, magnitude_min_p=None, **_) -> SampleConfig:
    return SampleConfig(temperature=temperature, top_p=top_p, magnitude_min_p=magnitude_min_p, seed=gen_seed)


def silence_library_bars() -> None:
    """``-q``: no progress bars of transformers either ("Writing model shards", "Loading weights")."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


@contextmanager
def train_progress(quiet: bool):
    """A tqdm bar showing loss and epsilon so far; yields the callback for ``fit``."""
    if quiet:
        logging.getLogger().setLevel(logging.WARNING)
        silence_library_bars()
        yield None
        return
    bar = tqdm(total=None, desc="train", unit="step", dynamic_ncols=True, leave=True)
    state = {"eps": None}

    def update(step, steps, loss, eps):
        bar.total = steps
        if eps is not None:
            state["eps"] = eps
        post = {"loss": f"{loss:.3f}"}
        if state["eps"] is not None:
            post["eps"] = f"{state['eps']:.2f}"
        bar.set_postfix(post, refresh=False)
        bar.n = step
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


@contextmanager
def count_progress(quiet: bool, desc: str):
    if quiet:
        silence_library_bars()
        yield None
        return
    bar = tqdm(total=None, desc=desc, unit="row", dynamic_ncols=True)

    def update(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()
