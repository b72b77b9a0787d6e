"""Scanning a release bundle for private traces: a registry of detectors, one per kind of leak.

A detector is a function ``(bundle, traces) -> iterable of Finding``; ``DETECTORS``
maps its name to it and ``scan_bundle`` runs them all. Findings name the file
and say what was found without the value itself: masked (``j***@e***.com``
with a salted hash) or by where the run records it ("the seed recorded as
run.json seeds.run").

The synthetic data is judged by the report's verdict (PII replay, distances),
not here, except for what must never be in it: inserted canary secrets (the
canary scrub removes them), private hashes and salts, and serialized objects.
"""

from __future__ import annotations

import bisect
import html
import json
import os
import re
import stat
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Any

from auditor.release.contents import SYNTHETIC_FILES
from auditor.release.matcher import MIN_ALNUM, SecretMatcher, normalise
from auditor.release.traces import PrivateTraces
from canaries.manifest import Canary
from reports.pii_masking import Redactor, mask_value, new_salt

FILE_MODE = 0o644
DIR_MODE = 0o755
SEED_MIN_DIGITS = 6  # a shorter seed (5, 42) occurs by chance in any page of numbers; its keys are still flagged
LOSS_MIN_DIGITS = 6  # 6 significant digits told a record's true value from the alternatives (issue 13)
HEADER_MAX_BYTES = 100_000_000  # the safetensors format's own limit on its header
TEXT_SUFFIXES = (".json", ".jsonl", ".csv", ".md", ".html", ".txt")
PRIVATE_NAMES = ("run.json", "canaries.json", "split.json", "data.private.jsonl", "state.pt", "checkpoint")
PRIVATE_PREFIXES = ("train_log", ".")
SERIALIZED_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".npy", ".npz", ".ckpt", ".bin", ".joblib")
RNG_KEY = re.compile(r"rng|random_state|generator_state|noise_state", re.IGNORECASE)
SALTED_HASH = re.compile(r"(?<![0-9A-Za-z])h:[0-9a-f]{12}(?![0-9a-f])")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+")
_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")
_INTEGER = re.compile(r"(?<![\w.,])\d+(?![\w]|[.,]\d)")
_LABELLED_SEED = re.compile(r"seed[a-z_]*\W{1,40}?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """One leak: the detector's name, the file (relative to the bundle) and a one-line, masked reason."""

    detector: str
    path: str
    reason: str

    def line(self) -> str:
        return f"{self.path}: {self.reason} [{self.detector}]"


def _json_keys(obj: Any) -> Iterator[str]:
    """Every mapping key of a JSON value, at any depth."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield str(key)
            yield from _json_keys(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _json_keys(value)


def _json_values(obj: Any) -> Iterator[Any]:
    """Every leaf value of a JSON value (strings, numbers, booleans, nulls)."""
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _json_values(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _json_values(value)
    else:
        yield obj


class BundleFile:
    """A file of the bundle, read once, with the views the detectors search."""

    def __init__(self, root: Path, rel: str):
        self.root = root
        self.rel = rel
        self.path = root / rel

    @property
    def synthetic(self) -> bool:
        return self.rel in SYNTHETIC_FILES

    @cached_property
    def head(self) -> bytes:
        """The first 8 bytes (magic numbers)."""
        with open(self.path, "rb") as fh:
            return fh.read(8)

    @cached_property
    def raw(self) -> bytes:
        """The bytes searched for private hashes: the whole file, or a weights file's JSON
        header only (gigabytes of floats hold no text)."""
        if not self.rel.endswith(".safetensors"):
            return self.path.read_bytes()
        try:
            (size,) = struct.unpack("<Q", self.head)
        except struct.error:
            return b""
        with open(self.path, "rb") as fh:
            fh.seek(8)
            return fh.read(min(size, HEADER_MAX_BYTES))

    @cached_property
    def data(self) -> Any:
        """Parsed JSON (floats as ``Decimal``, digits as written), the header of a
        ``.safetensors`` file, or ``None`` for other files and unparsable JSON."""
        if not self.rel.endswith((".json", ".safetensors")):
            return None
        try:
            return json.loads(self.raw.decode("utf-8"), parse_float=Decimal)
        except (UnicodeDecodeError, ValueError):
            return None

    @cached_property
    def texts(self) -> list[str]:
        """What secrets are looked for in: each JSON key and string on its own; a text file
        whole (HTML unescaped, inline images dropped); nothing of binary files."""
        if self.data is not None:
            return list(_json_keys(self.data)) + [v for v in _json_values(self.data) if isinstance(v, str)]
        if not self.rel.endswith(TEXT_SUFFIXES):
            return []
        try:
            text = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            return []
        text = _DATA_URI.sub("data:", text)
        return [html.unescape(text) if self.rel.endswith(".html") else text]

    @cached_property
    def numbers(self) -> list[str]:
        """Every number as written: JSON numbers, and numbers inside strings and text."""
        found = [str(v) for v in _json_values(self.data) if isinstance(v, (int, Decimal)) and not isinstance(v, bool)]
        for text in self.texts:
            found += _DECIMAL.findall(text) + _INTEGER.findall(text)
        return found


@dataclass
class Bundle:
    """The directory being scanned: its files (not following links) and every entry's path."""

    root: Path

    @cached_property
    def entries(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            base = Path(dirpath).relative_to(self.root)
            out += [(base / n).as_posix() for n in sorted(dirnames) + sorted(filenames)]
        return out

    @cached_property
    def files(self) -> list[BundleFile]:
        return [BundleFile(self.root, rel) for rel in self.entries
                if stat.S_ISREG((self.root / rel).lstat().st_mode)]


Detector = Callable[[Bundle, PrivateTraces], Iterable[Finding]]
DETECTORS: dict[str, Detector] = {}


def detector(name: str) -> Callable[[Detector], Detector]:
    """Register a detector under ``name`` (the name shown with each of its findings)."""

    def register(fn: Detector) -> Detector:
        DETECTORS[name] = fn
        return fn

    return register


@detector("file_mode")
def wide_modes(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Links, special files, and modes wider than 0644 (files) or 0755 (folders, the bundle's own included)."""
    for rel in [".", *bundle.entries]:
        mode = (bundle.root / rel).lstat().st_mode
        if stat.S_ISLNK(mode):
            yield Finding("file_mode", rel, "a symbolic link (a bundle holds plain files only)")
        elif stat.S_ISDIR(mode):
            if stat.S_IMODE(mode) & ~DIR_MODE:
                yield Finding("file_mode", rel, f"folder mode {stat.S_IMODE(mode):04o} is wider than {DIR_MODE:04o}")
        elif not stat.S_ISREG(mode):
            yield Finding("file_mode", rel, "not a regular file")
        elif stat.S_IMODE(mode) & ~FILE_MODE:
            yield Finding("file_mode", rel, f"mode {stat.S_IMODE(mode):04o} is wider than {FILE_MODE:04o}")


@detector("private_file")
def private_files(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Files and folders named like the run's private artifacts (manifest, logs, checkpoints, hidden files)."""
    for rel in bundle.entries:
        name = rel.rsplit("/", 1)[-1]
        if name in PRIVATE_NAMES or name.startswith(PRIVATE_PREFIXES):
            yield Finding("private_file", rel, "a private run artifact (it stays in the run directory)")


@detector("rng_state")
def rng_states(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Pickles, torch and numpy files (they can hold any object, RNG states included), and RNG-state keys."""
    for f in bundle.files:
        head = f.head
        pickle = head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
        if pickle or head.startswith((b"PK\x03\x04", b"\x93NUMPY")) or f.rel.endswith(SERIALIZED_SUFFIXES):
            yield Finding("rng_state", f.rel, "a pickled, torch or numpy object (may hold RNG state)")
        for key in sorted({k for k in _json_keys(f.data) if RNG_KEY.search(k)}):
            yield Finding("rng_state", f.rel, f"key {key!r} names an RNG state")


@detector("seed")
def seeds(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Keys naming a seed; the run's seed values (those of at least ``SEED_MIN_DIGITS`` digits
    anywhere, any seed right after the word "seed")."""
    distinctive = {v for v in traces.seeds.values() if len(str(abs(v))) >= SEED_MIN_DIGITS}
    for f in bundle.files:
        if f.synthetic:
            continue
        for key in sorted({k for k in _json_keys(f.data) if "seed" in k.lower()}):
            yield Finding("seed", f.rel, f"key {key!r} holds a seed")
        values = {int(n) for n in f.numbers if n.isdigit() and int(n) in distinctive}
        values |= {int(m.group(1)) for text in f.texts for m in _LABELLED_SEED.finditer(text)}
        for value in sorted(values & set(traces.seeds.values())):
            labels = ", ".join(sorted(label for label, v in traces.seeds.items() if v == value))
            yield Finding("seed", f.rel, f"the seed recorded as {labels}")


@detector("private_hash")
def private_hashes(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """The run's private hashes, HMACs and salts (their first 16 hex digits suffice) in any file
    (of a weights file, its header)."""
    needles = {}
    for label, value in traces.hashes.items():
        digest = value.rsplit(":", 1)[-1].lower()
        needles[label] = digest[:16].encode("ascii", "ignore") if len(digest) >= 16 else digest.encode("ascii", "ignore")
    for f in bundle.files:
        raw = f.raw.lower()
        for label, needle in sorted(needles.items()):
            if needle and needle in raw:
                yield Finding("private_hash", f.rel, f"the {label} value (private hash or salt)")


@detector("salted_hash")
def salted_hashes(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Salted hashes (``h:`` + 12 hex digits): only useful beside the run's private salt."""
    for f in bundle.files:
        if not f.synthetic:
            n = sum(len(SALTED_HASH.findall(t)) for t in f.texts)
            if n:
                yield Finding("salted_hash", f.rel, f"{n} salted hash(es) h:… (the public form drops them)")


def _sig_digits(number: str) -> tuple[Decimal, int, int] | None:
    try:
        d = Decimal(number)
    except InvalidOperation:
        return None
    t = d.as_tuple()
    digits = len("".join(map(str, t.digits)).lstrip("0"))
    return (d, digits, int(t.exponent)) if isinstance(t.exponent, int) else None


@detector("exact_loss")
def exact_losses(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Numbers of at least ``LOSS_MIN_DIGITS`` significant digits equal to a logged loss at their precision."""
    if not traces.losses:
        return
    ordered = sorted((Decimal(repr(v)), label) for label, v in traces.losses.items())
    keys = [v for v, _ in ordered]
    for f in bundle.files:
        if f.synthetic:
            continue
        hits = set()
        for number in f.numbers:
            parsed = _sig_digits(number)
            if parsed is None or parsed[1] < LOSS_MIN_DIGITS:
                continue
            d, _, exponent = parsed
            tol = Decimal(5).scaleb(exponent - 1)
            lo = bisect.bisect_left(keys, d - tol)
            hi = bisect.bisect_right(keys, d + tol)
            hits.update(label for _, label in ordered[lo:hi])
        if hits:
            first = sorted(hits)[0]
            more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
            yield Finding("exact_loss", f.rel, f"the logged loss {first}{more} (to {LOSS_MIN_DIGITS}+ digits)")


def _synthetic_rows(f: BundleFile) -> list:
    from auditor.data import load_records

    dataset = load_records(f.path)
    return dataset.frame["text"].tolist() if dataset.is_text else dataset.frame.to_dict(orient="records")


def canary_needles(canary: Canary) -> list[str]:
    """What a canary is looked for as outside the synthetic data: its planted value (context
    and secret, e.g. ``Ann Lee PIN 4081``) and, when long enough to search alone, its secret."""
    if canary.fields:  # a record span: its cells are ordinary values (categories, numbers) of the table
        return [canary.secret] if len(normalise(canary.secret)) >= MIN_ALNUM else []
    planted = canary.record.get(canary.field, "") if isinstance(canary.record, dict) else canary.record
    return [v for v in (str(planted), canary.secret) if len(normalise(v)) >= MIN_ALNUM]


@detector("canary_secret")
def canary_secrets(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Canary secrets: inserted ones in the synthetic data (as the canary scrub finds them),
    any one elsewhere (``canary_needles``)."""
    from canaries.manifest import scrub_ids
    from canaries.occurrences import count_occurrences

    if not traces.canaries:
        return
    by_id = {c.id: c for c in traces.canaries}
    matcher = SecretMatcher((c.id, needle) for c in traces.canaries for needle in canary_needles(c))
    dropped = set(scrub_ids(traces.canaries))  # what the canary scrub drops; small record spans are only counted
    inserted = {c.id: c.secret for c in traces.canaries if c.id in dropped}
    for f in bundle.files:
        if f.synthetic:
            counts = count_occurrences(inserted, _synthetic_rows(f), fields={c.id: c.match_fields for c in traces.canaries})
            for cid, occ in sorted(counts.items()):
                if occ.full:
                    yield Finding("canary_secret", f.rel, f"{occ.full} row(s) hold inserted canary {cid}'s secret "
                                  f"{mask_value(by_id[cid].secret, 'secret')} (the canary scrub drops them)")
            continue
        for cid in sorted(matcher.found(f.texts)):
            yield Finding("canary_secret", f.rel, f"canary {cid}'s secret {mask_value(by_id[cid].secret, 'secret')}")


@detector("training_pii")
def training_pii(bundle: Bundle, traces: PrivateTraces) -> Iterator[Finding]:
    """Raw PII values of the training records in any file but the synthetic data."""
    if not traces.pii:
        return
    matcher = SecretMatcher((value, value) for value in traces.pii)
    redactor = Redactor(traces.salt or new_salt())
    for f in bundle.files:
        if not f.synthetic:
            for value in sorted(matcher.found(f.texts)):
                yield Finding("training_pii", f.rel, f"raw training {traces.pii[value]} {redactor.text(value, traces.pii[value])}")


def scan_bundle(root: str | Path, traces: PrivateTraces) -> list[Finding]:
    """Run every registered detector on the bundle at ``root``; findings sorted by file, then detector."""
    bundle = Bundle(Path(root))
    findings = [finding for fn in DETECTORS.values() for finding in fn(bundle, traces)]
    return sorted(findings, key=lambda x: (x.path, x.detector, x.reason))
