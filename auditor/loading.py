"""Loading what a run directory holds, and the records a run reads: shared by every stage.

Training, generation, the audits and the release all read a run the same way
(codec, weights, train/holdout frames with the data-hash check); they import it
from here, below all of them, so no stage imports another to read a run.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

import auditor
from auditor import data as data_io
from auditor import schema_inference
from auditor.dp.ledger import Fact, fact
from auditor.errors import UserError
from auditor.fakes import check_fake
from auditor.rundir import RunDir, read_json
from auditor.schema import Schema

if TYPE_CHECKING:
    import torch

    from auditor.codec import RowCodec


def config_hash(cfg: dict) -> str:
    """SHA-256 of the config's canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def versions() -> dict[str, str]:
    """Versions of this tool, Python and the libraries a run's numbers depend on."""
    # torch, transformers and Opacus are imported only here: reading a run needs none of them
    import opacus
    import torch
    import transformers

    return {"dp-auditor": auditor.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "opacus": opacus.__version__, "numpy": np.__version__,
            "pandas": pd.__version__}


# ---------------------------------------------------------------------------- records

def load_dataset(data: str | Path | pd.DataFrame | list) -> data_io.Dataset:
    """A path, a DataFrame or a list of texts as a ``Dataset``."""
    if isinstance(data, pd.DataFrame):
        return data_io.dataset_from_frame(data)
    if isinstance(data, (list, tuple)):
        return data_io.dataset_from_texts(data)
    return data_io.load_records(data)


def resolve_schema(dataset: data_io.Dataset, schema_path: str | None) -> tuple[Schema, list[Fact]]:
    """The schema and the facts of it that lie outside the DP guarantee (inferred columns)."""
    if schema_path:
        try:
            schema = Schema.load(schema_path)
        except (OSError, ValueError) as exc:
            raise UserError(f"schema {schema_path}: {exc}") from None
    if dataset.is_text:
        return (schema if schema_path else schema_inference.text_schema()), []
    if schema_path:
        missing = [n for n in schema.names if n not in dataset.frame.columns]
        if missing:
            raise UserError(f"schema {schema_path}: columns not in the data: {', '.join(missing)}")
        for col in schema.columns:
            try:
                check_fake(col)
            except ValueError as exc:
                raise UserError(f"schema {schema_path}: {exc}") from None
        schema_inference.require_valid(dataset.frame[schema.names], schema, name=dataset.name)
        return schema, []
    schema = schema_inference.infer_schema(dataset.frame)
    return schema, [fact("schema_inferred", column=name, facts=facts)
                    for name, facts in schema_inference.inferred_schema_facts(schema).items()]


def records_of(frame: pd.DataFrame, schema: Schema) -> list:
    """The frame's rows as the codec's records: texts, or dicts in schema column order."""
    if schema.text:
        return frame[schema.columns[0].name].tolist()
    return frame[schema.names].to_dict(orient="records")


# ---------------------------------------------------------------------------- a trained run

def load_codec(run: RunDir) -> "RowCodec":
    from auditor.codec import RowCodec  # torch: the sweep's parent process and --help never load it

    return RowCodec.from_dict(read_json(run.codec))


def load_trained_model(run: RunDir, device: str = "auto") -> "torch.nn.Module":
    """The run's weights on ``device``, in eval mode."""
    # torch and transformers load here, not when a run's files are merely read
    from auditor.model import load_model
    from auditor.train import resolve_device

    model = load_model(run.model)
    return model.to(resolve_device(device)).eval()


def load_frames(run: RunDir) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(train, holdout, is_text) of the run's input, canaries excluded; checks the data hash."""
    meta = read_json(run.run_json)
    if run.data_copy.exists():
        lines = run.data_copy.read_text(encoding="utf-8").splitlines()
        frame = pd.DataFrame([json.loads(x) for x in lines if x]).astype(str)
    else:
        path = meta["config"]["data"]["path"]
        frame = data_io.load_records(path).frame
        if data_io.data_hash(frame, key=run.salt()) != meta["data_hash"]:
            raise UserError(f"{path}: the data changed since training (hash mismatch)")
    train_idx, holdout_idx = data_io.load_split(run.split)
    return (frame.iloc[train_idx].reset_index(drop=True), frame.iloc[holdout_idx].reset_index(drop=True),
            bool(meta.get("text")))
