"""Release bundles: what of a run may be published, and a scan of it for private traces.

``release(RUN, OUT, with_model=...)`` copies an allow-list of public files
(``contents``), writes the report in its public form (``reports.public``), scans
the result with every detector of ``leaks.DETECTORS`` against the run's private
traces (``traces``), and publishes it only when nothing is found.
"""

from auditor.release.bundle import Released, release
from auditor.release.leaks import DETECTORS, Finding, scan_bundle
from auditor.release.traces import PrivateTraces, gather

__all__ = ["DETECTORS", "Finding", "PrivateTraces", "Released", "gather", "release", "scan_bundle"]
