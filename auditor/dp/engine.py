"""The step engine of a training run: sampling, clipping, noise and the optimizer step.

``auditor.train.fit`` is the training loop; what makes a step differentially private
is built here, for a ``TrainConfig``, by :func:`build_engine`:

- the noise multiplier: ``--noise-multiplier``, or the smallest that keeps the
  ledger's whole history (domain selection first) within ``--epsilon``;
- Poisson sampling of the records with rate ``q = batch_size / n``, from the secret
  streams (``auditor.dp.secret``: OS entropy unless ``--reproducible-noise``);
- per-sample clipping (book-keeping or Opacus hooks, :func:`choose_clipping`) and
  Gaussian noise of std ``sigma * max_grad_norm`` once per logical step;
- the white-box gradient canaries of ``auditor verify-dp``, sampled, clipped and
  noised with the records.

A run without DP gets :class:`PlainEngine`: the same Poisson batches, the mean loss
over the expected batch size, plain AdamW steps, nothing clipped, noised or charged.
"""

from __future__ import annotations

import logging

import torch
from opacus import GradSampleModule

from auditor.dp import _faults
from auditor.dp.bookkeeping import BookKeepingClipper
from auditor.dp.gradient_canaries import GradientCanaries
from auditor.dp.ledger import PrivacyLedger
from auditor.dp.optimizer import BookKeepingDistributedDPOptimizer, BookKeepingDPOptimizer, SecretNoiseDPOptimizer
from auditor.dp.secret import SecretSource, SecretStreams
from auditor.model import parameter_count

log = logging.getLogger(__name__)

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


class PlainEngine:
    """Training without DP: Poisson batches, loss summed over the expected batch size, plain steps.

    Attributes:
        net: the module the loop runs forward (the model itself here).
        optimizer: the optimizer whose learning rate the loop schedules and checkpoints.
        streams: the secret generators of the sampling (checkpointed privately).
        noise_multiplier: None (no noise).
    """

    noise_multiplier: float | None = None

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, streams: SecretStreams,
                 ledger: PrivacyLedger, n_records: int, sample_rate: float, batch_size: int, rank: int, world: int,
                 probe: GradientCanaries | None = None):
        self.model = self.net = model
        self.optimizer = optimizer
        self.streams = streams
        self.ledger = ledger
        self.n_records, self.sample_rate, self.batch_size = n_records, sample_rate, batch_size
        self.rank, self.world = rank, world
        self.probe = probe

    def sample(self) -> list[int]:
        """This process's share of the step's Poisson sample (indices of records; canaries above them)."""
        candidates = self.n_records + (self.probe.inserted if self.probe is not None else 0)
        picked = self.streams.poisson(candidates, self.sample_rate * _faults.sampling_factor()).tolist()
        if self.probe is not None:
            picked = self.probe.take(picked, n_records=self.n_records, rank=self.rank, world=self.world)
        if self.world > 1:  # every process draws the same logical batch and keeps its shard
            picked = [i for i in picked if i % self.world == self.rank]
        return picked

    def backward(self, per_example: torch.Tensor, *, last: bool) -> None:
        """Back-propagate one physical chunk's per-example losses (``last``: the step's last chunk)."""
        (per_example.sum() / self.batch_size).backward()

    def finish_step(self, picked: list[int]) -> None:
        """End the logical step whose sample was ``picked``."""
        if self.world > 1:
            _all_reduce_grads(self.model)
        if picked or self.world > 1:
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

    def history(self, done: int) -> list[tuple[float, float, int]]:
        """The mechanism history after ``done`` steps (checkpointed, compared on resume)."""
        return self.ledger.history

    def epsilon(self, done: int) -> float | None:
        """epsilon spent after ``done`` steps; None without DP."""
        return None

    def describe(self) -> dict:
        """What ``privacy.json`` records of the engine."""
        return {"world_size": self.world}

    def close(self) -> None:
        """Release what the engine attached to the model."""


class DPEngine(PlainEngine):
    """DP-SGD: every step's Poisson sample clipped per example, noised once, charged to the ledger."""

    def __init__(self, model: torch.nn.Module, optimizer, *, net: torch.nn.Module, noise_multiplier: float,
                 clipping: str, clipping_reason: str, clipper: BookKeepingClipper | None, **kwargs):
        super().__init__(model, optimizer, **kwargs)
        self.net = net
        self.noise_multiplier = noise_multiplier
        self.clipping, self.clipping_reason, self.clipper = clipping, clipping_reason, clipper

    def backward(self, per_example: torch.Tensor, *, last: bool) -> None:
        per_example.mean().backward()
        if self.probe is not None and last:
            self.probe.inject(self.clipper)
        self.optimizer.signal_skip_step(do_skip=not last)
        self.optimizer.step()
        if self.probe is not None and last:
            self.probe.observe()
        self.optimizer.zero_grad(set_to_none=True)

    def finish_step(self, picked: list[int]) -> None:
        if picked:
            return  # the last chunk's optimizer step added the noise
        # An empty Poisson sample is still a DP step: noise alone.
        if self.clipper is None:
            for p in self.model.parameters():
                p.grad_sample = torch.zeros((0, *p.shape), device=p.device)
        if self.probe is not None:
            self.probe.inject(self.clipper)
        self.optimizer.step()
        if self.probe is not None:
            self.probe.observe()
        self.optimizer.zero_grad(set_to_none=True)

    def history(self, done: int) -> list[tuple[float, float, int]]:
        return self.ledger.history_with((self.noise_multiplier, self.sample_rate, done))

    def epsilon(self, done: int) -> float | None:
        return self.ledger.epsilon(pending=((self.noise_multiplier, self.sample_rate, done),))

    def describe(self) -> dict:
        out = {"world_size": self.world, "clipping": self.clipping, "clipping_reason": self.clipping_reason}
        if self.clipper is not None:
            methods = self.clipper.methods()
            out["clipping_layers"] = {m: sum(1 for v in methods.values() if v == m) for m in sorted(set(methods.values()))}
        return out

    def close(self) -> None:
        if self.clipper is not None:
            self.clipper.remove()


def build_engine(config, model: torch.nn.Module, *, n_records: int, device: torch.device, ledger: PrivacyLedger,
                 secret: SecretSource | None = None, gradient_canaries: GradientCanaries | None = None,
                 rank: int = 0, world: int = 1) -> PlainEngine:
    """The engine of one training run of ``config`` (a ``TrainConfig``) on ``n_records`` records.

    Args:
        model: the model, on ``device``.
        ledger: what ran before on the same records (DP domain selection) and the delta
            epsilon holds at; the noise multiplier is calibrated against it.
        secret: the source of the sampling and the noise; fresh OS entropy when None.
        gradient_canaries: white-box canaries (DP only), attached to the trainable parameters.
    """
    sample_rate = config.batch_size / n_records
    streams = SecretStreams(secret or SecretSource.fresh(), device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    common = dict(streams=streams, ledger=ledger, n_records=n_records, sample_rate=sample_rate,
                  batch_size=config.batch_size, rank=rank, world=world)
    if not config.dp:
        return PlainEngine(model, optimizer, **common)
    sigma = config.noise_multiplier or ledger.noise_multiplier_for(config.epsilon, sample_rate=sample_rate,
                                                                   steps=config.steps(n_records))
    probe = gradient_canaries
    if probe is not None:
        probe.attach([p for p in model.parameters() if p.requires_grad], max_grad_norm=config.max_grad_norm,
                     expected_batch_size=config.batch_size)
    clipping, reason = choose_clipping(config.clipping, device, n_params=parameter_count(model), world=world)
    log.info("clipping: %s (%s)", clipping, reason)
    clipper = None
    if clipping == "bookkeeping":
        clipper = BookKeepingClipper(model, max_grad_norm=config.max_grad_norm, loss_reduction="mean")
        net = model
        # Each process holds 1/world of the Poisson sample: noise is added once (rank 0)
        # and the per-process sums are all-reduced, so the mechanism and epsilon are unchanged.
        cls = BookKeepingDistributedDPOptimizer if world > 1 else BookKeepingDPOptimizer
        dp_optimizer = cls(optimizer, clipper=clipper, noise_multiplier=sigma,
                           expected_batch_size=config.batch_size / world, streams=streams)
    else:
        net = GradSampleModule(model, loss_reduction="mean")
        dp_optimizer = SecretNoiseDPOptimizer(optimizer, streams=streams, noise_multiplier=sigma,
                                              max_grad_norm=config.max_grad_norm,
                                              expected_batch_size=config.batch_size, loss_reduction="mean")
    return DPEngine(model, dp_optimizer, net=net, noise_multiplier=sigma, clipping=clipping, clipping_reason=reason,
                    clipper=clipper, probe=probe, **common)


def _all_reduce_grads(model: torch.nn.Module) -> None:
    """Sum non-DP gradients over processes (each process's loss is already / batch_size)."""
    import torch.distributed as dist

    for p in model.parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
