"""The privacy ledger: the one writer of ``model/privacy.json``.

A run's privacy claim is assembled here and nowhere else:

- the mechanism history: every mechanism run on the training records, in the order
  they ran (DP domain selection, then DP-SGD), each a Poisson-subsampled Gaussian
  ``(noise multiplier, sample rate, steps)``, composed into one epsilon;
- the delta split: the share of delta a mechanism spends outside the accountant (the
  domain selection's release threshold); the accountant gets the rest;
- epsilon at each accountant: the configured one (PRV by default) and RDP beside it
  (``auditor.dp.accounting``), from the recorded history, so it survives resume;
- what lies outside the guarantee and what was not learned: one sentence per fact,
  each defined once in :data:`FACTS` and added by its id (:meth:`PrivacyLedger.note`,
  :func:`note_after_training`), never written out by the caller;
- the printing of epsilon: :func:`reports.summary.fmt_epsilon` (shared with the
  reports, which may not import ``auditor``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from auditor.dp.accounting import epsilon_of, noise_for_epsilon
from auditor.rundir import read_json, write_json
from reports.summary import fmt_epsilon

OUTSIDE = "outside_guarantee"
NOT_LEARNED = "not_learned"


@dataclass(frozen=True)
class FactText:
    """One entry of :data:`FACTS`: the ``privacy.json`` list it goes to and its sentence
    (a ``str.format`` template over the fact's parameters)."""

    entry: str
    sentence: str


FACTS: dict[str, FactText] = {
    "schema_inferred": FactText(
        OUTSIDE, "schema of column {column!r} inferred from the private data without DP ({facts})"),
    "domains_from_data": FactText(
        OUTSIDE, "domains (categories, numeric magnitudes) of {columns} taken from the data (opt-in --domains data)"),
    "record_count_public": FactText(
        OUTSIDE, "the number of training records (n = {n}, planted canary rows included) is treated as public: it "
                 "sets the sampling rate, the number of steps, the learning-rate schedule, the default delta and "
                 "the default number of generated rows, and is written in this file"),
    "no_dp": FactText(OUTSIDE, "no DP guarantee: trained without DP (--no-dp)"),
    "reproducible_noise": FactText(
        OUTSIDE, "the noise seed is recorded (--reproducible-noise): anyone with the run directory can reproduce "
                 "the noise and the sampling; no DP guarantee for the published model"),
    "pii_replay_scrub": FactText(OUTSIDE, "PII replay scrub of the synthetic data consulted the training data"),
    "sweep_selection": FactText(
        OUTSIDE, "this run is one point of a sweep: choosing a setting among the points by their results on the "
                 "private data (utility, fidelity, audits) is outside the guarantee; the chosen point's epsilon "
                 "counts neither the selection nor the training of the other points (Papernot & Steinke 2022)"),
    "identifier_detection": FactText(
        OUTSIDE, "identifier detection read a sample of up to {sample} values of every column with Presidio "
                 "({model}) without DP: faked {faked}; quasi-identifiers kept learned: {quasi} "
                 "(--learn-identifiers opts out)"),
    "fake_column": FactText(NOT_LEARNED, "{column}: fresh fakes ({fake}), drawn independently of the data"),
}
"""Fact id -> where it goes and its one sentence. Add a fact here, then ``note`` it by id."""

CANARY_ROWS_FIELD_ONLY = "learned on their secret's field only (their other fields are filler)"
SHIPPED_TOKENIZER = "shipped byte-level BPE fitted on public text (data-independent)"
NO_GUARANTEE = "no DP guarantee"


@dataclass(frozen=True)
class Fact:
    """A fact of :data:`FACTS` with its parameters; ``sentence`` is what ``privacy.json`` says."""

    id: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def entry(self) -> str:
        return FACTS[self.id].entry

    @property
    def sentence(self) -> str:
        return FACTS[self.id].sentence.format(**dict(self.params))


def fact(fact_id: str, **params: Any) -> Fact:
    """The fact ``fact_id`` of :data:`FACTS` with ``params``; a ValueError for an unknown id or a missing parameter."""
    if fact_id not in FACTS:
        raise ValueError(f"unknown privacy fact {fact_id!r} (known: {', '.join(FACTS)})")
    made = Fact(fact_id, tuple(sorted(params.items())))
    try:
        made.sentence
    except KeyError as exc:
        raise ValueError(f"privacy fact {fact_id!r} needs the parameter {exc.args[0]!r}") from None
    return made


@dataclass(frozen=True)
class Mechanism:
    """One mechanism charged to the budget: a Poisson-subsampled Gaussian."""

    name: str
    noise_multiplier: float
    sample_rate: float
    steps: int

    @property
    def entry(self) -> tuple[float, float, int]:
        return (self.noise_multiplier, self.sample_rate, self.steps)


@dataclass
class PrivacyLedger:
    """What a run spent of its privacy budget and what lies outside it.

    Args:
        dp: whether the run claims a DP guarantee at all.
        accountant: the accountant epsilon is reported with (``prv`` or ``rdp``).
        delta: the run's whole delta (None without DP).
    """

    dp: bool
    accountant: str = "prv"
    delta: float | None = None
    mechanisms: list[Mechanism] = field(default_factory=list)
    delta_reserved: dict[str, float] = field(default_factory=dict)
    details: dict[str, dict] = field(default_factory=dict)  # mechanism name -> its parameters (domain_selection)
    facts: list[Fact] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    identifier_detection: dict[str, Any] | None = None  # auditor.identifiers.Detection.to_dict(): no values

    def __post_init__(self) -> None:
        if self.dp and self.delta is None:
            raise ValueError("a DP ledger needs the run's delta")

    @classmethod
    def for_training(cls, config, *, delta: float | None) -> "PrivacyLedger":
        """An empty ledger for a ``TrainConfig`` (its DP switch and accountant) at ``delta``."""
        return cls(dp=config.dp, accountant=config.accountant, delta=delta if config.dp else None)

    # ------------------------------------------------------------------ budget

    def reserve_delta(self, mechanism: str, *, share: float) -> float:
        """Set aside ``share`` of delta for ``mechanism`` (spent outside the accountant); returns it."""
        reserved = self.delta * share
        self.delta_reserved[mechanism] = reserved
        return reserved

    @property
    def delta_accountant(self) -> float | None:
        """The delta the accountant's epsilon holds at: delta less every reserved share."""
        if self.delta is None:
            return None
        return self.delta - sum(self.delta_reserved.values())

    def charge(self, name: str, *, noise_multiplier: float, sample_rate: float, steps: int,
               details: Mapping[str, Any] | None = None) -> None:
        """Add a mechanism that ran on the training records to the history."""
        self.mechanisms.append(Mechanism(name, float(noise_multiplier), float(sample_rate), int(steps)))
        if details is not None:
            self.details[name] = dict(details)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """``(noise multiplier, sample rate, steps)`` of every mechanism charged, in order."""
        return [m.entry for m in self.mechanisms]

    def history_with(self, *pending: tuple[float, float, int]) -> list[tuple[float, float, int]]:
        """The history as it would be after ``pending`` (mechanisms with 0 steps are left out)."""
        return self.history + [tuple(p) for p in pending if p[2]]

    def epsilon(self, accountant: str | None = None, *, pending: tuple[tuple[float, float, int], ...] = ()) -> float:
        """epsilon of the history (plus ``pending`` mechanisms) at ``delta_accountant``."""
        return epsilon_of(self.history_with(*pending), delta=self.delta_accountant,
                          accountant=accountant or self.accountant)

    def noise_multiplier_for(self, target_epsilon: float, *, sample_rate: float, steps: int) -> float:
        """The smallest DP-SGD noise multiplier that keeps the whole history within ``target_epsilon``."""
        return noise_for_epsilon(target_epsilon=target_epsilon, delta=self.delta_accountant, sample_rate=sample_rate,
                                 steps=steps, prior=self.history, accountant=self.accountant)

    # ------------------------------------------------------------------ facts

    def note(self, fact_id: str, **params: Any) -> None:
        """Record a fact of :data:`FACTS` (once: the same fact again is a no-op)."""
        self.add(fact(fact_id, **params))

    def add(self, *facts: Fact) -> None:
        """Record facts made with :func:`fact` (each once)."""
        for made in facts:
            if made not in self.facts:
                self.facts.append(made)

    def record_training(self, *, config, noise_multiplier: float | None, sample_rate: float, steps: int,
                        n_records: int, engine: Mapping[str, Any]) -> None:
        """The training settings and engine; charges DP-SGD's ``steps`` with a DP ``config``."""
        if config.dp:
            self.charge("dp_sgd", noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps)
        self.training = {"max_grad_norm": config.max_grad_norm if config.dp else None, "sample_rate": sample_rate,
                         "steps": steps, "epochs": config.epochs, "batch_size": config.batch_size,
                         "n_records": n_records, "noise_multiplier": noise_multiplier if config.dp else None,
                         "target_epsilon": config.epsilon, "engine": dict(engine)}

    def record_identifier_detection(self, detection: Mapping[str, Any]) -> None:
        """The identifier detection's decisions (``Detection.to_dict()``: entity types and shares, no values),
        written as ``identifier_detection``; the caller also adds the ``identifier_detection`` fact."""
        self.identifier_detection = dict(detection)

    def record_inputs(self, **inputs: Any) -> None:
        """What the run learned from and how (tokenizer, pretrained model, canary rows, reproducible noise)."""
        self.inputs.update(inputs)

    # ------------------------------------------------------------------ privacy.json

    def guarantee(self, epsilon: float | None = None) -> str:
        """The one sentence that states the guarantee (``epsilon``: the accountant's, when already computed)."""
        if not self.dp:
            return NO_GUARANTEE
        epsilon = self.epsilon() if epsilon is None else epsilon
        return (f"(epsilon, delta) = ({fmt_epsilon(epsilon)}, {self.delta:.3g}) for the whole training: "
                f"epsilon is the accountant's at delta_accountant = {self.delta_accountant:.3g}, and delta adds "
                f"the domain selection's threshold share {self.delta - self.delta_accountant:.3g}")

    def to_record(self) -> dict[str, Any]:
        """The content of ``privacy.json`` (docs/audit-contract.md lists the keys reports rely on)."""
        t = self.training
        record: dict[str, Any] = {"dp": self.dp, "accountant": self.accountant, "max_grad_norm": t["max_grad_norm"],
                                  "sample_rate": t["sample_rate"], "steps": t["steps"], "epochs": t["epochs"],
                                  "batch_size": t["batch_size"], "n_records": t["n_records"]}
        if self.dp:
            record |= {"epsilon": self.epsilon(), "epsilon_rdp": self.epsilon("rdp"), "delta": self.delta,
                       "noise_multiplier": t["noise_multiplier"], "target_epsilon": t["target_epsilon"],
                       "history": [list(h) for h in self.history]}
        else:
            record |= {"epsilon": None, "epsilon_rdp": None, "delta": None, "noise_multiplier": None,
                       "history": [], "guarantee": NO_GUARANTEE}
        record |= t["engine"]
        if self.dp:
            record |= {"delta_accountant": self.delta_accountant,
                       "delta_split": {"accountant": self.delta_accountant,
                                       "domain_selection": self.delta - self.delta_accountant},
                       "guarantee": self.guarantee(record["epsilon"])}
            if "domain_selection" in self.details:
                record["domain_selection"] = self.details["domain_selection"]
        inputs = dict(self.inputs)
        record["n_canary_rows"] = inputs.pop("n_canary_rows", 0)
        if "canary_rows" in inputs:
            record["canary_rows"] = inputs.pop("canary_rows")
        record[OUTSIDE] = [f.sentence for f in self.facts if f.entry == OUTSIDE]
        record |= inputs
        if self.identifier_detection is not None:
            record["identifier_detection"] = self.identifier_detection
        record[NOT_LEARNED] = [f.sentence for f in self.facts if f.entry == NOT_LEARNED]
        return record

    def write(self, privacy_json: Path) -> dict[str, Any]:
        """Write the record to ``privacy_json`` (a run's ``model/privacy.json``); returns it."""
        record = self.to_record()
        write_json(privacy_json, record)
        return record


def note_after_training(privacy_json: Path, fact_id: str, **params: Any) -> bool:
    """Add a fact to a written ``privacy.json`` (a later stage that consulted the training
    data, e.g. the PII replay scrub of generation); True when the file changed."""
    made = fact(fact_id, **params)
    record = read_json(privacy_json)
    if made.sentence in record[made.entry]:
        return False
    record[made.entry].append(made.sentence)
    write_json(privacy_json, record)
    return True
