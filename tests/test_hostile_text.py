"""User-controlled text in what we write: plot labels, Markdown, CSV cells."""

from matplotlib.text import Text

from auditor.sweep import plots as sweep_plots
from reports import plots

NAME = r"cost $\foo{x}$ usd"


def _shown(text: str) -> str:
    """What matplotlib draws for ``text``: literal unless it parses it as mathtext."""
    shown, is_math = Text()._preprocess_math(text)
    assert not is_math
    return shown


def test_a_column_name_with_dollars_is_drawn_literally():
    fig = plots.score_bars({NAME: 0.5, "age": 0.9})
    assert plots.to_data_uri(fig).startswith("data:image/png;base64,")  # mathtext raised here before
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert [_shown(t) for t in labels] == [NAME, "age"]
    fig = plots.series_plot([1, 2], {NAME: [0.1, 0.2]}, xlabel="$x$", ylabel=NAME)
    plots.to_data_uri(fig)
    assert _shown(fig.axes[0].get_ylabel()) == NAME and _shown(fig.axes[0].get_xlabel()) == "$x$"
    fig = plots.roc_plot({NAME: {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.6, 1.0]}})
    plots.to_data_uri(fig)


def test_a_sweep_model_path_with_dollars_is_drawn_literally():
    rows = [{"id": f"p{i}$", "dp": True, "settings": {"epsilon": e, "model": r"/models/$\bad$"},
             "metrics": {"epsilon": e, "mia_auc": 0.5}, "utility": 0.5 + e / 100} for i, e in enumerate((1.0, 4.0))]
    fig = sweep_plots.metric_vs_epsilon(rows, "utility", ylabel="utility")
    plots.to_data_uri(fig)
    assert _shown(fig.axes[0].get_legend().get_texts()[0].get_text()) == r"model=/models/$\bad$"
    fig = sweep_plots.frontier_plot(rows, "epsilon", ["p0$"], "p0$", xlabel="ε", ylabel="utility")
    plots.to_data_uri(fig)
