"""Membership inference, DP auditing (epsilon lower bounds), synthetic-data attacks.

Audits (each ``run(..., config) -> dict``, the JSON of ``docs/audit-contract.md``):

- ``attacks.mia``: model-based membership inference (``mia.json``); signals in
  ``attacks.signals``, metrics in ``attacks.metrics``.
- ``attacks.dp_audit``: empirical epsilon lower bounds next to the claimed epsilon
  (``dp_audit.json``); the math in ``attacks.bounds`` and ``attacks.intervals``.
- ``attacks.distance``: DCR, NNDR, exact copies, distance MIA and attribute
  inference on the synthetic data (``distance.json``); the mixed-type distance in
  ``attacks.encoding`` and ``attacks.ngrams``, nearest neighbours in
  ``attacks.neighbours``, attribute-inference risk in ``attacks.inference``.
"""
