"""dp-auditor: train DP synthesizers, plant canaries, attack, scan, report."""

__version__ = "0.1.0"
