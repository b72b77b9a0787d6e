"""DP-SGD training of the synthesizer, readable top to bottom.

One record = one training example (privacy rule 1): each step draws a Poisson
sample of records with rate ``q = batch_size / n``, splits it into physical
chunks that fit in memory, clips every example's gradient to ``max_grad_norm``
(Opacus per-sample gradients), adds Gaussian noise of std ``sigma * max_grad_norm``
once per logical step and divides by the expected batch size. The accountant
history ``(sigma, q, steps)`` (plus any DP domain selection) gives epsilon.

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
from opacus import GradSampleModule

from auditor.bounds import TRAIN, check_fields
from auditor.defaults import TRAIN_FIELDS, fill_training_defaults
from auditor.dp import _faults
from auditor.dp.accounting import epsilon_of, noise_for_epsilon
from auditor.dp.bookkeeping import BookKeepingClipper
from auditor.dp.gradient_canaries import GradientCanaries
from auditor.dp.optimizer import BookKeepingDistributedDPOptimizer, BookKeepingDPOptimizer, SecretNoiseDPOptimizer
from auditor.dp.secret import SecretSource, SecretStreams
from auditor.errors import UserError
from auditor.model import PRESETS, build_model, parameter_count

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Training settings; every number that changes epsilon is recorded in privacy.json."""

    model: str = "small"
    dp: bool = True
    epsilon: float | None = 8.0
    delta: float | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    # None: fitted to the table by auditor.defaults (from n and the codec's row length) when training starts
    epochs: float | None = None
    batch_size: int | None = None
    physical_batch_size: int | None = None
    lr: float | None = None
    warmup: float = 0.05
    weight_decay: float = 0.0
    accountant: str = "prv"
    clipping: str = "auto"
    loss_weighting: str = "column"
    seed: int | None = None  # model initialisation only (not a DP mechanism)
    reproducible_noise: int | None = None  # debugging/tests: DP randomness from this recorded seed, no guarantee
    device: str = "auto"
    checkpoint_every: int = 25
    keep_checkpoints: bool = False
    keep_train_log: bool = False
    lora_rank: int | None = None  # pretrained models only: LoRA adapters of this rank instead of full fine-tuning

    def __post_init__(self) -> None:
        check_fields(self, TRAIN)

    def validate_model(self) -> None:
        """The ``--model`` checks, before anything is loaded."""
        if not self.model:
            raise ValueError(f"--model: give a size preset ({', '.join(PRESETS)}) or a pretrained model")
        if self.model not in PRESETS and not Path(self.model).expanduser().is_dir():
            if self.model.startswith(("/", ".", "~")) or _hub_offline():
                raise ValueError(f"--model {self.model!r}: not a size preset ({', '.join(PRESETS)}) nor a local "
                                 "model directory" + (" (the Hugging Face hub is off: HF_HUB_OFFLINE)"
                                                      if _hub_offline() else ""))
        if self.lora_rank is not None:
            if self.model in PRESETS:
                raise ValueError("--lora fine-tunes a pretrained model; a size preset is trained in full")
            if self.lora_rank < 1:
                raise ValueError("--lora-rank must be >= 1")

    def validate(self, n_records: int) -> None:
        if self.loss_weighting not in ("column", "token"):
            raise ValueError("--loss-weighting must be column or token")
        if self.clipping not in CLIPPING:
            raise ValueError(f"--clipping must be one of {', '.join(CLIPPING)}")
        check_fields(self, TRAIN)  # again: the pipeline sets fields after construction (the seed)
        self.validate_model()
        if self.dp:
            if (self.epsilon is None) == (self.noise_multiplier is None):
                raise ValueError("give exactly one of --epsilon and --noise-multiplier")
            if self.delta is not None and not (0 < self.delta < 1.0 / n_records):
                raise ValueError(f"--delta must be in (0, 1/n) = (0, {1.0 / n_records:.3g}) for n = {n_records} records")
        if self.reproducible_noise is not None and self.reproducible_noise < 0:
            raise ValueError("--reproducible-noise must be >= 0")
        if self.batch_size is not None and self.batch_size >= n_records:  # None: fitted below n / 4
            raise ValueError(
                f"--batch-size {self.batch_size} needs more records than the {n_records} available "
                "(DP-SGD samples a fraction of the records per step)"
            )

    def steps(self, n_records: int) -> int:
        """Logical steps for ``epochs`` passes at expected batch ``batch_size`` (both set: see ``auditor.defaults``)."""
        return max(1, math.ceil(self.epochs * n_records / self.batch_size))


CLIPPING = ("auto", "bookkeeping", "opacus")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


GPU_HOOKS_ABOVE_PARAMS = 200_000_000


def choose_clipping(requested: str, device: torch.device, *, n_params: int, world: int = 1) -> tuple[str, str]:
    """The per-sample clipping engine and why, from measurements. Accounting never depends on it.

    Measured (``benchmarks/train_overhead.py``, time of a non-DP step = 1):
      - CPU, small preset, 109-token rows: book-keeping 1.06x, Opacus hooks 1.43x;
      - H200, bf16, batch 32 x 256: 117.5M parameters: book-keeping 2.67x, hooks 2.76x;
        314M: book-keeping 2.96x, hooks 2.42x.
    So ``auto`` takes book-keeping (Bu et al. 2023: norms and the clipped sum from one
    backward pass) except for models above 200M parameters on a GPU, where Opacus'
    hooks were faster; several processes always use book-keeping (its distributed
    optimizer).
    """
    if requested != "auto":
        if world > 1 and requested != "bookkeeping":
            raise ValueError("multi-process training needs --clipping auto or bookkeeping")
        return ("opacus-hooks" if requested == "opacus" else "bookkeeping"), f"requested with --clipping {requested}"
    if device.type == "cuda" and n_params > GPU_HOOKS_ABOVE_PARAMS and world == 1:
        return "opacus-hooks", (f"auto: {n_params / 1e6:.0f}M parameters on a GPU; Opacus hooks measured faster "
                                "than book-keeping above 200M (2.42x vs 2.96x of non-DP at 314M)")
    return "bookkeeping", (f"auto on {device.type}: book-keeping measured faster than Opacus hooks "
                           "(CPU 1.06x vs 1.43x; GPU at 117M 2.67x vs 2.76x of non-DP)")


@dataclass
class TrainResult:
    model: torch.nn.Module
    privacy: dict
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


def token_weights(states: Sequence[int], grammar, *, mode: str, only_field: int | None = None) -> list[float]:
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
    carry weight. Canary rows are learned this way: their other fields are filler
    made up around the secret, and learning them would teach the model relations
    that are not in the data.
    """
    if only_field is not None:
        fields = [int(grammar.field_of[s]) for s in states]
        inside = [f == only_field for f in fields]
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


def _all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum non-DP gradients over processes (each process's loss is already / batch_size)."""
    import torch.distributed as dist

    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


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
    delta: float,
    prior_history: Sequence[tuple[float, float, int]] = (),
    secret: SecretSource | None = None,
    max_length: int | None = None,
    checkpoint: Path | None = None,
    secret_state: Path | None = None,
    resume: bool = False,
    progress: Callable[[int, int, float, float | None], None] | None = None,
    model: torch.nn.Module | None = None,
    only_fields: Sequence[int | None] | None = None,
    gradient_canaries: GradientCanaries | None = None,
) -> TrainResult:
    """Train a causal LM on token sequences (one per record), with or without DP.

    Args:
        sequences: token ids of each record, ``[BOS, ..., EOS]``.
        grammar: the codec's grammar (constrains the loss).
        vocab_size, pad_id: from the codec.
        config: the settings.
        delta: the delta that epsilon is reported at (already split for selection).
        prior_history: mechanisms that ran before training on the same records
            (DP domain selection), composed into epsilon.
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
            field whose tokens carry loss (canary rows: see ``token_weights``).
        gradient_canaries: white-box canaries of ``auditor verify-dp`` (DP only): sampled,
            clipped and noised with the records, observed after every step.
    """
    t0 = time.perf_counter()
    n = len(sequences)
    if max_length is not None:
        fill_training_defaults(config, n=n, max_length=max_length)
    elif any(getattr(config, f) is None for f in TRAIN_FIELDS):
        raise ValueError(f"fit with a given model needs {', '.join(TRAIN_FIELDS)} set (no codec length to fit them to)")
    config.validate(n)
    rank, world = distributed_context()
    config.seed = broadcast_seed(config.seed)
    device = resolve_device(config.device)
    q = config.batch_size / n
    steps = config.steps(n)
    sigma = None
    if config.dp:
        sigma = config.noise_multiplier or noise_for_epsilon(
            target_epsilon=config.epsilon, delta=delta, sample_rate=q, steps=steps,
            prior=prior_history, accountant=config.accountant,
        )
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
             parameter_count(model) / 1e6, n, steps, q)

    # bf16 autocast on GPUs that support it; the clipping engines compute norms in fp32.
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    states = [grammar_states(s, grammar) for s in sequences]
    weights = [token_weights(st, grammar, mode=config.loss_weighting,
                             only_field=None if only_fields is None else only_fields[i])
               for i, st in enumerate(states)]
    allowed = grammar.allowed.to(device)
    streams = SecretStreams(secret or SecretSource.fresh(), device)
    base_opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    clipping, clipping_reason, clipper = None, None, None
    probe = gradient_canaries if config.dp else None
    if probe is not None:
        probe.attach([p for p in model.parameters() if p.requires_grad], max_grad_norm=config.max_grad_norm,
                     expected_batch_size=config.batch_size)
    if config.dp:
        clipping, clipping_reason = choose_clipping(config.clipping, device, n_params=parameter_count(model),
                                                    world=world)
        log.info("clipping: %s (%s)", clipping, clipping_reason)
        if clipping == "bookkeeping":
            clipper = BookKeepingClipper(model, max_grad_norm=config.max_grad_norm, loss_reduction="mean")
            net = model
            # Each process holds 1/world of the Poisson sample: noise is added once (rank 0)
            # and the per-process sums are all-reduced, so the mechanism and epsilon are unchanged.
            cls = BookKeepingDistributedDPOptimizer if world > 1 else BookKeepingDPOptimizer
            opt = cls(base_opt, clipper=clipper, noise_multiplier=sigma,
                      expected_batch_size=config.batch_size / world, streams=streams)
        else:
            net = GradSampleModule(model, loss_reduction="mean")
            opt = SecretNoiseDPOptimizer(base_opt, streams=streams, noise_multiplier=sigma,
                                         max_grad_norm=config.max_grad_norm, expected_batch_size=config.batch_size,
                                         loss_reduction="mean")
    else:
        net, opt = model, base_opt
    prior = [tuple(h) for h in prior_history]

    def history_at(done: int) -> list[tuple[float, float, int]]:
        return prior + ([(sigma, q, done)] if config.dp and done else [])

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
        streams.load_state(saved_streams[str(state["step"])])
        kept_streams = {str(state["step"]): saved_streams[str(state["step"])]}
        start = state["step"]
        if [tuple(h) for h in state["history"]] != history_at(start):
            raise ValueError("checkpoint was written with other privacy settings; start afresh or use the same flags")
        log.info("resumed at step %d of %d", start, steps)

    log_every = max(1, steps // 20)
    losses: list[dict] = []
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, config)
        candidates = n + (probe.inserted if probe is not None else 0)
        picked = streams.poisson(candidates, q * _faults.sampling_factor()).tolist()
        if probe is not None:
            picked = probe.take(picked, n_records=n, rank=rank, world=world)
        if world > 1:  # every process draws the same logical batch and keeps its shard
            picked = [i for i in picked if i % world == rank]
        chunks = [picked[i : i + config.physical_batch_size] for i in range(0, len(picked), config.physical_batch_size)]
        step_loss, seen = torch.zeros((), device=device), 0
        if not picked and config.dp:
            # An empty Poisson sample is still a DP step: noise alone.
            if clipper is None:
                for p in model.parameters():
                    p.grad_sample = torch.zeros((0, *p.shape), device=device)
            if probe is not None:
                probe.inject(clipper)
            opt.step()
            if probe is not None:
                probe.observe()
            opt.zero_grad(set_to_none=True)
        for j, chunk in enumerate(chunks):
            ids, mask = pad_batch([sequences[i] for i in chunk], pad_id)
            st = pad_rows([states[i] for i in chunk], fill=0, dtype=torch.long)
            w = pad_rows([weights[i] for i in chunk], fill=0.0, dtype=torch.float32)
            ids, mask, st, w = ids.to(device), mask.to(device), st.to(device), w.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                per_example = example_losses(net, ids, mask, st, allowed, w)
            if config.dp:
                per_example.mean().backward()
                last = j == len(chunks) - 1
                if probe is not None and last:
                    probe.inject(clipper)
                opt.signal_skip_step(do_skip=not last)
                opt.step()
                if probe is not None and last:
                    probe.observe()
                opt.zero_grad(set_to_none=True)
            else:
                (per_example.sum() / config.batch_size).backward()
            step_loss += per_example.detach().sum()
            seen += len(chunk)
        if not config.dp:
            if world > 1:
                _all_reduce_grads(model)
            if picked or world > 1:
                opt.step()
                opt.zero_grad(set_to_none=True)
        # The loss is read back (a host sync) only at logging steps, not every step.
        if step % log_every == 0 or step == steps - 1:
            mean_loss = float(step_loss) / max(1, seen)
            losses.append({"step": step, "loss": mean_loss})
            if progress is not None and rank == 0:
                eps_now = (epsilon_of(history_at(step + 1), delta=delta, accountant=config.accountant)
                           if config.dp else None)
                progress(step + 1, steps, mean_loss, eps_now)
        if rank == 0 and checkpoint is not None and ((step + 1) % config.checkpoint_every == 0 or step == steps - 1):
            kept_streams = {**dict(list(kept_streams.items())[-1:]), str(step + 1): streams.state()}
            _save_private(secret_state, {"source": streams.source.to_state(), "streams": kept_streams})
            _save_private(checkpoint, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step + 1,
                                       "history": [list(h) for h in history_at(step + 1)]})

    if clipper is not None:
        clipper.remove()
    privacy = privacy_record(config=config, history=history_at(steps), delta=delta, sigma=sigma, sample_rate=q,
                             steps=steps, n_records=n)
    privacy["world_size"] = world
    if config.dp:
        privacy["clipping"] = clipping
        privacy["clipping_reason"] = clipping_reason
        if clipper is not None:
            methods = clipper.methods()
            privacy["clipping_layers"] = {m: sum(1 for v in methods.values() if v == m)
                                          for m in sorted(set(methods.values()))}
    model.eval()
    return TrainResult(model=model, privacy=privacy, history=losses, seconds=time.perf_counter() - t0)


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


def privacy_record(*, config: TrainConfig, history, delta, sigma, sample_rate, steps, n_records) -> dict:
    """Everything needed to recompute epsilon, as written to ``model/privacy.json``."""
    base = {
        "dp": config.dp,
        "accountant": config.accountant,
        "max_grad_norm": config.max_grad_norm if config.dp else None,
        "sample_rate": sample_rate,
        "steps": steps,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "n_records": n_records,
    }
    if not config.dp:
        return base | {"epsilon": None, "epsilon_rdp": None, "delta": None, "noise_multiplier": None,
                       "history": [], "guarantee": "no DP guarantee"}
    return base | {
        "epsilon": epsilon_of(history, delta=delta, accountant=config.accountant),
        "epsilon_rdp": epsilon_of(history, delta=delta, accountant="rdp"),
        "delta": delta,
        "noise_multiplier": sigma,
        "target_epsilon": config.epsilon,
        "history": [list(h) for h in history],
    }
