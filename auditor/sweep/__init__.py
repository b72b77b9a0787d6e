"""``auditor sweep``: a grid of training settings, each point a full run, and the privacy-utility frontier.

``config`` (the typed sweep config), ``grid`` (its points), ``point`` (one point,
resumable, in its own process), ``runner`` (scheduling, progress, results),
``frontier`` (Pareto frontier and best point: pure), ``results`` (sweep.json),
``plots`` and ``html`` (sweep.html), ``layout`` (the sweep directory).
"""
