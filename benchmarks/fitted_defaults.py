"""Fitted defaults (auditor/defaults.py) against the old fixed ones, on several tables.

For each table and setting: train (small preset, epsilon 8), generate as many rows as
the training records, run the quality audit; prints steps, epsilon, the seconds of
training and generation, validity, fidelity and the TSTR ratio. The old fixed defaults
were batch 128, lr 3e-3, 20 epochs, physical batch 128, magnitude min-p 0.

    python benchmarks/fitted_defaults.py [--tables identity10k,cancer] [--settings fitted,old]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import pandas as pd

OLD = ["--batch-size", "128", "--lr", "3e-3", "--epochs", "20", "--physical-batch-size", "128"]
OLD_SAMPLE = ["--magnitude-min-p", "0"]


def identity_table(n: int, seed: int = 7) -> pd.DataFrame:
    """Faker identities: eight direct identifiers (faked by detection), four quasi-identifiers, two more columns.

    Income depends on age and plan, so the fidelity's pair trends have a relation to learn.
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        age, plan = rng.randint(18, 90), rng.choice(["basic", "basic", "plus", "pro"])
        income = (800 + 40 * age) * {"basic": 1.0, "plus": 1.8, "pro": 3.0}[plan] * rng.uniform(0.8, 1.2)
        rows.append({"name": fake.name(), "street_address": fake.street_address(), "email": fake.email(),
                     "username": fake.user_name(), "password": fake.password(), "phone": fake.phone_number(),
                     "credit_card": fake.credit_card_number(), "ssn": fake.ssn(), "plan": plan,
                     "birthday": fake.date_of_birth().isoformat(), "zip": fake.zipcode(),
                     "gender": rng.choice(["F", "M"]), "age": str(age), "income": f"{income:.2f}"})
    return pd.DataFrame(rows)


def cancer_table() -> pd.DataFrame:
    """scikit-learn's bundled breast-cancer table: 569 rows, 30 numbers and the class."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame


# table -> (make it, extra train flags); the TSTR target is the first categorical column (plan, target)
TABLES = {"identity10k": (lambda: identity_table(10_000), []),
          "cancer": (cancer_table, ["--no-canaries"])}


def run(cmd: list[str]) -> float:
    import subprocess
    import sys

    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "auditor", *cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", default="cancer,identity10k")
    ap.add_argument("--settings", default="fitted,old")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="fitted-defaults-"))
    print(f"{'table':<12} {'setting':<7} {'n':>6} {'E':>5} {'B':>5} {'lr':>7} {'steps':>5} {'eps':>5} "
          f"{'train s':>8} {'gen s':>6} {'valid':>6} {'fid':>5} {'ref':>5} {'tstr':>5}", flush=True)
    for table in args.tables.split(","):
        make, extra = TABLES[table]
        data = work / f"{table}.csv"
        if not data.exists():
            make().to_csv(data, index=False)
        for setting in args.settings.split(","):
            out = work / f"{table}-{setting}"
            flags = OLD if setting == "old" else []
            t_train = run(["train", str(data), "--out", str(out), "--seed", "0", "--force", "-q", *extra, *flags])
            t_gen = run(["generate", str(out), "-q", *(OLD_SAMPLE if setting == "old" else [])])
            run(["audit", str(out), "--only", "quality", "-q"])
            cfg = json.loads((out / "run.json").read_text())["config"]["train"]
            priv = json.loads((out / "model" / "privacy.json").read_text())
            q = json.loads((out / "audit" / "quality.json").read_text())
            gen = json.loads((out / "generation.json").read_text())
            tstr = (q.get("tstr") or {}).get("ratio")
            print(f"{table:<12} {setting:<7} {priv['n_records']:>6} {cfg['epochs']:>5} {cfg['batch_size']:>5} "
                  f"{cfg['lr']:>7.4f} {priv['steps']:>5} {priv['epsilon']:>5.2f} {t_train:>8.0f} {t_gen:>6.0f} "
                  f"{gen['validity']:>6.1%} {q['fidelity']:>5.3f} {q['reference_fidelity']:>5.3f} "
                  f"{tstr if tstr is None else round(tstr, 3)!s:>5}", flush=True)


if __name__ == "__main__":
    main()
