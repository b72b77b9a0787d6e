"""DP-SGD training of the synthesizer, readable top to bottom.

One record = one training example (privacy rule 1): each step draws a Poisson
sample of records with rate ``q = batch_size / n``, splits it into physical
chunks that fit in memory, clips every example's gradient to ``max_grad_norm``
(Opacus per-sample gradients), adds Gaussian noise of std ``sigma * max_grad_norm``
once per logical step and divides by the expected batch size. ``fit`` is the loop;
the step engine (sampling, clipping, noise, optimizer: ``auditor.dp.engine``) is built
for the config, and DP-SGD ``(sigma, q, steps)`` is charged to the run's privacy ledger
(``auditor.dp.ledger``), which composes it with any DP domain selection into epsilon.

The loss is the grammar-constrained log-likelihood: logits outside
``codec.grammar.allowed[state]`` are masked before the softmax, the same
distribution that generation samples from and that the audits score.

The DP randomness (Poisson sampling, noise) comes from a
``auditor.dp.secret.SecretSource``; ``config.seed`` initialises the model only.

Checkpoints (model, optimizer, step, accountant history) are written every
``checkpoint_every`` steps, with the state of the secret generators in a separate
private file; both are mode 0600 and outside ``model/``. ``resume=True``
continues a killed run with the same secret streams, to the same weights and
the same epsilon. Both files are read with ``torch.load(weights_only=True)``
(tensors and plain types only), never unpickled.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from auditor.config import TrainConfig
from auditor.defaults import TRAIN_FIELDS, fill_training_defaults
from auditor.dp.accounting import default_delta
from auditor.dp.engine import build_engine
from auditor.dp.gradient_canaries import GradientCanaries
from auditor.dp.ledger import PrivacyLedger
from auditor.dp.secret import SecretSource
from auditor.errors import UserError
from auditor.model import build_model, parameter_count

log = logging.getLogger(__name__)




@dataclass
class TrainResult:
    """The trained model, the ledger DP-SGD was charged to, the engine's description and the losses."""

    model: torch.nn.Module
    ledger: PrivacyLedger
    engine: dict
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def distributed_context() -> tuple[int, int]:
    """``(rank, world size)``: under ``torchrun`` the process group is set up here
    (NCCL on GPUs, gloo on CPUs); ``(0, 1)`` for a plain single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def is_main_process() -> bool:
    return distributed_context()[0] == 0


def broadcast_seed(seed: int | None) -> int:
    """The same seed on every process (rank 0's, drawn from OS entropy when None)."""
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") % (2**31)
    rank, world = distributed_context()
    if world > 1:
        import torch.distributed as dist

        box = [seed]
        dist.broadcast_object_list(box, src=0)
        seed = int(box[0])
    return seed


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(name)


def pad_rows(rows: Sequence[Sequence], *, fill, dtype: torch.dtype) -> torch.Tensor:
    """Variable-length rows right-padded with ``fill`` into one ``[len(rows), longest]`` tensor."""
    out = torch.full((len(rows), max(len(r) for r in rows)), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=dtype)
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask."""
    ids = pad_rows(seqs, fill=pad_id, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = (torch.arange(ids.size(1))[None, :] < lengths[:, None]).long()
    return ids, mask


def grammar_states(seq: Sequence[int], grammar) -> list[int]:
    """The grammar state before each predicted token of ``seq`` (which starts with BOS)."""
    states, s = [], grammar.start
    for t in seq[1:]:
        states.append(s)
        s = int(grammar.next_state[s, t])
    return states


def token_weights(states: Sequence[int], grammar, *, mode: str,
                  only_field: int | tuple[int, ...] | None = None) -> list[float]:
    """Weights of each predicted token in its example's loss; they sum to 1.

    ``token``: every token counts the same (the mean token NLL). ``column``: every
    column (and the end of record) counts the same, split evenly over its tokens,
    except that a number's leading token (sign, magnitude, first digit) takes half
    of its column's share. Text and identifier columns take most tokens of a row;
    with per-example clipping their gradient would drown the few tokens of the
    numeric and categorical columns, whose relations are what synthetic data is
    for; and the leading token of a number decides its value to within a digit,
    while the digits after it are close to uniform (gradient that only spends the
    clipping norm).

    ``only_field``: only the tokens of that field (index in the learned columns)
    carry weight (a tuple: the fields of a record-span canary). Canary rows are
    learned this way: their other fields are filler made up around the secret, and
    learning them would teach the model relations that are not in the data.
    """
    if only_field is not None:
        keep_fields = set(only_field) if isinstance(only_field, tuple) else {only_field}
        fields = [int(grammar.field_of[s]) for s in states]
        inside = [f in keep_fields for f in fields]
        if not any(inside):
            raise ValueError(f"no token of field {only_field} in the sequence")
        sub = token_weights([s for s, keep in zip(states, inside) if keep], grammar, mode=mode)
        it = iter(sub)
        return [next(it) if keep else 0.0 for keep in inside]
    if mode == "token":
        return [1.0 / len(states)] * len(states)
    fields = [int(grammar.field_of[s]) for s in states]
    lead = [bool(grammar.magnitude[s]) for s in states]
    counts: dict[int, int] = {}
    for f in fields:
        counts[f] = counts.get(f, 0) + 1
    with_lead = {f for f, is_lead in zip(fields, lead) if is_lead}
    out = []
    for f, is_lead in zip(fields, lead):
        share = 1.0 / len(counts)
        if f in with_lead and counts[f] > 1:
            out.append(share / 2 if is_lead else share / 2 / (counts[f] - 1))
        else:
            out.append(share / counts[f])
    return out


def example_losses(model, ids, mask, states, allowed, weights=None) -> torch.Tensor:
    """Grammar-constrained negative log-likelihood of each example: ``[batch]``.

    ``weights`` (``[batch, T-1]``, see ``token_weights``) default to the mean over tokens.
    """
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = ids[:, 1:]
    tmask = mask[:, 1:].bool()
    logits = logits.masked_fill(~allowed[states], float("-inf"))
    nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none",
                          ignore_index=-100).view_as(target)
    nll = torch.where(tmask, nll, torch.zeros_like(nll))
    if weights is None:
        return nll.sum(1) / tmask.sum(1).clamp(min=1)
    return (nll * weights).sum(1)


def _lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    warm = max(1, int(cfg.warmup * steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    frac = (step - warm) / max(1, steps - warm)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def fit(
    sequences: Sequence[Sequence[int]],
    *,
    grammar,
    vocab_size: int,
    pad_id: int,
    config: TrainConfig,
    ledger: PrivacyLedger | None = None,
    secret: SecretSource | None = None,
    max_length: int | None = None,
    checkpoint: Path | None = None,
    secret_state: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, float, float | None], None] | None = None,
    model: torch.nn.Module | None = None,
    only_fields: Sequence[int | tuple[int, ...] | None] | None = None,
    gradient_canaries: GradientCanaries | None = None,
) -> TrainResult:
    """Train a causal LM on token sequences (one per record), with or without DP.

    Args:
        sequences: token ids of each record, ``[BOS, ..., EOS]``.
        grammar: the codec's grammar (constrains the loss).
        vocab_size, pad_id: from the codec.
        config: the settings.
        ledger: the run's privacy ledger: what ran before on the same records (DP domain
            selection) and the delta epsilon holds at; DP-SGD is calibrated against it and
            charged to it. None: an empty ledger at ``config.delta`` (default min(1e-5, 0.1/n)).
        secret: the source of the sampling and the noise (never written but to
            ``secret_state``); fresh OS entropy when None.
        max_length: the codec's public maximum sequence length, the positions of a
            fresh model (never the longest record's); unused with ``model``.
        checkpoint, secret_state: the private checkpoint file and the private file
            of the secret generators' state (both 0600); None disables checkpoints.
        resume: continue from ``checkpoint`` and ``secret_state``.
        progress: called as ``progress(step, steps, loss, epsilon_so_far)``.
        model: a model to fine-tune instead of a fresh preset.
        only_fields: per sequence, None (learn every field) or the index of the one
            field (a tuple: the fields) whose tokens carry loss (canary rows: see ``token_weights``).
        gradient_canaries: white-box canaries of ``auditor verify-dp`` (DP only): sampled,
            clipped and noised with the records, observed after every step.
    """
    t0 = time.perf_counter()
    n = len(sequences)
    if max_length is not None:
        fill_training_defaults(config, n=n, max_length=max_length)
    elif any(getattr(config, f) is None for f in TRAIN_FIELDS):
        raise ValueError(f"fit with a given model needs {', '.join(TRAIN_FIELDS)} set (no codec length to fit them to)")
    config.check_records(n)
    rank, world = distributed_context()
    config.seed = broadcast_seed(config.seed)
    device = resolve_device(config.device)
    steps = config.steps(n)
    if ledger is None:
        ledger = PrivacyLedger.for_training(config, delta=config.delta or default_delta(n))
    if model is None:
        if max_length is None:
            raise ValueError("fit: a fresh model needs max_length (the codec's public maximum length)")
        model = build_model(config.model, vocab_size, max_length=max_length, seed=config.seed)
    model.to(device).train()
    if world > 1:
        import torch.distributed as dist

        for p in model.parameters():
            dist.broadcast(p.data, src=0)
    log.info("model %s: %.2fM parameters, %d records, %d steps, q=%.4f", config.model,
             parameter_count(model) / 1e6, n, steps, config.batch_size / n)

    # bf16 autocast on GPUs that support it; the clipping engines compute norms in fp32.
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    states = [grammar_states(s, grammar) for s in sequences]
    weights = [token_weights(st, grammar, mode=config.loss_weighting,
                             only_field=None if only_fields is None else only_fields[i])
               for i, st in enumerate(states)]
    allowed = grammar.allowed.to(device)
    engine = build_engine(config, model, n_records=n, device=device, ledger=ledger, secret=secret,
                          gradient_canaries=gradient_canaries, rank=rank, world=world)
    opt = engine.optimizer

    start = 0
    # The secret state of the last two checkpoints: written before the checkpoint, so that
    # a kill between the two writes still finds the state of the checkpoint on disk.
    kept_streams: dict[str, dict] = {}
    if resume and checkpoint is not None and checkpoint.exists():
        state = load_private_state(checkpoint, map_location=device)
        saved_streams = load_private_state(secret_state)["streams"]
        if str(state["step"]) not in saved_streams:
            raise UserError(f"{checkpoint.parent}: no secret state for the checkpoint's step {state['step']}; "
                            "start afresh")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        engine.streams.load_state(saved_streams[str(state["step"])])
        kept_streams = {str(state["step"]): saved_streams[str(state["step"])]}
        start = state["step"]
        if [tuple(h) for h in state["history"]] != engine.history(start):
            raise ValueError("checkpoint was written with other privacy settings; start afresh or use the same flags")
        log.info("resumed at step %d of %d", start, steps)

    log_every = max(1, steps // 20)
    losses: list[dict] = []
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, config)
        picked = engine.sample()
        chunks = [picked[i : i + config.physical_batch_size] for i in range(0, len(picked), config.physical_batch_size)]
        step_loss, seen = torch.zeros((), device=device), 0
        for j, chunk in enumerate(chunks):
            ids, mask = pad_batch([sequences[i] for i in chunk], pad_id)
            st = pad_rows([states[i] for i in chunk], fill=0, dtype=torch.long)
            w = pad_rows([weights[i] for i in chunk], fill=0.0, dtype=torch.float32)
            ids, mask, st, w = ids.to(device), mask.to(device), st.to(device), w.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                per_example = example_losses(engine.net, ids, mask, st, allowed, w)
            engine.backward(per_example, last=j == len(chunks) - 1)
            step_loss += per_example.detach().sum()
            seen += len(chunk)
        engine.finish_step(picked)
        # The loss is read back (a host sync) only at logging steps, not every step.
        if step % log_every == 0 or step == steps - 1:
            mean_loss = float(step_loss) / max(1, seen)
            losses.append({"step": step, "loss": mean_loss})
            if progress is not None and rank == 0:
                progress(step + 1, steps, mean_loss, engine.epsilon(step + 1))
        if rank == 0 and checkpoint is not None and ((step + 1) % config.checkpoint_every == 0 or step == steps - 1):
            kept_streams = {**dict(list(kept_streams.items())[-1:]), str(step + 1): engine.streams.state()}
            _save_private(secret_state, {"source": engine.streams.source.to_state(), "streams": kept_streams})
            _save_private(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                                       "history": [list(h) for h in engine.history(step + 1)]})

    engine.close()
    described = engine.describe()
    ledger.record_training(config=config, noise_multiplier=engine.noise_multiplier, sample_rate=engine.sample_rate,
                           steps=steps, n_records=n, engine=described)
    model.eval()
    return TrainResult(model=model, ledger=ledger, engine=described, history=losses, seconds=time.perf_counter() - t0)


def _save_private(path: Path, state: dict) -> None:
    """``torch.save`` to a unique temp file (mode 0600), fsync, rename: never a half-written
    or world-readable checkpoint, and two writers never share a temp name."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_private_state(path: Path, *, map_location=None) -> dict:
    """A checkpoint or secret state written by this tool: tensors and plain types only.

    ``weights_only=True`` never runs code from the file; anything else is refused.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a checkpoint written by this tool; refusing to load it ({reason[:160]})") from None


def read_secret_source(path: Path) -> SecretSource:
    """The secret source of an interrupted run, from its private state file."""
    return SecretSource.from_state(load_private_state(path)["source"])
