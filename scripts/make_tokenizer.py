"""Fit the shipped text tokenizer on PUBLIC text only (Faker's bundled word lists).

The tokenizer is part of the package, fixed before any user data is seen, so it
is data-independent (DESIGN.md, privacy rule 2). Digits are split into single
tokens so that a k-digit secret is always k tokens. Byte-level BPE covers every
input byte, so no text is ever out of vocabulary.

Run: python scripts/make_tokenizer.py  (writes auditor/data/tokenizer.json)
"""

from __future__ import annotations

from pathlib import Path

from faker import Faker
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB_SIZE = 2048
OUT = Path(__file__).resolve().parents[1] / "auditor" / "data" / "tokenizer.json"


def public_corpus(n: int = 60_000, seed: int = 0):
    """Names, e-mails, addresses, companies, jobs and sentences from Faker."""
    fakers = {loc: Faker(loc) for loc in ("en_US", "en_GB")}
    for f in fakers.values():
        f.seed_instance(seed)
    for i in range(n):
        f = fakers["en_US" if i % 4 else "en_GB"]
        yield f.name()
        yield f.email()
        yield f.free_email()
        yield f.address().replace("\n", ", ")
        yield f.company()
        yield f.job()
        yield f.sentence(nb_words=10)
        yield f.city() + ", " + f.country()


def main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(public_corpus(), trainer=trainer)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT))
    print(f"wrote {OUT} ({tok.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
