"""The one typed configuration: YAML + flags precedence, validation, and the resume rule (no training here)."""

import pytest

from auditor.commands import run as run_cmd
from auditor.commands import train as train_cmd
from auditor.commands._options import FLAGS, build_config
from auditor.config import (MAY_DIFFER_ON_RESUME, DataConfig, RunConfig, SampleConfig, TrainConfig, field_default,
                            from_mapping, load_yaml, rows_to_generate)
from auditor.errors import UserError

YAML = """\
data: records.csv
schema: schema.yaml
train: {epsilon: 4.0, epochs: 3, lr: 0.01, seed: 7}
canaries: {repetitions: [1, 4], audit_canaries: 20}
generate: {num_records: 50, temperature: 0.5}
audit: {pii_ner: false, max_members: 100}
policy: internal
"""


def _config(command, tmp_path, *args):
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    ctx = command.make_context(command.name, ["--out", str(tmp_path / "out"), "--config", str(path), *args])
    data = ctx.params.pop("data")
    return build_config(ctx, {k: v for k, v in ctx.params.items() if k not in ("out", "force", "quiet", "resume")},
                        data=data)


def test_the_yaml_file_sets_every_section_and_resolves_paths_beside_it(tmp_path):
    cfg = _config(run_cmd.command, tmp_path)
    assert (cfg.data.path, cfg.data.schema) == (str(tmp_path / "records.csv"), str(tmp_path / "schema.yaml"))
    assert (cfg.train.epsilon, cfg.train.epochs, cfg.train.lr, cfg.train.seed) == (4.0, 3.0, 0.01, 7)
    assert (cfg.canaries.repetitions, cfg.canaries.audit_canaries) == ((1, 4), 20)
    assert (cfg.generate.num_records, cfg.generate.temperature) == (50, 0.5)
    assert (cfg.audit.pii_ner, cfg.audit.max_members, cfg.policy.name) == (False, 100, "internal")
    # what neither the file nor a flag sets keeps the config's default
    assert cfg.train.max_grad_norm == field_default("train.max_grad_norm") == 1.0
    assert cfg.train.batch_size is field_default("train.batch_size") is None  # fitted from the data at training
    assert cfg.train.device == "auto" and cfg.data.holdout == 0.2


def test_flags_given_win_over_the_file_and_flags_left_alone_do_not(tmp_path):
    cfg = _config(run_cmd.command, tmp_path, "--epochs", "5", "-n", "9", "--policy", "external",
                  "--canary-repetitions", "2,8", str(tmp_path / "other.csv"))
    assert cfg.train.epochs == 5.0 and cfg.generate.num_records == 9 and cfg.policy.name == "external"
    assert cfg.canaries.repetitions == (2, 8) and cfg.data.path == str(tmp_path / "other.csv")
    # not given on the command line: the file's values stand, though each flag has a default of its own
    assert (cfg.train.lr, cfg.train.epsilon, cfg.generate.temperature, cfg.audit.pii_ner) == (0.01, 4.0, 0.5, False)


def test_a_noise_multiplier_flag_replaces_the_files_epsilon_and_no_dp_drops_both(tmp_path):
    cfg = _config(train_cmd.command, tmp_path, "--noise-multiplier", "1.5")
    assert (cfg.train.epsilon, cfg.train.noise_multiplier, cfg.train.dp) == (None, 1.5, True)
    cfg = _config(train_cmd.command, tmp_path, "--no-dp")
    assert (cfg.train.epsilon, cfg.train.noise_multiplier, cfg.train.dp) == (None, None, False)
    with pytest.raises(UserError, match="conflicts"):
        _config(train_cmd.command, tmp_path, "--no-dp", "--epsilon", "2")


def test_lora_takes_its_default_rank_or_the_given_one(tmp_path):
    assert _config(train_cmd.command, tmp_path, "--lora").train.lora_rank == 8
    assert _config(train_cmd.command, tmp_path, "--lora", "--lora-rank", "4").train.lora_rank == 4
    assert _config(train_cmd.command, tmp_path).train.lora_rank is None


def test_bad_files_are_one_line_user_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text, needle in (("train: {epoch: 3}\n", "unknown train key"), ("grid: {}\n", "unknown key"),
                         ("train: [1]\n", "train must be a mapping"), ("train: {lr: .inf}\n", "TrainConfig.lr"),
                         ("train: {epochs: 3\n", "invalid YAML"), ("- 1\n", "expected a mapping")):
        bad.write_text(text)
        with pytest.raises(UserError, match=needle):
            from_mapping(load_yaml(bad))


def test_validate_checks_every_section_once_and_records_later():
    cfg = RunConfig(train=TrainConfig(epsilon=None))
    with pytest.raises(UserError, match="give --epsilon or --noise-multiplier"):
        cfg.validate()
    cfg = RunConfig(generate=SampleConfig())
    cfg.generate.scrub_pii = "all"
    with pytest.raises(UserError, match="--scrub-pii"):
        cfg.validate()
    cfg = RunConfig(data=DataConfig(domains="guess"))
    with pytest.raises(UserError, match="--domains"):
        cfg.validate()
    train = TrainConfig(batch_size=64, delta=0.01)
    train.validate()
    with pytest.raises(UserError, match=r"1/n"):
        train.check_records(200)
    with pytest.raises(UserError, match="needs more records"):
        TrainConfig(batch_size=64).check_records(64)


def test_round_trip_through_a_dict():
    cfg = from_mapping({"data": "x.csv", "train": {"noise_multiplier": 2.0}, "policy": "internal",
                        "canaries": {"repetitions": [1, 2]}, "audit": {"audits": ["pii"]}})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.differences(RunConfig.from_dict(cfg.to_dict())) == []
    # an older run.json holds only the trained sections: the others take their defaults
    old = RunConfig.from_dict(cfg.to_dict(("data", "train", "canaries")))
    assert old.policy.name is None and old.generate == SampleConfig()


def test_differences_name_every_setting_that_differs_in_order():
    a, b = RunConfig(), RunConfig()
    b.train.lr, b.data.holdout, b.canaries.repetitions, b.generate.top_p, b.policy.name = 0.5, 0.3, (1,), 0.9, "x"
    b.train.device = "cpu"
    assert a.differences(b) == ["data.holdout", "train.device", "train.lr", "canaries.repetitions",
                                "generate.top_p", "policy.name"]
    assert b.differences(a) == a.differences(b)


def test_the_resume_rule_counts_only_what_shaped_the_training():
    saved = RunConfig(train=TrainConfig(seed=3))
    given = RunConfig()  # no seed given: the saved run's
    for name in MAY_DIFFER_ON_RESUME:
        section, key = name.split(".")
        setattr(getattr(given, section), key, {"device": "cpu", "checkpoint_every": 7}.get(key, True))
    given.generate.temperature, given.policy.name, given.data.holdout = 0.5, "internal", 0.3
    assert given.resume_conflicts(saved) == []
    given.train.epochs, given.canaries.audit_canaries, given.train.seed = 3.0, 10, 4
    assert given.resume_conflicts(saved) == ["train.epochs", "train.seed", "canaries.audit_canaries"]


def test_the_default_row_count():
    assert rows_to_generate(None, 2400) == 2400
    assert rows_to_generate(10, 2400) == 10


def test_every_flag_names_a_setting_with_a_default():
    for flag in FLAGS.values():
        if flag.path is not None:
            field_default(flag.path)  # raises KeyError for a setting that does not exist
    assert FLAGS["epsilon"].default_text({}) == "8.0"
    assert FLAGS["seed"].default_text({}) == "fresh OS entropy"
    assert FLAGS["seed"].default_text({"train.seed": 0}) == "0"
    assert FLAGS["canary_repetitions"].default_text({}) == "1,2,4,8,16"


def test_resume_takes_the_fitted_settings_left_unset():
    """A training setting left to the fitted defaults (None) matches the value they gave the saved run."""
    saved = RunConfig()
    saved.train.epochs, saved.train.batch_size, saved.train.lr, saved.train.physical_batch_size = 5.5, 512, 0.01, 256
    saved.train.seed = 3
    assert RunConfig().resume_conflicts(saved) == []
    given = RunConfig()
    given.train.lr, given.train.batch_size = 0.02, 512
    assert given.resume_conflicts(saved) == ["train.lr"]
