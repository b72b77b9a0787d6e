"""Model building: size presets (LLaMA-style, untied embeddings), local/hub models, LoRA.

Opacus computes per-sample gradients for LLaMA's Linear/Embedding/RMSNorm layers;
embeddings are untied because DP-SGD (and ghost clipping) cannot clip a weight
shared between two layers per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM


@dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    intermediate: int


PRESETS: dict[str, Preset] = {
    "tiny": Preset(hidden=32, layers=2, heads=2, intermediate=64),  # tests
    "small": Preset(hidden=128, layers=2, heads=4, intermediate=256),  # CPU default
    "medium": Preset(hidden=256, layers=4, heads=4, intermediate=768),
    "base": Preset(hidden=768, layers=16, heads=12, intermediate=2048),  # GPU, >= 100M parameters
    "large": Preset(hidden=1024, layers=24, heads=16, intermediate=2816),  # GPU, ~ 300M parameters
}


def build_model(preset: str, vocab_size: int, *, max_length: int = 512, seed: int | None = None) -> LlamaForCausalLM:
    """A randomly initialised LLaMA-style causal LM of the given size preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r} (expected one of {', '.join(PRESETS)})")
    p = PRESETS[preset]
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.heads,
        intermediate_size=p.intermediate,
        max_position_embeddings=max(64, int(max_length)),
        tie_word_embeddings=False,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if seed is not None:
        torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = 0
    return model


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_model(path: str | Path, *, local_only: bool = True) -> torch.nn.Module:
    """Load a causal LM saved with ``save_pretrained`` (or a hub name when ``local_only`` is False)."""
    return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=local_only)


def add_lora(model: torch.nn.Module, *, rank: int = 8, alpha: int = 16) -> torch.nn.Module:
    """Wrap a pretrained model with LoRA adapters on the attention projections (peft)."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                     task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)
