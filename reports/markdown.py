"""The Markdown rendering: a short summary fit for a pull-request comment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reports.summary import VERDICT_TEXT, fmt, fmt_epsilon, headline

_ICON = {True: "✅", False: "❌", None: ""}


# ASCII punctuation that can start inline Markdown (emphasis, code, links, raw HTML, entities,
# strikethrough) or end a table cell; a backslash makes each literal (CommonMark 2.4).
_INLINE = re.compile(r"([\\`*_\[\]<>&|~])")


def _one_line(text: Any) -> str:
    return re.sub(r"[\r\n]+", " ", str(text))


def _cell(text: Any) -> str:
    """User-controlled text (column, file and policy names, values) as literal Markdown on one line."""
    return _INLINE.sub(r"\\\1", _one_line(text))


def _code(text: Any) -> str:
    """``text`` as a code span, fenced by more backticks than it holds in a row (CommonMark 6.1)."""
    text = _one_line(text).strip()
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _checks(record: Mapping[str, Any]) -> list[str]:
    lines = ["| | Check | Value | Limit | Key |", "|---|---|---:|---:|---|"]
    for c in record["checks"]:
        value = fmt(c["value"]) if c["value"] is not None else f"n/a ({c['note']})"
        lines.append(f"| {_ICON[c['passed']]} {'PASS' if c['passed'] else 'FAIL'} | {_cell(c['label'])} "
                     f"| {_cell(value)} | {c['op']} {fmt(c['threshold'])} | {_code(c['name'])} |")
    return lines


def _copy_blocks(distance: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    copies = distance.get("copies")
    if not copies:
        return []
    return [(what, copies[key]) for key, what in (("exact", "Training records copied exactly"),
                                                   ("near", "Training records copied on the learned columns"))]


def _copies_line(what: str, block: Mapping[str, Any]) -> str:
    """One excess-over-control block (``attacks.excess``) in words, naming the synthetic rows."""
    line = (f"**{what}:** {fmt(block['train_hits'])} of {fmt(block['train_n'])} vs. holdout control "
            f"{fmt(block['control_hits'])} of {fmt(block['control_n'])}; excess {fmt(block['excess'])} "
            f"(95% CI {fmt(block['excess_ci'][0])}–{fmt(block['excess_ci'][1])}, p = {fmt(block['p_value'])})")
    rows = block.get("synthetic_rows")
    if rows:
        more = block["synthetic_rows_total"] - len(rows)
        line += "; synthetic rows (0-based) " + ", ".join(str(r) for r in rows) + (f" and {more} more" if more else "")
    return line


def _sections(record: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    not_learned = (record.get("privacy") or {}).get("not_learned")
    if not_learned:
        lines.append("**Not learned** (fresh fakes, independent of the data): "
                     + ", ".join(_cell(item.split(":")[0]) for item in not_learned))
    if "dp_verify" in record:
        v = record["dp_verify"]
        flag = " — **VIOLATION: the training code does not deliver the claimed ε**" if v["violation"] else ""
        lines.append(f"**DP-SGD implementation (white-box, `auditor verify-dp`):** ε lower bound "
                     f"{fmt_epsilon(v['epsilon_lower_bound'])} at {fmt(v['confidence'])} confidence, estimate "
                     f"{fmt_epsilon(v['epsilon_estimate'])}, vs claimed {fmt_epsilon(v['claimed_epsilon'])} "
                     f"({_cell(v['engine'])} clipping, {fmt(v['processes'])} process(es)){flag}")
    if "canaries" in record:
        cn = record["canaries"]
        lines.append("**Canary exposure by repetitions** (bits, max possible "
                     f"{fmt(cn['log2_space'])}): " + ", ".join(
                         f"{fmt(b['repetitions'])}×: mean {fmt(b['exposure_mean'])} / max {fmt(b['exposure_max'])}"
                         for b in cn["by_repetition"]))
        ex = cn["extraction"]
        lines.append(f"**Extraction:** greedy {fmt(ex['greedy_extracted'])}, beam {fmt(ex['beam_extracted'])} "
                     f"of {fmt(ex['n_canaries'])} canaries")
    if "mia" in record:
        m = record["mia"]
        best = m["signals"][m["best_signal"]]
        lines.append(f"**Membership inference** (best signal {_code(m['best_signal'])}): AUC {fmt(best['auc'])} "
                     f"(95% CI {fmt(best['auc_ci'][0])}–{fmt(best['auc_ci'][1])}), "
                     f"TPR at 0.1% FPR {fmt(best['tpr_at_fpr']['0.001'])}, "
                     f"at 1% FPR {fmt(best['tpr_at_fpr']['0.01'])}")
    if "audit" in record:
        a = record["audit"]
        flag = " — **VIOLATION: the claimed ε is wrong**" if a["violation"] else ""
        lines.append(f"**Empirical ε lower bound:** {fmt_epsilon(a['max_lower_bound'])} vs claimed "
                     f"{fmt_epsilon(a['claimed_epsilon'])}{flag}")
        if a.get("power_note"):
            lines.append(f"**Audit power:** {a['power_note']}")
    if "distance" in record:
        d = record["distance"]
        lines.append(f"**Distance to closest record:** {fmt(d['dcr_train_share'])} of synthetic rows closer to "
                     f"train than holdout (95% CI {fmt(d['dcr_train_share_ci'][0])}–"
                     f"{fmt(d['dcr_train_share_ci'][1])}); exact copies {fmt(d['exact_copies'])}")
        lines += [_copies_line(what, block) for what, block in _copy_blocks(d)]
    if "pii" in record:
        p = record["pii"]
        replay, control = p["replay"], p["holdout_control"]
        line = f"**PII:** {fmt(p['synthetic']['findings'])} findings"
        if replay is not None:
            line += f"; replayed {fmt(replay['replayed'])} + {fmt(replay['replayed_in_context'])} in context"
        if control is not None:
            line += (f" (holdout control {fmt(control['replayed'])} + "
                     f"{fmt(control['replayed_in_context'])})")
        lines.append(line)
        control_block = p.get("replay_vs_control")
        if control_block:
            lines += [_copies_line(what, control_block[key]) for key, what in
                      (("unique", "Training records whose unique PII value reappears"),
                       ("in_context", "Training records re-identified in context"))]
    if "duplicates" in record:
        du = record["duplicates"]["learned"]
        lines.append(f"**Duplicated training records** (learned columns): {fmt(du['duplicated_records'])} of "
                     f"{fmt(du['n_records'])}, up to {fmt(du['max_copies'])} copies")
    if "anonymity" in record:
        an = record["anonymity"]
        risks = [(label, an[key] if key != "inference" else
                  (an[key] or {}).get("by_secret", {}).get((an[key] or {}).get("worst_secret")))
                 for label, key in (("singling out", "singling_out"), ("linkability", "linkability"),
                                    ("inference", "inference"))]
        lines.append("**Risk beyond the control** (95% CI): " + "; ".join(
            f"{label} {fmt(r['risk'])} ({fmt(r['risk_ci'][0])}–{fmt(r['risk_ci'][1])})"
            for label, r in risks if r))
    if "quality" in record:
        q = record["quality"]
        tstr = q.get("tstr")
        utility = (f"; TSTR {tstr['metric']} {fmt(tstr['synthetic'])} vs real {fmt(tstr['real'])} "
                   f"(ratio {fmt(tstr['ratio'])})") if tstr else ""
        if tstr and tstr.get("auc"):
            utility += f", AUC {fmt(tstr['auc']['synthetic'])} vs {fmt(tstr['auc']['real'])}"
        rare = (q.get("rare_categories") or {}).get("worst")
        if rare:
            utility += (f"; worst rare category {_cell(rare['column'])}={_cell(rare['category'])} "
                        f"{fmt(rare['synthetic'])} vs real {fmt(rare['real'])}")
        cond = (q.get("conditional_means") or {}).get("worst")
        if cond:
            utility += (f"; worst conditional mean {_cell(cond['numeric'])} | {_cell(cond['column'])}="
                        f"{_cell(cond['category'])} off by {fmt(cond['error'])} sd")
        validity = f"validity {fmt(q['validity'])}, " if q.get("validity") is not None else ""
        lines.append(f"**Fidelity:** {validity}fidelity {fmt(q['fidelity'])}{utility}")
    return [f"- {line}" for line in lines]


def render_markdown(record: Mapping[str, Any]) -> str:
    """The summary: verdict, failing checks first, headline numbers, one line per audit."""
    verdict = VERDICT_TEXT[record["verdict"]]
    policy = record.get("policy")
    title = f"## Privacy report: {verdict}"
    if policy:
        title += f" (policy {_code(policy['name'])})"
    lines = [title, ""]
    if record.get("audit", {}).get("violation"):
        lines += ["> **DP audit violation:** the empirical ε lower bound exceeds the claimed ε.", ""]
    if record.get("dp_verify", {}).get("violation"):
        lines += ["> **DP implementation violation:** `auditor verify-dp` measured an ε lower bound above the "
                  "claimed ε: the training code does not deliver its guarantee.", ""]
    if record["checks"]:
        lines += _checks(record) + [""]
    if record.get("verdict_basis"):
        lines += [_one_line(record["verdict_basis"]["text"]), ""]  # our words and policy keys: no user text
    else:
        lines += ["No policy applied: no release decision.", ""]
    lines += ["| What | Result |", "|---|---|"]
    lines += [f"| {_cell(h.label)} {_ICON[h.passed]} | {_cell(h.value)}{_cell(f' ({h.detail})' if h.detail else '')} |"
              for h in headline(record)]
    lines += [""] + _sections(record)
    lines += ["", f"_Report schema {record['schema_version']}; details, plots and definitions in report.html._", ""]
    return "\n".join(lines)
