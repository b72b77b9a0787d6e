"""Hand-made run directories shaped per docs/audit-contract.md, for report tests.

All data is fake. ``SECRETS`` are the raw canary secrets and training PII that
the canary manifest / training data would hold; the audit files hold only their
masked forms, as the contract requires.
"""

from __future__ import annotations

import json
from pathlib import Path

from auditor.audits import registered_audits
from reports.atomic import write_private
from reports.provenance import SALT_FILE, current_digests, read_salt, stamp

CANARY_SECRETS = ["my pin is 40817", "code 5713-2209-4461", "ssn 871-22-4093"]
TRAIN_PII = ["Quentin Abernathy-Vole", "zelda.q.marsh@example.org", "555-013-7788"]
SECRETS = CANARY_SECRETS + TRAIN_PII

def _control(train_hits: int, control_hits: int, *, rows: tuple[int, ...] = ()) -> dict:
    """An excess-over-control block (attacks.excess) for 4000 training and 1000 holdout records."""
    from attacks.excess import excess_over_control

    block = excess_over_control(train_hits=train_hits, train_n=4000, control_hits=control_hits, control_n=1000)
    return block | {"synthetic_rows": list(rows), "synthetic_rows_total": len(rows)}


_ROC = {"fpr": [0.0, 0.001, 0.01, 0.1, 0.5, 1.0], "tpr": [0.0, 0.004, 0.02, 0.13, 0.55, 1.0]}


def _signal(auc, lo, hi, t001, t01, t1, note=None):
    return {"auc": auc, "auc_ci": [lo, hi], "tpr_at_fpr": {"0.001": t001, "0.01": t01, "0.1": t1},
            "tpr_note": {"0.001": note, "0.01": None, "0.1": None}, "advantage": round(2 * auc - 1, 4),
            "roc": _ROC}


def dp_run() -> dict[str, dict]:
    """Files of a DP run (ε = 8) with weak leakage. Key: path relative to the run dir."""
    return {
        "run.json": {
            "config": {"epochs": 3, "target_epsilon": 8.0, "model": "tiny"},
            "seeds": {"global": 7, "split": 7, "canaries": 11},
            "versions": {"python": "3.11.2", "torch": "2.5.1", "opacus": "1.6.0", "dp-auditor": "0.1.0"},
            "data_hash": "sha256:1f2e3d", "config_hash": "sha256:9a8b7c", "created": "2026-11-26T06:00:00Z",
        },
        "canaries.json": {"canaries": [{"id": f"c{i}", "secret": s} for i, s in enumerate(CANARY_SECRETS)]},
        "model/privacy.json": {
            "dp": True, "epsilon": 7.93, "delta": 1e-5, "accountant": "prv", "epsilon_rdp": 8.41,
            "noise_multiplier": 0.87, "max_grad_norm": 1.0, "sample_rate": 0.016, "steps": 570,
            "epochs": 3, "n_records": 4000, "outside_guarantee": ["schema inferred from data (column kinds)"],
        },
        "generation.json": {"requested": 2000, "generated": 2000, "valid": 1934, "invalid": 66,
                            "validity": 0.967, "scrubbed_canary_rows": 0, "scrubbed_pii_rows": 3},
        "audit/exposure.json": {
            "max_exposure": 3.71, "max_exposure_single_copy": 2.14, "log2_space": 26.58,
            "by_repetition": [
                {"repetitions": 1, "n": 10, "exposure_mean": 0.93, "exposure_max": 2.14,
                 "max_possible": 26.58, "method": "exact"},
                {"repetitions": 10, "n": 10, "exposure_mean": 1.62, "exposure_max": 3.71,
                 "max_possible": 26.58, "method": "interpolation"},
            ],
            "memorization": {"by_repetition": [{"repetitions": 1, "p_value": 0.62},
                                               {"repetitions": 10, "p_value": 0.21}],
                             "min_detected_repetitions": None},
            "extraction": {"greedy_extracted": 0, "beam_extracted": 0, "beam_width": 8, "n_canaries": 30,
                           "synthetic_full_occurrences": 0, "synthetic_partial_occurrences": 1,
                           "scrubbed_rows": 0},
            "canaries": [
                {"id": "c0", "format": "pin5", "repetitions": 10, "inserted": True, "secret": "** *** ** *****",
                 "hash": "h:0a1b2c3d4e5f", "exposure": 3.71, "method": "interpolation",
                 "greedy_extracted": False, "beam_rank": None},
                {"id": "c1", "format": "card12", "repetitions": 1, "inserted": True,
                 "secret": "**** ****-****-4461", "hash": "h:1b2c3d4e5f60", "exposure": 2.14,
                 "method": "exact", "greedy_extracted": False, "beam_rank": None},
            ],
        },
        "audit/mia.json": {
            "signals": {"loss": _signal(0.512, 0.497, 0.527, None, 0.012, 0.108, "too few non-members"),
                        "reference": _signal(0.531, 0.516, 0.546, 0.002, 0.017, 0.121)},
            "canary_signals": {"loss": _signal(0.58, 0.41, 0.75, None, 0.0, 0.2, "too few non-members")},
            "best_signal": "reference", "n_members": 4000, "n_nonmembers": 1000,
        },
        "audit/dp_audit.json": {
            "claimed_epsilon": 7.93, "delta": 1e-5, "significance": 0.05,
            "bounds": [{"name": "canaries", "method": "one-run", "epsilon_lower_bound": 0.41, "details": {}},
                       {"name": "mia-reference", "method": "clopper-pearson", "epsilon_lower_bound": 0.18,
                        "details": {}}],
            "max_lower_bound": 0.41, "violation": False,
            "message": "empirical lower bound 0.41 is below the claimed 7.93",
        },
        "audit/duplicates.json": {
            "learned": {"columns": ["diagnosis", "age"], "n_records": 4000, "duplicated_records": 5,
                        "duplicate_groups": 2, "max_copies": 3,
                        "by_copies": [{"copies": 2, "groups": 1, "records": 2, "epsilon": 15.86,
                                       "delta": 2 * 2.718281828 ** 7.93 * 1e-5},
                                      {"copies": 3, "groups": 1, "records": 3, "epsilon": 23.79, "delta": 1.0}]},
            "exact": {"columns": ["diagnosis", "age", "name"], "n_records": 4000, "duplicated_records": 0,
                      "duplicate_groups": 0, "max_copies": 1, "by_copies": []},
            "epsilon": 7.93, "delta": 1e-5,
        },
        "audit/anonymity.json": {
            "singling_out": {"train": 0.24, "control": 0.22, "excess": 0.02, "excess_ci": [-0.07, 0.11],
                             "risk": 0.0256, "risk_ci": [-0.128, 0.158], "n_train": 187, "n_control": 187,
                             "mode": "multivariate", "n_cols": 3, "n_predicates": 187},
            "linkability": {"train": 0.003, "control": 0.0, "excess": 0.003, "excess_ci": [-0.015, 0.021],
                            "risk": 0.003, "risk_ci": [-0.015, 0.021], "n_train": 300, "n_control": 300,
                            "columns_a": ["diagnosis", "cost"], "columns_b": ["age"], "n_neighbors": 1},
            "inference": {"by_secret": {"age": {"train": 0.84, "control": 0.84, "excess": 0.0,
                                                "excess_ci": [-0.08, 0.08], "risk": 0.0, "risk_ci": [-0.52, 0.47],
                                                "n_train": 300, "n_control": 300}},
                          "confidence_each": 0.95, "worst_secret": "age", "worst_risk": 0.0,
                          "worst_risk_ci": [-0.52, 0.47]},
            "n_compared": 400, "n_attacks": 300, "n_synthetic": 2000, "confidence": 0.95,
            "columns": ["diagnosis", "age", "cost"], "method": "Giomi et al. 2023",
        },
        "audit/distance.json": {
            "dcr_train_share": 0.507, "dcr_train_share_ci": [0.485, 0.529], "exact_copy_rate": 0.0005,
            "exact_copies": 1, "nndr": {"median": 0.83},
            "dcr_hist": {"bins": [0, 0.5, 1.0, 1.5, 2.0], "train": [120, 800, 700, 380],
                         "holdout": [110, 790, 720, 380]},
            "dcr_quantiles": {"train": {"0.05": 0.31}, "holdout": {"0.05": 0.33}},
            "mia": {"auc": 0.508, "tpr_at_fpr": {"0.001": None, "0.01": 0.011, "0.1": 0.103}},
            "attribute_inference": {"target": "diagnosis", "train": 0.41, "control": 0.39, "risk": 0.033,
                                    "risk_ci": [0.0, 0.08]},
            "copies": {"exact": _control(0, 0), "near": _control(1, 0, rows=(311,)),
                       "learned_columns": ["age", "diagnosis", "notes"]},
        },
        "audit/pii.json": {
            "engine": {"name": "presidio", "version": "2.2.355"},
            "entities_scanned": ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN"],
            "entities_not_scanned": ["IBAN_CODE"],
            "synthetic": {"findings": 42, "by_column": {
                "name": {"PERSON": {"findings": 30, "rows": 29, "score": {"min": 0.85, "max": 0.85}}},
                "email": {"EMAIL_ADDRESS": {"findings": 12, "rows": 12, "score": {"min": 1.0, "max": 1.0}}}}},
            "replay": {"replayed": 2, "replayed_in_context": 1, "novel": 39},
            "holdout_control": {"replayed": 2, "replayed_in_context": 0},
            "replay_vs_control": {"unique": _control(4, 1), "in_context": _control(0, 0)},
            "exact_row_copies": 0, "quasi_identifier_copies": 3,
            "examples": [{"row": 12, "column": "name", "entity": "PERSON", "class": "replayed", "score": 0.85,
                          "masked": "Q*** A***", "hash": "h:77aa88bb99cc"},
                         {"row": 40, "column": "email", "entity": "EMAIL_ADDRESS", "class": "novel", "score": 1.0,
                          "masked": "z***@e***.org", "hash": "h:1234abcd5678"}],
        },
        "audit/quality.json": {
            "validity": 0.967, "fidelity": 0.874,
            "column_shapes": {"age": 0.91, "diagnosis": 0.88, "notes": 0.79},
            "pair_trends": {"score": 0.852, "pairs": [{"columns": ["age", "diagnosis"], "method": "contingency",
                                                       "score": 0.852}]},
            "text": {"notes": {"length_similarity": 0.81, "vocabulary_overlap": 0.77}},
            "tstr": {"target": "diagnosis", "metric": "balanced_accuracy", "synthetic": 0.61, "real": 0.7,
                     "ratio": 0.871},
        },
    }


def nodp_run() -> dict[str, dict]:
    """Files of a non-DP run with heavily repeated canaries: it leaks."""
    files = dp_run()
    files["model/privacy.json"].update(dp=False, epsilon=None, delta=None, epsilon_rdp=None, accountant=None,
                                        noise_multiplier=0.0, max_grad_norm=None)
    exp = files["audit/exposure.json"]
    exp["max_exposure"], exp["max_exposure_single_copy"] = 24.9, 12.5
    exp["by_repetition"][1].update(exposure_mean=21.3, exposure_max=24.9)
    exp["extraction"].update(greedy_extracted=9, beam_extracted=14)
    exp["memorization"]["min_detected_repetitions"] = 10
    mia = files["audit/mia.json"]["signals"]
    mia["reference"] = _signal(0.78, 0.765, 0.795, 0.09, 0.21, 0.52)
    files["audit/dp_audit.json"].update(claimed_epsilon=None, max_lower_bound=3.2,
                                        message="no claimed ε (non-DP run); lower bound 3.2")
    files["audit/pii.json"]["replay"].update(replayed=17, replayed_in_context=9)
    files["audit/pii.json"]["replay_vs_control"] = {"unique": _control(40, 1),
                                                    "in_context": _control(9, 0, rows=(3, 17, 40))}
    files["audit/distance.json"]["copies"]["exact"] = _control(2, 0, rows=(88, 1203))
    files["audit/distance.json"]["dcr_train_share"] = 0.71
    return files


FIXTURE_SALT = "fixture-salt-0123456789abcdef"


def write_run(root: Path, files: dict[str, dict], *, omit: tuple[str, ...] = ()) -> Path:
    """Write ``files`` under ``root`` (skipping paths in ``omit``); return ``root``.

    As the pipeline does, generation.json and each audit file record the digests of
    the run's inputs (``reports.provenance``), keyed with the run's salt (a fixed one
    when ``root`` has none yet).
    """
    if not (root / SALT_FILE).exists():
        write_private(root / SALT_FILE, FIXTURE_SALT)
    salt = read_salt(root)
    stamped = ["generation.json"] + sorted(rel for rel in files if rel.startswith("audit/"))
    for rel in sorted(files, key=lambda r: (r in stamped, stamped.index(r) if r in stamped else 0)):
        if rel in omit:
            continue
        data = files[rel]
        if rel in stamped:
            # what generate and each audit record (auditor.audits.register_audit)
            inputs = {spec.name: spec.inputs for spec in registered_audits()}
            names = ("model", "synthetic") if rel == "generation.json" else inputs[Path(rel).stem]
            data = stamp(data, current_digests(root, names, salt))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return root
