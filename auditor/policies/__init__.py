"""The built-in policy presets (``internal``, ``external``) shipped as YAML beside this file."""

from __future__ import annotations

from pathlib import Path

from reports.errors import PolicyError
from reports.policy import Policy
from reports.policy import load_policy as _load

from auditor.errors import UserError

PRESETS_DIR = Path(__file__).parent


def load_policy(name_or_path: str | Path) -> Policy:
    """A preset by name (``internal``, ``external``) or a policy YAML file.

    Raises:
        UserError: unknown preset, unreadable file, unknown key or bad threshold.
    """
    try:
        return _load(name_or_path, presets_dir=PRESETS_DIR)
    except PolicyError as exc:
        raise UserError(str(exc)) from exc


def policy_file(name_or_path: str | Path | None) -> Path | None:
    """The user's file that ``load_policy`` reads (an existing file wins over a preset name); None otherwise."""
    if name_or_path is None or not Path(name_or_path).is_file():
        return None
    return Path(name_or_path)
