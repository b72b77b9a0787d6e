"""Canaries: secret formats, planting, scoring, exposure, extraction, scrubbing."""
