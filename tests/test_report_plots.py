"""reports.plots: every plot builds from record-shaped data and encodes as an inline PNG."""

import base64

import pytest
from matplotlib.figure import Figure
from report_runs import dp_run
from reports import plots


def _is_png_uri(uri):
    prefix = "data:image/png;base64,"
    return uri.startswith(prefix) and base64.b64decode(uri[len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_plot_encodes_as_png():
    files = dp_run()
    hist = files["audit/distance.json"]["dcr_hist"]
    figures = [
        plots.exposure_plot(files["audit/exposure.json"]["by_repetition"]),
        plots.roc_plot({n: s["roc"] for n, s in files["audit/mia.json"]["signals"].items()}),
        plots.dcr_histogram(hist["bins"], hist["train"], hist["holdout"]),
        plots.score_bars({"age": 0.9, "notes": None}),
        plots.series_plot([1, 4, 8], {"AUC": [0.5, 0.52, None]}, xlabel="ε", ylabel="AUC", logx=True, hline=0.55),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert all(_is_png_uri(plots.to_data_uri(f)) for f in figures)


def test_mismatched_lengths_are_errors():
    with pytest.raises(ValueError, match="len\\(bins\\)"):
        plots.dcr_histogram([0, 1], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="series 'a' has 2 values for 3"):
        plots.series_plot([1, 2, 3], {"a": [1, 2]}, xlabel="x", ylabel="y")
