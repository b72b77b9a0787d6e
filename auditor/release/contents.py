"""What a release bundle holds: an allow-list of public files, never whole directories.

Bundle layout::

    synthetic.csv | synthetic.jsonl      the synthetic data, as generated (canaries scrubbed)
    report.json report.html report.md    the report in its public form (reports.public)
    model/                               with --with-model only:
      model.safetensors                  the weights (or model-NNNNN-of-NNNNN.safetensors
      model.safetensors.index.json         shards and their index)
      config.json                        the architecture (transformers)
      codec.json                         the row codec: schema and token classes
      privacy.json                       the DP record: epsilon, delta, accountant state

Anything else in the run directory is private or redundant and stays there:
the manifest, salt, split, run.json (seeds, data hash), training logs,
checkpoints, generation_config.json (derived from config.json), audit files
(their content is in the report).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from auditor.errors import UserError
from auditor.rundir import RunDir

SYNTHETIC_FILES = ("synthetic.csv", "synthetic.jsonl")
REPORT_FILES = ("report.json", "report.html", "report.md")
MODEL_FILES = ("config.json", "codec.json", "privacy.json")
WEIGHT_FILES = re.compile(r"model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json")


@dataclass(frozen=True)
class Copy:
    """One file of the run copied verbatim: ``source`` -> ``target`` (relative to the bundle)."""

    source: Path
    target: str


def model_copies(run: RunDir) -> list[Copy]:
    """The public files of ``run/model`` (see the module doc)."""
    names = [n for n in MODEL_FILES if (run.model / n).is_file()]
    missing = [n for n in MODEL_FILES if n not in names]
    weights = sorted(p.name for p in run.model.iterdir() if p.is_file() and WEIGHT_FILES.fullmatch(p.name))
    if missing or not any(w.endswith(".safetensors") for w in weights):
        what = ", ".join(missing + ([] if weights else ["model.safetensors"]))
        raise UserError(f"{run.model}: missing {what}; cannot bundle the model")
    return [Copy(run.model / n, f"model/{n}") for n in names + weights]


def copies(run: RunDir, *, with_model: bool) -> list[Copy]:
    """The verbatim copies of a bundle: the synthetic data, and the model's public files on request."""
    synthetic = run.existing_synthetic()
    out = [Copy(synthetic, synthetic.name)]
    if with_model:
        out += model_copies(run)
    return out
