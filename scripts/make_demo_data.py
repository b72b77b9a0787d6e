"""Write the demo table ``auditor/data/demo.csv``: fake but realistic patient records.

Every value is made up (Faker, en_US, seeded); the file is committed and this
script reproduces it byte for byte. Columns, in order:

diagnosis    one of six, with unequal frequencies (the conditioning column, first)
age          integer 18..90, its mean depends strongly on the diagnosis
cost         2 decimals; lognormal around a per-diagnosis base, rising with age
birth_date   %Y-%m-%d, consistent with age as of 2026-01-01
name, email  email derived from the name
phone        ddd-ddd-dddd
ssn          ddd-dd-dddd
card_number  16 digits, Luhn-valid, dddd dddd dddd dddd
address      "street, city, ST zip" on one line
note         a short clinical note (5-9 words) that mentions the diagnosis

Usage: ``python scripts/make_demo_data.py [--rows 2400] [--seed 2026] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from faker import Faker

AS_OF = date(2026, 1, 1)

# diagnosis: (share of records, mean age, sd of age, base cost in USD)
DIAGNOSES: dict[str, tuple[float, float, float, float]] = {
    "hypertension": (0.30, 62.0, 10.0, 900.0),
    "diabetes": (0.22, 55.0, 12.0, 2500.0),
    "asthma": (0.18, 30.0, 12.0, 600.0),
    "migraine": (0.14, 36.0, 10.0, 400.0),
    "flu": (0.10, 40.0, 18.0, 150.0),
    "fracture": (0.06, 45.0, 20.0, 4000.0),
}
COST_PER_YEAR = 0.01  # cost grows ~1% per year of age around 45
COST_SIGMA = 0.35  # lognormal noise

NOTES: dict[str, tuple[str, ...]] = {
    "hypertension": (
        "Hypertension stable on {bp_drug}, recheck in {n} weeks.",
        "Hypertension: low salt diet advised.",
        "Hypertension with dizziness, {bp_drug} dose reduced.",
        "Hypertension follow up, home readings improved.",
    ),
    "diabetes": (
        "Diabetes: A1c improving, continue metformin.",
        "Diabetes with numb feet, foot exam ordered.",
        "Diabetes poorly controlled, insulin started.",
        "Routine diabetes check, no changes today.",
    ),
    "asthma": (
        "Asthma flare after a cold, steroids given.",
        "Asthma well controlled, refill albuterol inhaler.",
        "Night cough; asthma action plan updated.",
        "Exercise asthma, use inhaler before activity.",
    ),
    "migraine": (
        "Worsening migraine headaches, follow up in {n} weeks.",
        "Migraine with aura, trial of {mig_drug} started.",
        "Migraine frequency down, continue treatment.",
        "Severe migraine last week, advised {mig_drug}.",
    ),
    "flu": (
        "Flu for {n} days, fever and cough, rest.",
        "Positive flu test, oseltamivir prescribed.",
        "Flu improving, cleared to return to work.",
        "Flu with high fever, supportive care advised.",
    ),
    "fracture": (
        "Wrist fracture after a fall, cast applied.",
        "Ankle fracture healing well, start physical therapy.",
        "Hip fracture repaired, walker for {n} weeks.",
        "Rib fracture follow up, avoid heavy lifting.",
    ),
}
BP_DRUGS = ("lisinopril", "amlodipine", "losartan")
MIG_DRUGS = ("sumatriptan", "topiramate", "propranolol")
CARD_TYPES = ("visa16", "mastercard", "discover")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com")


def birth_date_for(age: int, day: float) -> date:
    """A birth date at which someone is exactly ``age`` on :data:`AS_OF`; ``day`` in [0, 1) picks which."""
    latest = AS_OF.replace(year=AS_OF.year - age)  # turns ``age`` on AS_OF
    earliest = AS_OF.replace(year=AS_OF.year - age - 1) + timedelta(days=1)
    return earliest + timedelta(days=int(day * ((latest - earliest).days + 1)))


def email_for(first: str, last: str, rng: np.random.Generator) -> str:
    first, last = first.lower(), last.lower().replace("'", "").replace(" ", "")
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}{last[0]}{rng.integers(1, 99)}", f"{first}_{last[0]}", f"{last}.{first[0]}"]
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def make_rows(n: int, seed: int) -> list[list[str]]:
    """``n`` demo records as lists of strings, in the column order of the module docstring."""
    rng = np.random.default_rng(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    names = list(DIAGNOSES)
    shares = np.array([DIAGNOSES[d][0] for d in names])
    rows = []
    for diagnosis in rng.choice(names, size=n, p=shares / shares.sum()):
        _, mean_age, sd_age, base = DIAGNOSES[diagnosis]
        age = int(np.clip(round(rng.normal(mean_age, sd_age)), 18, 90))
        cost = base * np.exp(COST_PER_YEAR * (age - 45) + rng.normal(0.0, COST_SIGMA))
        first, last = fake.first_name(), fake.last_name()
        card = fake.credit_card_number(card_type=str(rng.choice(CARD_TYPES)))
        note = str(rng.choice(NOTES[diagnosis])).format(
            n=rng.integers(2, 7), bp_drug=rng.choice(BP_DRUGS), mig_drug=rng.choice(MIG_DRUGS)
        )
        rows.append(
            [
                str(diagnosis),
                str(age),
                f"{cost:.2f}",
                birth_date_for(age, rng.random()).isoformat(),
                f"{first} {last}",
                email_for(first, last, rng),
                f"{rng.integers(201, 990)}-{rng.integers(200, 1000)}-{rng.integers(0, 10000):04d}",
                fake.ssn(),
                " ".join(card[i : i + 4] for i in range(0, 16, 4)),
                f"{rng.integers(1, 10000)} {fake.street_name()}, {fake.city()}, {fake.state_abbr(include_territories=False)} {fake.zipcode()}",
                note,
            ]
        )
    return rows


COLUMNS = ["diagnosis", "age", "cost", "birth_date", "name", "email", "phone", "ssn", "card_number", "address", "note"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "auditor" / "data" / "demo.csv")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(make_rows(args.rows, args.seed))
    print(f"wrote {args.rows} records to {args.out}")


if __name__ == "__main__":
    main()
