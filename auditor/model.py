"""Model building: size presets (LLaMA-style, untied embeddings), pretrained models, LoRA.

Opacus and the book-keeping clipper compute per-sample gradients for LLaMA's
Linear/Embedding/RMSNorm layers; embeddings are untied because DP-SGD (and ghost
clipping) cannot clip a weight shared between two layers per sample. A pretrained
model is re-mapped to the codec's vocabulary and untied the same way
(:func:`pretrained_for_codec`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from auditor.dp.bookkeeping import _trainable_layers

if TYPE_CHECKING:
    from auditor.codec import RowCodec


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


def is_preset(name: str) -> bool:
    """Whether ``--model`` names a size preset (a fresh model) rather than a pretrained one."""
    return name in PRESETS


# ---------------------------------------------------------------------- pretrained models
#
# A pretrained causal LM is fine-tuned on the codec's token ids. Its own tokenizer
# becomes the codec's text tokenizer (text id t <-> codec id ``text_base + t``), so the
# text rows of its embedding and head keep their meaning; the codec's structural,
# categorical and numeric tokens get new rows. Both the tokenizer and the initial
# weights are public and fixed before any record is read: the DP guarantee covers the
# fine-tuning records, provided the pretrained model was not itself trained on them.

_PRETRAINED_NOTE = (
    "tokenizer and initial weights are the public pretrained model's, fixed before any record is "
    "read (the codec's own token rows start from the mean of the pretrained rows plus seeded noise); "
    "the DP guarantee covers the fine-tuning records, provided the pretrained model was not trained on them"
)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapters for a pretrained model.

    Attributes:
        rank: the adapters' rank ``r``.
        alpha: ``lora_alpha``; the update is scaled by ``alpha / rank``.
        targets: names (or name suffixes) of the modules to adapt; None picks peft's
            default for the model type (``q_proj``/``v_proj`` for LLaMA, ``c_attn`` for GPT-2).
    """

    rank: int = 8
    alpha: int = 16
    targets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {self.rank}")
        if not self.alpha > 0:
            raise ValueError(f"LoRA alpha must be > 0, got {self.alpha}")
        if self.targets is not None and not self.targets:
            raise ValueError("LoRA targets must not be empty (None picks the model type's default)")


def _one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception's message on one line (transformers' span several), cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _from_pretrained(loader: type, name_or_path: str, *, local_only: bool, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` with every failure as a one-line ``ValueError``.

    An existing directory is always loaded with ``local_files_only=True``, so a local
    model never touches the network whatever ``local_only`` says. Anything else is a
    hub name: looked up in the local Hugging Face cache only when ``local_only``,
    downloaded when the caller allows it (``local_only=False``).
    """
    path = Path(name_or_path).expanduser()
    is_dir = path.is_dir()
    if path.exists() and not is_dir:
        raise ValueError(f"pretrained model {name_or_path!r}: a file, not a model directory")
    if not is_dir and (path.is_absolute() or str(name_or_path).startswith((".", "~"))):
        raise ValueError(f"pretrained model {name_or_path!r}: no such directory")
    try:
        return loader.from_pretrained(str(path) if is_dir else name_or_path,
                                      local_files_only=is_dir or local_only, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        if is_dir:
            reason = f"not a Hugging Face model directory ({_one_line(exc)})"
        elif local_only:
            reason = "not a local directory, and not in the Hugging Face cache (hub downloads are off)"
        else:
            reason = f"cannot load it from the Hugging Face hub ({_one_line(exc)})"
        raise ValueError(f"pretrained model {name_or_path!r}: {reason}") from exc


def load_pretrained_tokenizer(name_or_path: str, *, local_only: bool = True) -> Tokenizer:
    """The pretrained model's tokenizer, as the ``tokenizers.Tokenizer`` the codec takes.

    ``name_or_path`` is a directory written by ``save_pretrained`` (never a network
    call) or a hub name (the local cache only, unless ``local_only=False``). Only fast
    tokenizers have the backend tokenizer the codec encodes and decodes text with.
    Raises ``ValueError`` (one line, naming the model) on any failure.
    """
    tokenizer = _from_pretrained(AutoTokenizer, name_or_path, local_only=local_only)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"pretrained model {name_or_path!r}: its tokenizer is not a fast (tokenizers) tokenizer")
    return tokenizer.backend_tokenizer


def _remap_rows(rows: torch.Tensor, codec: RowCodec, generator: torch.Generator, noise_std: float) -> torch.Tensor:
    """``codec.vocab_size`` rows: pretrained row ``t`` at ``text_base + t`` for every text
    id ``t``, and the mean text row plus ``N(0, noise_std^2)`` noise (seeded, so that
    the codec's own tokens start distinct) everywhere else."""
    text = rows.detach()[: codec.text_vocab].float()
    out = text.mean(dim=0).expand(codec.vocab_size, *text.shape[1:]).clone()
    if noise_std > 0:
        out += noise_std * torch.randn(out.shape, generator=generator)
    out[codec.text_base : codec.text_base + codec.text_vocab] = text
    return out.to(device=rows.device, dtype=rows.dtype)


def pretrained_for_codec(
    name_or_path: str,
    codec: RowCodec,
    *,
    local_only: bool = True,
    seed: int = 0,
    lora: LoraSettings | None = None,
) -> torch.nn.Module:
    """A pretrained causal LM with its vocabulary re-mapped to ``codec``'s, ready for DP fine-tuning.

    ``codec`` must have been built with this model's tokenizer
    (:func:`load_pretrained_tokenizer`). The input embedding and the output head get
    ``codec.vocab_size`` rows (:func:`_remap_rows`); they are separate parameters
    afterwards, and the config says so (``tie_word_embeddings=False``), because DP-SGD
    cannot clip a weight shared by two layers per example, and so that the saved model
    reloads untied. The codec's pad/bos/eos ids (0/1/2) replace the model's.

    With ``lora``, peft adapters are added (:func:`add_lora`) and the embedding and head
    stay trainable: the codec's new rows must learn. Without it every parameter trains,
    so every layer must be one the book-keeping clipper handles (``nn.Linear``,
    ``nn.Embedding``, norms): GPT-2's ``Conv1D`` is not, and asks for LoRA.

    Loading follows :func:`load_pretrained_tokenizer` (a directory never touches the
    network). Weights are loaded in float32, the dtype DP-SGD updates are applied in.
    Raises ``ValueError`` on a model that cannot be used.
    """
    # transformers 5 looks for a peft adapter config without passing ``local_files_only``
    # on (it would query the hub for a hub name): pass it to that lookup explicitly.
    model = _from_pretrained(AutoModelForCausalLM, name_or_path, local_only=local_only, dtype=torch.float32,
                             adapter_kwargs={"local_files_only": local_only})
    config = model.config
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and positions < codec.max_length:
        raise ValueError(f"pretrained model {name_or_path!r}: {positions} positions, "
                         f"but the codec's records take up to {codec.max_length} tokens")
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(embed, nn.Embedding) or not isinstance(head, nn.Linear):
        raise ValueError(f"pretrained model {name_or_path!r}: needs an nn.Embedding input embedding "
                         "and an nn.Linear output head")
    rows = min(embed.num_embeddings, head.out_features)
    if codec.text_vocab > rows:
        raise ValueError(f"pretrained model {name_or_path!r}: its tokenizer has {codec.text_vocab} ids but the "
                         f"model only {rows} embedding rows (was the codec built with this model's tokenizer?)")

    generator = torch.Generator().manual_seed(seed)
    noise_std = float(getattr(config, "initializer_range", 0.02))
    # New Parameters on the existing modules: subclasses (scaled embeddings...) keep
    # their forward, and a tied pair becomes two separate weights.
    embed.weight = nn.Parameter(_remap_rows(embed.weight, codec, generator, noise_std))
    embed.num_embeddings = codec.vocab_size
    embed.padding_idx = codec.pad_id
    head.weight = nn.Parameter(_remap_rows(head.weight, codec, generator, noise_std))
    if head.bias is not None:
        head.bias = nn.Parameter(_remap_rows(head.bias, codec, generator, 0.0))
    head.out_features = codec.vocab_size
    config.vocab_size = codec.vocab_size
    config.tie_word_embeddings = False
    for target in (config, model.generation_config):
        target.pad_token_id, target.bos_token_id, target.eos_token_id = codec.pad_id, codec.bos_id, codec.eos_id

    if lora is not None:
        model = add_lora(model, lora)
        for module in (embed, head):
            module.requires_grad_(True)
    try:
        _trainable_layers(model)
    except ValueError as exc:
        hint = "" if lora is not None else "; fine-tune it with LoRA adapters instead (--lora)"
        raise ValueError(f"pretrained model {name_or_path!r}: DP-SGD cannot clip it per example: {exc}{hint}") from exc
    return model


def add_lora(model: torch.nn.Module, settings: LoraSettings) -> torch.nn.Module:
    """Wrap ``model`` with peft LoRA adapters (every other parameter frozen).

    The adapters are ``nn.Linear`` pairs, which the DP clipper handles even where the
    adapted layer is not (GPT-2's ``Conv1D``, frozen under LoRA).
    """
    try:
        from peft import LoraConfig, get_peft_model
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    except ImportError as exc:
        raise ValueError("LoRA needs peft: pip install 'dp-auditor[lora]'") from exc
    from transformers.pytorch_utils import Conv1D

    model_type = getattr(model.config, "model_type", None)
    targets = settings.targets or TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if not targets:
        raise ValueError(f"no default LoRA target modules for model type {model_type!r}: name them")
    matched = [module for name, module in model.named_modules()
               if any(name == t or name.endswith("." + t) for t in targets)]
    if not matched:
        raise ValueError(f"LoRA targets {sorted(targets)} match no module of the model")
    cfg = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, target_modules=list(targets), lora_dropout=0.0,
                     fan_in_fan_out=any(isinstance(m, Conv1D) for m in matched), task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        # peft reads transformers' deprecated ``is_gradient_checkpointing``: not ours to fix.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        return get_peft_model(model, cfg)


def _peft_lora(model: torch.nn.Module) -> Any:
    """The LoRA config of a peft-wrapped model, or None for a plain model."""
    try:
        from peft import PeftModel
    except ImportError:  # no peft, so no peft model
        return None
    return model.peft_config[model.active_adapter] if isinstance(model, PeftModel) else None


def merge_for_saving(model: torch.nn.Module) -> torch.nn.Module:
    """A plain transformers model to ``save_pretrained``: LoRA adapters merged into the
    weights they adapt (the embedding and head were trained in place); other models as they are.

    A pretrained model's ``auto_map`` (a pointer to remote code) is dropped: our run's
    config.json names only the built-in architecture, and loading it never runs code.
    """
    plain = model.merge_and_unload() if _peft_lora(model) is not None else model
    if getattr(plain.config, "auto_map", None) is not None:
        del plain.config.auto_map
    return plain


def describe_pretrained(name_or_path: str, model: torch.nn.Module) -> dict:
    """What ``privacy.json`` records about a fine-tuned pretrained model (before
    :func:`merge_for_saving`, which folds the adapters away)."""
    lora = _peft_lora(model)
    return {
        "pretrained": str(name_or_path),
        "parameters": parameter_count(model),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "lora": None if lora is None else {"rank": lora.r, "alpha": lora.lora_alpha,
                                           "targets": sorted(lora.target_modules)},
        "note": _PRETRAINED_NOTE,
    }
