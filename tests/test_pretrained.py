"""Fine-tuning a pretrained causal LM: vocabulary re-mapping, untying, LoRA, DP training, loading errors.

Every model here is a tiny one built and saved in a temporary directory; nothing is
downloaded (a socket guard fails any test that tries).
"""

import json
import socket

import pytest
import torch
from tokenizers import Tokenizer
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from auditor.codec import RowCodec, load_text_tokenizer
from auditor.dp.ledger import PrivacyLedger
from auditor.model import (
    LoraSettings,
    describe_pretrained,
    is_preset,
    load_pretrained_tokenizer,
    merge_for_saving,
    pretrained_for_codec,
)
from auditor.schema import Column, Schema
from auditor.config import TrainConfig
from auditor.train import fit

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt fails the test (loading must stay local)."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _hf_tokenizer() -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=load_text_tokenizer(), **SPECIAL)


def _save_llama(path, *, tied: bool, vocab_size: int | None = None, positions: int = 128):
    tok = _hf_tokenizer()
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size or len(tok), hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                         max_position_embeddings=positions, tie_word_embeddings=tied)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llama_dirs(tmp_path_factory):
    """``{tied: directory}`` of tiny LLaMA models sharing the shipped BPE (+ 3 special tokens)."""
    return {tied: _save_llama(tmp_path_factory.mktemp(f"llama_tied{tied}"), tied=tied) for tied in (True, False)}


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2")
    tok = _hf_tokenizer()
    tok.save_pretrained(path)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=128,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(path)
    return path


def _schema(max_tokens: int = 8) -> Schema:
    return Schema([
        Column("kind", "categorical", categories=["alpha", "beta", "gamma"]),
        Column("amount", "numeric", integer=True, minimum=0, maximum=1000),
        Column("note", "text", max_tokens=max_tokens),
    ])


@pytest.fixture(scope="module")
def codec(llama_dirs):
    return RowCodec(_schema(), tokenizer=load_pretrained_tokenizer(str(llama_dirs[True])))


@pytest.fixture(scope="module")
def sequences(codec):
    kinds = ["alpha", "beta", "gamma"]
    return [codec.encode({"kind": kinds[i % 3], "amount": str(7 * i + 1), "note": f"order {i} shipped"})
            for i in range(32)]


def _fit(model, codec, sequences):
    config = TrainConfig(model="tiny", dp=True, epsilon=None, noise_multiplier=1.0, epochs=1.0, batch_size=8,
                         physical_batch_size=8, lr=1e-2, accountant="rdp", seed=0, device="cpu",
                         checkpoint_every=10_000)
    return fit(sequences, grammar=codec.grammar, vocab_size=codec.vocab_size, pad_id=codec.pad_id,
               config=config, ledger=PrivacyLedger.for_training(config, delta=1e-3), model=model)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _changed(model, before) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}


def _reload(model, path):
    merge_for_saving(model).save_pretrained(path, safe_serialization=True)
    return AutoModelForCausalLM.from_pretrained(path).eval()


def test_is_preset():
    assert is_preset("tiny") and is_preset("large")
    assert not is_preset("gpt2") and not is_preset("./tiny-llama")


def test_tokenizer_is_the_pretrained_backend(llama_dirs, codec):
    tok = load_pretrained_tokenizer(str(llama_dirs[True]))
    shipped = load_text_tokenizer()
    assert isinstance(tok, Tokenizer)
    assert tok.get_vocab_size() == shipped.get_vocab_size() + len(SPECIAL) == codec.text_vocab
    text = "Invoice 2024-05 paid by Jane"
    assert tok.encode(text, add_special_tokens=False).ids == shipped.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("tied", [True, False])
def test_remap_keeps_text_rows_and_unties(llama_dirs, codec, tied):
    original = AutoModelForCausalLM.from_pretrained(llama_dirs[tied]).eval()
    model = pretrained_for_codec(str(llama_dirs[tied]), codec, seed=0).eval()
    text = slice(codec.text_base, codec.text_base + codec.text_vocab)
    embed, head = model.get_input_embeddings(), model.get_output_embeddings()

    assert embed.weight.shape == head.weight.shape == (codec.vocab_size, 32)
    assert torch.equal(embed.weight[text], original.get_input_embeddings().weight)
    assert torch.equal(head.weight[text], original.get_output_embeddings().weight)
    assert embed.weight.data_ptr() != head.weight.data_ptr()
    assert model.config.tie_word_embeddings is False and model.config.vocab_size == codec.vocab_size
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 1, 2)

    # The codec's own rows: the mean text row plus small seeded noise, distinct from each other.
    own = torch.cat([embed.weight[: codec.text_base], embed.weight[codec.text_base + codec.text_vocab :]])
    offsets = own - original.get_input_embeddings().weight.mean(dim=0)
    assert 0.01 < offsets.std().item() < 0.03  # initializer_range = 0.02
    assert torch.unique(own, dim=0).shape[0] == own.shape[0]
    again = pretrained_for_codec(str(llama_dirs[tied]), codec, seed=0)
    other = pretrained_for_codec(str(llama_dirs[tied]), codec, seed=1)
    assert torch.equal(again.get_input_embeddings().weight, embed.weight)
    assert not torch.equal(other.get_input_embeddings().weight, embed.weight)

    # A text-only sequence: the same hidden states, and the same logits on the text rows.
    ids = codec.text_tokenizer.encode("order 12 shipped to Berlin", add_special_tokens=False).ids
    with torch.no_grad():
        before = original(input_ids=torch.tensor([ids]), output_hidden_states=True)
        after = model(input_ids=torch.tensor([ids]) + codec.text_base, output_hidden_states=True)
    assert torch.equal(after.hidden_states[-1], before.hidden_states[-1])
    torch.testing.assert_close(after.logits[..., text], before.logits, rtol=0, atol=1e-6)


def test_save_reload_round_trip(llama_dirs, codec, sequences, tmp_path):
    model = pretrained_for_codec(str(llama_dirs[True]), codec, seed=0).eval()
    reloaded = _reload(model, tmp_path)
    ids = torch.tensor(sequences[:4])
    assert reloaded.config.tie_word_embeddings is False
    assert reloaded.get_input_embeddings().weight.data_ptr() != reloaded.get_output_embeddings().weight.data_ptr()
    assert torch.equal(reloaded.get_output_embeddings().weight, model.get_output_embeddings().weight)
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_dp_full_fine_tuning(llama_dirs, codec, sequences, tmp_path):
    model = pretrained_for_codec(str(llama_dirs[False]), codec, seed=0)
    before = _snapshot(model)
    result = _fit(model, codec, sequences)
    assert result.ledger.dp and result.engine["clipping"] == "bookkeeping"
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert _changed(result.model, before) == set(before)  # every parameter trains (and gets noise)
    info = describe_pretrained(str(llama_dirs[False]), result.model)
    assert info["lora"] is None and info["trainable_parameters"] == info["parameters"]
    ids = torch.tensor(sequences[:4])
    with torch.no_grad():
        assert torch.equal(_reload(result.model, tmp_path)(input_ids=ids).logits, result.model(input_ids=ids).logits)


def test_dp_lora_llama_trains_adapters_and_new_rows_then_merges(llama_dirs, codec, sequences, tmp_path):
    pytest.importorskip("peft")
    model = pretrained_for_codec(str(llama_dirs[True]), codec, seed=0, lora=LoraSettings(rank=4, alpha=8))
    before = _snapshot(model)
    info = describe_pretrained("tiny-llama", model)
    assert info["lora"] == {"rank": 4, "alpha": 8, "targets": ["q_proj", "v_proj"]}
    lora_params = 2 * 2 * (4 * 32 + 32 * 4)  # 2 layers x (q_proj, v_proj) x (A, B)
    assert info["trainable_parameters"] == 2 * codec.vocab_size * 32 + lora_params
    assert info["pretrained"] == "tiny-llama" and "public" in info["note"]

    result = _fit(model, codec, sequences)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    changed = _changed(result.model, before)
    trainable = {n for n in before if "lora_" in n or "embed_tokens" in n or "lm_head" in n}
    assert changed == trainable

    merged = merge_for_saving(result.model)
    assert type(merged) is LlamaForCausalLM
    q_proj = merged.model.layers[0].self_attn.q_proj
    assert type(q_proj) is torch.nn.Linear  # adapters folded in: a plain model again
    assert not torch.equal(q_proj.weight, before["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"])
    reloaded = _reload(merged, tmp_path)
    ids = torch.tensor(sequences[:4])
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, merged.eval()(input_ids=ids).logits)


def test_gpt2_needs_lora(gpt2_dir, codec):
    with pytest.raises(ValueError, match=r"cannot clip.*Conv1D.*--lora"):
        pretrained_for_codec(str(gpt2_dir), codec)


def test_dp_lora_gpt2(gpt2_dir, codec, sequences, tmp_path):
    """GPT-2's Conv1D layers are frozen under LoRA; the adapters are nn.Linear, which the clipper handles."""
    pytest.importorskip("peft")
    model = pretrained_for_codec(str(gpt2_dir), codec, seed=0, lora=LoraSettings())
    assert describe_pretrained(str(gpt2_dir), model)["lora"]["targets"] == ["c_attn"]
    before = _snapshot(model)
    result = _fit(model, codec, sequences)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    assert {n for n in _changed(result.model, before) if "lora_" not in n} == {
        "base_model.model.transformer.wte.weight", "base_model.model.lm_head.weight"}

    reloaded = _reload(result.model, tmp_path)
    assert type(reloaded) is GPT2LMHeadModel and reloaded.config.tie_word_embeddings is False
    assert reloaded.transformer.wte.weight.data_ptr() != reloaded.lm_head.weight.data_ptr()
    ids = torch.tensor(sequences[:4])
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, result.model.eval()(input_ids=ids).logits)


@pytest.mark.parametrize("name", ["/no/such/model-dir", "./no-such-model-dir", "no-such-org/no-such-model"])
def test_missing_model_is_one_line_error_without_network(name, codec):
    for load in (lambda: load_pretrained_tokenizer(name), lambda: pretrained_for_codec(name, codec)):
        with pytest.raises(ValueError) as info:
            load()
        message = str(info.value)
        assert "\n" not in message and repr(name) in message


def test_directory_without_a_model(tmp_path, codec):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match=r"not a Hugging Face model directory") as info:
        pretrained_for_codec(str(tmp_path), codec)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"a file, not a model directory"):
        load_pretrained_tokenizer(str(tmp_path / "notes.txt"))


def test_tokenizer_larger_than_the_embedding(tmp_path, codec):
    path = _save_llama(tmp_path, tied=False, vocab_size=1000)
    with pytest.raises(ValueError, match=r"2051 ids but the model only 1000 embedding rows"):
        pretrained_for_codec(str(path), codec)


def test_too_few_positions(llama_dirs):
    long_codec = RowCodec(_schema(max_tokens=200), tokenizer=load_pretrained_tokenizer(str(llama_dirs[True])))
    with pytest.raises(ValueError, match=rf"128 positions.*{long_codec.max_length} tokens"):
        pretrained_for_codec(str(llama_dirs[True]), long_codec)


def test_lora_targets_and_settings(llama_dirs, codec):
    pytest.importorskip("peft")
    path = str(llama_dirs[False])
    model = pretrained_for_codec(path, codec, lora=LoraSettings(targets=("o_proj", "down_proj")))
    assert describe_pretrained(path, model)["lora"]["targets"] == ["down_proj", "o_proj"]
    with pytest.raises(ValueError, match=r"match no module"):
        pretrained_for_codec(path, codec, lora=LoraSettings(targets=("c_attn",)))
    with pytest.raises(ValueError, match=r"rank must be >= 1"):
        LoraSettings(rank=0)


@pytest.mark.parametrize("kind", ["llama-full", "gpt2-lora"])
def test_cli_train_and_generate_with_a_local_pretrained_model(kind, llama_dirs, gpt2_dir, demo_small_csv, tmp_path,
                                                             capsys):
    from auditor.data import DEMO_SCHEMA, load_records
    from auditor.schema_inference import require_valid
    from cli_helpers import run_cli

    path, extra = (llama_dirs[False], []) if kind == "llama-full" else (gpt2_dir, ["--lora", "--lora-rank", "4"])
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", out, "--schema", DEMO_SCHEMA, "--model", path,
                           *extra, "--epochs", "1", "--batch-size", "32", "--no-canaries", "--seed", "1", "--quiet")
    assert code == 0, err
    privacy = json.loads((out / "model" / "privacy.json").read_text())
    assert privacy["pretrained"]["pretrained"] == str(path)
    assert privacy["pretrained"]["lora"] == (None if kind == "llama-full" else
                                             {"rank": 4, "alpha": 16, "targets": ["c_attn"]})
    assert "pretrained model's own tokenizer" in privacy["tokenizer"]
    codec = json.loads((out / "model" / "codec.json").read_text())
    assert codec["tokenizer"]["added_tokens"]  # the pretrained tokenizer (with its specials) is the codec's
    code, _, err = run_cli(capsys, "generate", out, "-n", "20", "--quiet")
    assert code == 0, err
    frame = load_records(out / "synthetic.csv").frame
    assert len(frame) >= 1
    require_valid(frame, Schema.load(DEMO_SCHEMA), name="synthetic")


def test_cli_lora_needs_a_pretrained_model(demo_small_csv, tmp_path, capsys):
    from cli_helpers import run_cli

    code, _, err = run_cli(capsys, "train", demo_small_csv, "--out", tmp_path / "r", "--model", "tiny", "--lora")
    assert code == 2 and "--lora fine-tunes a pretrained model" in err
    assert not (tmp_path / "r").exists()
