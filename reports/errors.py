"""Errors the report layer raises for bad input.

They subclass ``ValueError`` (sklearn style) and carry a one-line message that
names the bad file or key and never a data value; ``auditor`` maps them to its
``UserError`` (exit 2) without ``reports`` importing ``auditor``.
"""


class ReportInputError(ValueError):
    """A run directory file is missing, unreadable, or breaks the audit contract."""


class PolicyError(ValueError):
    """A policy file or preset is unknown, unreadable, or has a bad key or threshold."""
