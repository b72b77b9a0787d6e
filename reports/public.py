"""The public form of the report record: what a release bundle may show.

The report in the run directory is for the data owner; the one in a release
bundle is read by anyone. The public form keeps every audit number and the
verdict, and removes what only serves the owner or helps an attacker:

- every key naming a seed (``seeds``, ``seed``, ``gen_seed``, ...): a seed that
  drove any randomness lets a reader replay it (DESIGN.md rule 6);
- hashes of private data (``data_hash``, ``data_hmac``) and of files holding
  them (``config_hash``, ``inputs["run.json"]``): they confirm a guessed table,
  and the config holds the seed;
- the machine paths of the private inputs (``reproducibility.config`` keys
  named ``path``);
- salted hashes (``hash`` keys, ``h:...``): only useful next to the run's
  private salt or the 0600 reveal files, which the public never has;
- the ``provenance`` of each audit (keyed digests of the files it read, the canary
  manifest among them): they serve the owner's stale-audit check and, like the
  salted hashes, are of use only next to the private salt;
- the per-row ``examples`` of the PII and distance audits: a row index, a
  masked value and the class ``replayed`` tell a reader which synthetic value
  repeats a training record (that its owner is in the training data), and the
  synthetic rows closest to training records with their distances locate
  training records near public points. The counts and distributions stay.
- ``synthetic_rows`` of the copy and replay-against-control blocks: the
  positions of synthetic rows that reproduce a training record say whose
  record it is (and that its owner is in the training data). The counts stay.

``release`` at the top level lists what was removed, so a reader knows the
record is the public form and not a damaged one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

PRIVATE_RUN_KEYS = ("data_hash", "data_hmac", "config_hash")
PRIVATE_INPUTS = ("run.json",)
EXAMPLE_SECTIONS = ("pii", "distance")
# keys dropped wherever they are: salted hashes, row positions, keyed provenance digests
PRIVATE_KEYS = ("hash", "synthetic_rows", "provenance")


def _is_seed_key(key: str) -> bool:
    return "seed" in key.lower()


def _drop_keys(obj: Any, where: str, removed: list[str], *, drop) -> Any:
    """``obj`` without the mapping keys for which ``drop(key)`` holds (recursively); paths go to ``removed``."""
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            path = f"{where}.{key}" if where else str(key)
            if drop(str(key)):
                removed.append(path)
                continue
            out[key] = _drop_keys(value, path, removed, drop=drop)
        return out
    if isinstance(obj, list):
        return [_drop_keys(v, f"{where}[]", removed, drop=drop) for v in obj]
    return obj


def public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The public form of a report record (see the module doc); ``record`` is not changed.

    Returns:
        A copy of ``record`` without seeds, private hashes, input paths, salted
        hashes and per-row examples, plus ``release: {"form": "public", "removed": [...]}``
        (the removed keys as dotted paths, ``[]`` marking list items, without duplicates).
    """
    removed: list[str] = []
    out = _drop_keys(copy.deepcopy(dict(record)), "", removed, drop=lambda k: _is_seed_key(k) or k in PRIVATE_KEYS)
    repro = out.get("reproducibility")
    if isinstance(repro, dict):
        for key in PRIVATE_RUN_KEYS:
            if repro.pop(key, None) is not None:
                removed.append(f"reproducibility.{key}")
        inputs = repro.get("inputs")
        if isinstance(inputs, dict):
            for name in PRIVATE_INPUTS:
                if inputs.pop(name, None) is not None:
                    removed.append(f"reproducibility.inputs.{name}")
        if isinstance(repro.get("config"), dict):
            repro["config"] = _drop_keys(repro["config"], "reproducibility.config", removed,
                                         drop=lambda k: k == "path")
    for name in EXAMPLE_SECTIONS:
        section = out.get(name)
        if isinstance(section, dict) and section.get("examples"):
            section["examples"] = []
            removed.append(f"{name}.examples")
    out["release"] = {"form": "public", "removed": list(dict.fromkeys(removed))}
    return out
