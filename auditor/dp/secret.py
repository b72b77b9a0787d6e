"""The secret randomness of the DP mechanisms (DESIGN.md, privacy rule 6).

Poisson sampling, the Gaussian noise of DP-SGD, the DP domain selection, the
canary secrets and the audit coin flips all draw from one ``SecretSource``: 256
bits of OS entropy (``os.urandom``) held in memory only, never written except
in the private resume file (mode 0600, deleted when training ends). ``--seed``
governs only what is not a DP mechanism (model initialisation, holdout split,
canary layout and filler, generation).

Why not one torch generator: its seed is 64 bits (``manual_seed``), and a 64-bit
seed of the noise can be searched. Why not a CSPRNG generator (Opacus'
``secure_mode`` uses ``torchcsprng``): that package is no longer maintained for
current torch. So each stream is a set of independently seeded torch generators
whose outputs are combined, which keeps the noise on the training device with
no host round trip:

- noise: ``(Z_1 + Z_2 + Z_3 + Z_4) / 2`` with ``Z_i ~ N(0, s^2)`` from generator
  ``i``, which is ``N(0, s^2)``. Four 64-bit seeds: 256 bits to guess. It is
  also Opacus' ``secure_mode`` mitigation of floating-point attacks on the
  Gaussian sampler (a sum of 2n = 4 draws; Holohan & Braghin 2021,
  arXiv:2107.10138, section 5.1; the attack: Jin et al. 2022, arXiv:2112.05307).
- sampling: ``U = (U_1 + U_2) mod 1`` with ``U_i`` uniform on the float64 grid
  ``k / 2^53``, which is again uniform on that grid. Two seeds: 128 bits.

``SecretSource.reproducible(seed)`` derives everything from a recorded seed, for
debugging and tests only: the run is then outside the DP guarantee and marked so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

ENTROPY_BITS = 256
NOISE_GENERATORS = 4  # 2n with n = 2 (Holohan & Braghin 2021, section 5.1)
SAMPLING_GENERATORS = 2

# Independent child streams of one source (numpy SeedSequence spawn keys).
STREAMS = {"sampling": 1, "noise": 2, "domains": 3, "canaries": 4}


@dataclass(frozen=True)
class SecretSource:
    """Root entropy of a run's DP randomness; children are independent streams.

    Attributes:
        entropy: the root entropy (an int of ``ENTROPY_BITS`` bits, or the recorded
            seed of a reproducible run).
        reproducible: whether ``entropy`` is a recorded seed (no DP guarantee).
    """

    entropy: int
    reproducible: bool = False

    @classmethod
    def fresh(cls) -> "SecretSource":
        """256 bits from the OS CSPRNG; under ``torchrun`` (process group set up) rank 0's, on every process."""
        entropy = int.from_bytes(os.urandom(ENTROPY_BITS // 8), "little")
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            box = [entropy]
            dist.broadcast_object_list(box, src=0)
            entropy = int(box[0])
        return cls(entropy)

    @classmethod
    def reproducible_from(cls, seed: int) -> "SecretSource":
        """A source derived from a recorded seed (``--reproducible-noise``): no DP guarantee."""
        return cls(int(seed), reproducible=True)

    def _sequence(self, stream: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.entropy, spawn_key=(STREAMS[stream],))

    def numpy(self, stream: str) -> np.random.Generator:
        """A numpy generator of ``stream`` (PCG64, 128-bit state from the root entropy)."""
        return np.random.default_rng(self._sequence(stream))

    def torch_generators(self, stream: str, count: int, device: torch.device) -> list[torch.Generator]:
        """``count`` torch generators on ``device`` with independent 64-bit seeds of ``stream``."""
        seeds = self._sequence(stream).generate_state(count, np.uint64)
        return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def to_state(self) -> dict:
        """Plain types for the private resume file (``torch.load(weights_only=True)`` reads them)."""
        return {"entropy": hex(self.entropy), "reproducible": self.reproducible}

    @classmethod
    def from_state(cls, state: dict) -> "SecretSource":
        return cls(int(state["entropy"], 16), reproducible=bool(state["reproducible"]))


class SecretStreams:
    """The generators of DP-SGD: Poisson sampling (CPU) and Gaussian noise (training device)."""

    def __init__(self, source: SecretSource, device: torch.device):
        self.source = source
        self.sampling = source.torch_generators("sampling", SAMPLING_GENERATORS, torch.device("cpu"))
        self.noise = source.torch_generators("noise", NOISE_GENERATORS, device)

    def poisson(self, n: int, rate: float) -> torch.Tensor:
        """Indices of a Poisson sample: each of ``n`` records independently with probability ``rate``.

        ``U = (U_1 + U_2) mod 1`` (see the module docstring) and record ``i`` is in
        when ``U_i < rate``.
        """
        u = sum(torch.rand(n, generator=g, dtype=torch.float64) for g in self.sampling) % 1.0
        return torch.nonzero(u < rate).flatten()

    def gaussian(self, reference: torch.Tensor, std: float) -> torch.Tensor:
        """``N(0, std^2)`` noise shaped like ``reference``: ``sum_{i<4} N(0, std^2; g_i) / 2``."""
        if std == 0:
            return torch.zeros_like(reference)
        draws = (torch.normal(0.0, std, size=reference.shape, device=reference.device, dtype=reference.dtype,
                              generator=g) for g in self.noise)
        total = next(draws)
        for z in draws:
            total.add_(z)
        return total.div_(2)

    def state(self) -> dict:
        """Every generator's state (uint8 tensors) for the private resume file."""
        return {"sampling": [g.get_state() for g in self.sampling],
                "noise": [g.get_state().cpu() for g in self.noise]}

    def load_state(self, state: dict) -> None:
        for key in ("sampling", "noise"):
            gens = getattr(self, key)
            if len(state[key]) != len(gens):
                raise ValueError(f"resume state: {len(state[key])} {key} generators, expected {len(gens)}")
            for g, s in zip(gens, state[key]):
                g.set_state(s)
