"""The sweep directory: where a sweep keeps its config, its points and its results.

```
DIR/
  sweep_config.json   the SweepConfig (seed resolved) and the data's HMAC (keyed with .salt)
  .salt               the sweep's secret key of that HMAC (mode 0600)
  sweep.json          the results: one row per point, frontiers, the chosen setting
  sweep.html          the same for a reader (self-contained)
  runs/<point id>/    a full run directory per point (DESIGN.md "Run directory")
  status/<point id>.json  the point's state, stage attempts and seconds, error
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SweepDir:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "sweep_config.json"

    @property
    def record(self) -> Path:
        return self.root / "sweep.json"

    @property
    def html(self) -> Path:
        return self.root / "sweep.html"

    @property
    def lock(self) -> Path:
        return self.root / ".sweep.lock"

    @property
    def salt_file(self) -> Path:
        return self.root / ".salt"

    def tool_paths(self) -> tuple[Path, ...]:
        """Every path a sweep writes in its directory."""
        return (self.config, self.record, self.html, self.lock, self.salt_file, self.root / "runs",
                self.root / "status")

    def run_dir(self, point_id: str) -> Path:
        return self.root / "runs" / point_id

    def status(self, point_id: str) -> Path:
        return self.root / "status" / f"{point_id}.json"
