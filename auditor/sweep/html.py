"""``sweep.html``: one self-contained page (inline CSS and PNG plots, no network, no JavaScript).

It shares the run report's stylesheet (``reports/templates/report.css``) so a
sweep and its points' reports look alike; the template lives here as a string
because package data of ``auditor`` covers only ``data/`` and ``policies/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, StrictUndefined

from auditor.sweep import plots
from auditor.sweep.results import COSTS
from reports.html import TEMPLATES
from reports.plots import to_data_uri
from reports.summary import fmt, fmt_epsilon, fmt_pct

_EXTRA_CSS = """
table.points { font-size: 12.5px; }
table.points th, table.points td { padding: 4px 6px; }
tr.chosen td { background: #ecfdf3; font-weight: 600; }
tr.failed td { background: #fef3f2; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 8px 16px; }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Privacy–utility sweep: {{ headline }}</title>
<style>
{{ css }}
</style>
</head>
<body>
<main style="max-width: 1240px">
<h1>Privacy–utility sweep</h1>
<p class="muted">{{ r.counts.total }} points ({{ r.counts.done }} finished{% if r.counts.failed %}, {{ r.counts.failed }} failed{% endif %}) · utility: {{ r.utility.label }}{% if r.policy %} · policy <code>{{ r.policy.name }}</code>{% endif %} · seed {{ r.config.train.seed }} shared by every point · created {{ r.created }}</p>

<section class="summary {{ state }}" id="summary">
  <span class="verdict {{ state }}" id="verdict">{{ headline }}</span>
  <p id="choice">{{ r.choice.text }}</p>
  <p id="outside-guarantee">Outside the DP guarantee: {{ r.outside_guarantee | join("; ") }}.</p>
  {% if r.choice.blockers %}
  <p>{% if r.choice.id %}Points that do not pass{% else %}What blocks each point{% endif %}:</p>
  <ul class="failing-list" id="blockers">
  {% for pid, reasons in r.choice.blockers.items() %}<li><code>{{ pid }}</code>: {{ reasons | join("; ") if reasons else "no failing check" }}</li>
  {% endfor %}</ul>
  {% endif %}
</section>
{% if failed %}
<div class="alert" id="failed-points"><strong>{{ failed | length }} point(s) did not finish.</strong> Re-run the same command to retry them; finished points are kept.
<ul>{% for p in failed %}<li><code>{{ p.id }}</code>: {{ p.error.type }} in {{ p.error.stage or "setup" }}: {{ p.error.message }}</li>{% endfor %}</ul></div>
{% endif %}

<h2 id="points">Every point</h2>
<p>One row per setting; every number comes from the point's own report (<code>runs/&lt;point&gt;/report.json</code>). ε is the proven DP guarantee (none without DP); the attack columns are what the audits measured. Frontier: the point is on the Pareto frontier of ε (ε) or of membership-inference AUC (attack) against {{ r.utility.label }}.</p>
<table class="points" id="points-table">
<tr><th>Point</th><th>Settings</th><th>ε</th><th>Validity</th><th>Fidelity</th><th>TSTR ratio</th><th>Max exposure (bits)</th><th>MIA AUC</th><th>TPR at 1% FPR</th><th>ε lower bound</th><th>Replayed PII</th><th>Verdict</th><th>Time (s)</th><th>Frontier</th></tr>
{% for p in r.points %}{% set m = p.metrics %}
<tr class="{{ 'chosen' if p.id == r.choice.id else ('failed' if p.state != 'done' else '') }}">
<td><code>{{ p.id }}</code></td>
<td>{% if not p.dp %}no DP{% if p.settings %}, {% endif %}{% endif %}{% for k, v in p.settings.items() %}{{ k }} = {{ v | fmt }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
{% if m %}
<td class="num">{{ m.epsilon | eps if m.dp else "none" }}</td>
<td class="num">{{ m.validity | pct }}</td>
<td class="num">{{ m.fidelity | fmt }}</td>
<td class="num">{{ m.tstr_ratio | fmt }}</td>
<td class="num">{{ m.max_exposure | fmt }}{% if m.log2_space is not none %} / {{ m.log2_space | fmt }}{% endif %}</td>
<td class="num">{{ m.mia_auc | fmt }}</td>
<td class="num">{{ m.mia_tpr_at_1pct_fpr | pct }}</td>
<td class="num">{{ m.epsilon_lower_bound | eps }}{% if m.dp_audit_violation %} <span class="badge fail">VIOLATION</span>{% endif %}</td>
<td class="num">{{ m.replayed_pii | fmt }}</td>
<td>{% if m.verdict == "pass" %}<span class="badge pass">PASS</span>{% elif m.verdict == "fail" %}<span class="badge fail">FAIL</span>{% else %}n/a{% endif %}</td>
{% else %}
<td colspan="10">{% if p.error %}failed in {{ p.error.stage or "setup" }}: {{ p.error.type }}{% else %}not run{% endif %}</td>
{% endif %}
<td class="num">{{ p.seconds | fmt }}</td>
<td>{{ p.frontier | join(", ") }}</td>
</tr>
{% endfor %}
</table>
<p class="muted">Time: {{ r.time.point_seconds | fmt }} s of compute over all points (summed over the attempts that finished a stage); this invocation took {{ r.time.wall_seconds | fmt }} s of wall time. Each point's report: <code>runs/&lt;point&gt;/report.html</code>.</p>

<h2 id="plots">Plots</h2>
<div class="grid2">
{% for p in plot_list %}<figure style="margin: 0"><img class="plot" src="{{ p.uri }}" alt="{{ p.title }}"><figcaption class="muted">{{ p.caption }}</figcaption></figure>
{% endfor %}
</div>

<h2 id="frontier">Pareto frontiers</h2>
<p>A point is on a frontier when no other point has both a smaller privacy cost and a higher {{ r.utility.label }}: moving off the frontier buys nothing.</p>
<ul>
{% for name, ids in r.frontier.items() %}<li>{{ costs[name] }} vs {{ r.utility.label }}: {% if ids %}{% for i in ids %}<code>{{ i }}</code>{% if not loop.last %} → {% endif %}{% endfor %}{% else %}no point has both values{% endif %}</li>
{% endfor %}
</ul>
</main>
</body>
</html>
"""


def render_html(record: Mapping[str, Any]) -> str:
    """The page for a ``sweep.json`` record."""
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    env.filters["eps"] = fmt_epsilon
    env.filters["pct"] = fmt_pct
    choice, policy = record["choice"], record["policy"]
    if choice["id"]:
        state, headline = "pass", f"CHOSEN: {choice['id']}"
    elif policy:
        state, headline = "fail", "NO SETTING PASSES"
    else:
        state, headline = "no-policy", "NO POLICY"
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8") + _EXTRA_CSS
    return env.from_string(_TEMPLATE).render(
        r=record, state=state, headline=headline, css=css, costs=COSTS, plot_list=_plots(record),
        failed=[p for p in record["points"] if p["state"] == "failed"])


def _plots(record: Mapping[str, Any]) -> list[dict[str, str]]:
    rows, label, chosen = record["points"], record["utility"]["label"], record["choice"]["id"]
    figures = [
        ("utility vs ε", f"{label} against ε; dashed: trained without DP.",
         plots.metric_vs_epsilon(rows, "utility", ylabel=label)),
        ("exposure vs ε", "Largest canary exposure (bits) against ε; dashed: trained without DP.",
         plots.metric_vs_epsilon(rows, "max_exposure", ylabel="max canary exposure (bits)")),
        ("frontier ε", f"Pareto frontier of ε against {label} (ringed); the star is the chosen setting.",
         plots.frontier_plot(rows, "epsilon", record["frontier"]["epsilon"], chosen,
                             xlabel="ε (smaller is more private)", ylabel=label)),
        ("frontier attack", f"Pareto frontier of attack success (MIA AUC) against {label}, baselines included.",
         plots.frontier_plot(rows, "mia_auc", record["frontier"]["attack"], chosen,
                             xlabel="membership-inference AUC (0.5 = coin flip)", ylabel=label)),
    ]
    return [{"title": t, "caption": c, "uri": to_data_uri(f)} for t, c, f in figures]
