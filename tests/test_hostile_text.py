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


HOSTILE = "a`<img src=x onerror=alert(1)>[click](https?x=1)`*b*_c_ | d &amp; ~~e~~"  # no ':' (a column name)


def _html_of(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def test_markdown_shows_user_names_literally(tmp_path):
    from report_runs import dp_run, write_run
    from reports.build import build_report
    from reports.markdown import render_markdown
    from reports.policy import policy_from_mapping

    files = dp_run()
    files["model/privacy.json"]["not_learned"] = [f"{HOSTILE}: fresh fakes (pattern), drawn independently"]
    record = build_report(write_run(tmp_path, files), policy=policy_from_mapping({"max_epsilon": 10}, name=HOSTILE))
    page = _html_of(render_markdown(record))
    assert "<img" not in page and "<a " not in page and "<s>" not in page
    assert page.count("<em>") == 1  # our own footer line only
    import html

    literal = html.escape(HOSTILE, quote=False)
    assert f"<code>{literal}</code>" in page  # the policy name, in its code span
    assert literal in page.split("Not learned")[1]  # the column name, as text


def test_formula_like_synthetic_cells_are_recorded_not_changed(tmp_path, capsys, caplog):
    """CSV injection: cells and names starting with = + - @ are written as is and counted in generation.json."""
    import csv
    import json

    from cli_helpers import run_cli

    kinds = ["=SUM(A1:A2)", "@home", "-", "plain"]
    rows = [f"{kinds[i % 4]},{-12.5 if i % 3 else 3}" for i in range(240)]
    data = tmp_path / "d.csv"
    data.write_text("=kind,n\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", data, "--out", run, "--model", "tiny", "--no-dp", "--epochs", "1",
                           "--batch-size", "32", "--no-canaries", "--domains", "data", "--seed", "1", "-q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "generate", run, "-n", "60", "-q")
    assert code == 0, err
    with open(run / "synthetic.csv", newline="", encoding="utf-8") as fh:
        header, *cells = list(csv.reader(fh))
    assert header == ["=kind", "n"]
    assert {r[0] for r in cells} <= set(kinds) | {"<other>"}  # written as generated, no quote prefix
    expected = {"=kind": sum(r[0] in ("=SUM(A1:A2)", "@home", "-") for r in cells)}
    assert expected["=kind"] > 0 and all(r[1].lstrip("-").replace(".", "").isdigit() for r in cells)
    recorded = json.loads((run / "generation.json").read_text())["formula_like_cells"]
    assert recorded == {"header": ["=kind"], "cells": expected, "total": expected["=kind"],
                        "written": "as is (not neutralised)"}
    assert "may run them as formulas" in caplog.text
