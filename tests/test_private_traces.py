"""No private trace in model/ or the report: no exact losses, nothing sized by the longest record (issue 13.2).

Tiny runs on the first 300 demo records (fake data).
"""

import csv
import io
import json

from auditor.data import DEMO_SCHEMA
from auditor.pipeline import report, train
from auditor.config import DataConfig, RunConfig, TrainConfig
from canaries.config import CanaryConfig
from cli_helpers import run_cli


def _needles(losses: list[float]) -> dict[str, bytes]:
    """The forms an exact loss takes when written: JSON (repr) or rounded to 7 or 9 digits."""
    out = {f"loss {i} (repr)": repr(loss).encode() for i, loss in enumerate(losses)}
    out |= {f"loss {i} ({f})": format(loss, f).encode() for i, loss in enumerate(losses) for f in (".9g", ".7g")}
    return out


def test_the_needles_find_a_written_loss(tmp_path):
    losses = [3.382485284137726, 2.9876543219876]
    (tmp_path / "log.json").write_text(json.dumps([{"step": 0, "loss": losses[0]}]))
    assert _needles(losses)["loss 0 (repr)"] in (tmp_path / "log.json").read_bytes()


def test_exact_losses_never_reach_the_model_or_the_report(tmp_path, demo_small_csv):
    """The exact-loss attack (the step-0 batch and initial weights, then the logged step-0
    loss pins a record's value) needs an exact loss: none is written to model/ or the report."""
    losses = []
    out = tmp_path / "r"
    config = RunConfig(data=DataConfig(schema=str(DEMO_SCHEMA)),
                       train=TrainConfig(model="tiny", epochs=1.0, batch_size=32, lr=0.01, seed=3, device="cpu"),
                       canaries=CanaryConfig(repetitions=(1, 4), audit_canaries=10))
    train(demo_small_csv, out, config=config, progress=lambda step, steps, loss, eps: losses.append(loss))
    report(out)
    public = [p for p in [*(out / "model").rglob("*"), *out.glob("report.*")] if p.is_file()]
    assert {p.name for p in public} >= {"report.json", "report.html", "report.md", "config.json", "privacy.json"}
    leaks = [f"{name} in {p.name}" for p in public for name, n in _needles(losses).items() if n in p.read_bytes()]
    assert len(losses) > 5 and leaks == []


def test_config_json_does_not_depend_on_the_longest_record(tmp_path, demo_small_csv, capsys):
    lines = demo_small_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    longer = tmp_path / "longer.csv"
    # the same table, but one record's note made much longer than any other
    rows = list(csv.reader(io.StringIO("".join(lines))))
    note = rows[0].index("notes") if "notes" in rows[0] else rows[0].index("note")
    rows[5][note] = " ".join(["patient reported persistent symptoms after the visit"] * 6)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    longer.write_text(buf.getvalue(), encoding="utf-8")
    common = ["--model", "tiny", "--batch-size", "32", "--epochs", "0.2", "--no-canaries", "--domains", "data",
              "--seed", "3", "--quiet"]
    for name, data in (("short", demo_small_csv), ("long", longer)):
        code, _, err = run_cli(capsys, "train", data, "--out", tmp_path / name, *common)
        assert code == 0, err
    short, long_ = ((tmp_path / n / "model" / "config.json").read_bytes() for n in ("short", "long"))
    assert short == long_
    assert json.loads(short)["max_position_embeddings"] >= 64
