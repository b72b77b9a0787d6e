"""Column relations of synthetic demo data against the real demo table.

Per diagnosis: mean cost, mean age, 10th/90th age percentiles and share, real vs
synthetic, with relative errors (issue 2's check: "mean cost by diagnosis and age
range by diagnosis within 20%").

Run: python scripts/demo_relations.py demo-run/synthetic.csv
"""

import sys

import pandas as pd

from auditor.data import DEMO_CSV


def relations(frame: pd.DataFrame) -> pd.DataFrame:
    g = frame.groupby("diagnosis")
    return pd.DataFrame({"cost": g.cost.mean(), "age": g.age.mean(), "age_p10": g.age.quantile(0.1),
                         "age_p90": g.age.quantile(0.9), "share": g.size() / len(frame)})


def main(path: str) -> None:
    real, synth = relations(pd.read_csv(DEMO_CSV)), relations(pd.read_csv(path))
    err = ((synth - real) / real).abs()
    print(pd.concat({"real": real.round(1), "synthetic": synth.round(1), "relative error": err.round(2)},
                    axis=1).to_string())
    print(f"max relative error: cost {err.cost.max():.3f}, age {err.age.max():.3f}, "
          f"age range {err[['age_p10', 'age_p90']].max().max():.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
