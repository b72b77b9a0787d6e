"""``ModelScorer``: the ``canaries.scorer.Scorer`` protocol for the toolkit's models.

Every log-probability here is taken under the *grammar-masked* distribution

    p(z | x_<t) = softmax(logits_t masked to grammar.allowed[state_t])_z,

the distribution the trainer fits (``auditor.train.example_losses``) and the
generator samples from. Scoring the unmasked softmax would charge every secret
the probability mass the model leaves on tokens the grammar can never emit, so
exposures and membership signals would not describe what the model releases.
Models without a grammar (``codec.grammar`` None) are scored unmasked.

``continuation_logprobs`` scores many continuations of one prefix, as exposure
needs for a whole secret space (Carlini et al., "The Secret Sharer", 2019):

1. the prefix runs once; its KV cache is shared by every candidate;
2. the candidates are sorted into a trie, level by level (numpy), so each
   distinct partial continuation is one node;
3. the trie is expanded depth-first in batches of at most ``batch_size`` nodes
   (fewer when the KV caches held would pass ``max_cache_bytes``): a node's
   children feed their one new token with the parent's KV cache gathered
   along the batch axis, and each candidate's log-probability is the sum of
   its edge log-probabilities.

A space of k-digit secrets costs ``(10^k - 1) / 9`` one-token forward passes
(111,111 for 10^6 candidates) instead of ``10^6 * (len(prefix) + k)`` tokens
for naive full-sequence scoring, with the same numbers (tests, 1e-4).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from transformers import DynamicCache

from canaries.scorer import Record, TokenStats


@dataclass
class _Level:
    """Trie nodes at one depth d (a node = a distinct continuation prefix of length d).

    ``rows``: sorted-candidate indices still going at depth d (length > d);
    ``node``: each such row's node (non-decreasing); ``parent``/``token``: each
    node's parent at depth d-1 and its last token (depth >= 1).
    """

    rows: np.ndarray
    node: np.ndarray
    parent: np.ndarray
    token: np.ndarray


def _trie_levels(padded: np.ndarray, lengths: np.ndarray) -> list[_Level]:
    """Level-wise trie of lexicographically sorted, ``-1``-padded continuations."""
    n, width = padded.shape
    if n > 1:
        neq = padded[1:] != padded[:-1]
        first_diff = np.where(neq.any(axis=1), neq.argmax(axis=1), width)
    else:
        first_diff = np.zeros(0, dtype=np.int64)
    levels: list[_Level] = []
    node_of_row = np.zeros(n, dtype=np.int64)
    for d in range(width):
        group = np.cumsum(np.concatenate([[True], first_diff < d])) - 1
        rows = np.nonzero(lengths > d)[0]
        _, node = np.unique(group[rows], return_inverse=True)
        starts = np.concatenate([[0], np.nonzero(np.diff(node))[0] + 1]) if rows.size else np.zeros(0, dtype=np.int64)
        first_rows = rows[starts]
        parent = node_of_row[first_rows] if d else np.zeros(len(first_rows), dtype=np.int64)
        token = padded[first_rows, d - 1] if d else np.zeros(len(first_rows), dtype=np.int64)
        levels.append(_Level(rows=rows, node=node, parent=parent, token=token))
        node_of_row = np.full(n, -1, dtype=np.int64)
        node_of_row[rows] = node
    return levels


class ModelScorer:
    """A causal LM and its codec seen as a ``Scorer``.

    Args:
        model: a causal LM (``auditor.model.build_model`` or any HF causal LM).
        codec: the codec it was trained with (``auditor.codec.RowCodec``).
        device: where to run; default the model's device.
        batch_size: sequences (``token_stats``) or trie nodes
            (``continuation_logprobs``) per forward pass.
        max_cache_bytes: bound on the KV caches the depth-first trie expansion holds
            at once (one batch per depth, each row ``(prefix + depth) * layers * 2 *
            hidden`` floats); the node batch shrinks below ``batch_size`` to stay
            under it.
    """

    def __init__(self, model: torch.nn.Module, codec: Any, *, device: str | torch.device | None = None,
                 batch_size: int = 512, max_cache_bytes: int = 2**31):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if max_cache_bytes < 1:
            raise ValueError(f"max_cache_bytes must be >= 1, got {max_cache_bytes!r}")
        self.max_cache_bytes = max_cache_bytes
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.codec = codec
        self.batch_size = batch_size
        grammar = getattr(codec, "grammar", None)
        self.grammar = grammar.to(self.device) if grammar is not None else None
        # transformers >= 5.2x names the KV cache argument ``cache``, earlier 5.x
        # ``past_key_values``; a PEFT wrapper forwards to its base model's.
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        params = inspect.signature(base.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ codec
    def encode(self, record: Record) -> list[int]:
        return self.codec.encode(record)

    def encode_prefix(self, record: Record, field: str | None) -> list[int]:
        return self.codec.encode_prefix(record, field)

    def encode_value(self, field: str | None, value: str) -> list[int]:
        return self.codec.encode_value(field, value)

    def decode_value(self, field: str | None, ids: Sequence[int]) -> str:
        return self.codec.decode_value(field, ids)

    # ------------------------------------------------------------------ model
    def _forward(self, ids: torch.Tensor, cache: DynamicCache | None = None,
                 attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, DynamicCache]:
        out = self.model(input_ids=ids, attention_mask=attention_mask, use_cache=True, **{self._cache_arg: cache})
        new_cache = out.cache if hasattr(out, "cache") else out.past_key_values
        return out.logits.float(), new_cache

    def _logprobs(self, logits: torch.Tensor, states: torch.Tensor | None) -> torch.Tensor:
        """Log-softmax over the tokens the grammar allows in ``states`` (all tokens without one)."""
        if self.grammar is not None:
            logits = logits.masked_fill(~self.grammar.allowed[states], float("-inf"))
        return torch.log_softmax(logits, dim=-1)

    def _start_state(self, prefix: Sequence[int]) -> int | None:
        """The grammar state after ``prefix`` (which starts with BOS)."""
        if self.grammar is None:
            return None
        if not prefix or prefix[0] != self.codec.bos_id:
            raise ValueError("prefix must start with the codec's BOS token")
        return self.grammar.state_after(prefix[1:])

    @staticmethod
    def _select(cache: DynamicCache, index: torch.Tensor) -> DynamicCache:
        return DynamicCache([(layer.keys.index_select(0, index), layer.values.index_select(0, index))
                             for layer in cache.layers])

    # ------------------------------------------------------------------ Scorer
    @torch.no_grad()
    def token_stats(self, sequences: Sequence[Sequence[int]]) -> list[TokenStats]:
        """Per predicted token (positions 1..n-1): log p of the actual token, and the
        mean ``sum_z p log p`` and std of log p over the grammar-allowed tokens."""
        out: list[TokenStats] = []
        for start in range(0, len(sequences), self.batch_size):
            out += self._token_stats_batch(sequences[start:start + self.batch_size], offset=start)
        return out

    def _token_stats_batch(self, seqs: Sequence[Sequence[int]], *, offset: int) -> list[TokenStats]:
        if any(len(s) < 2 for s in seqs):
            raise ValueError("token_stats needs sequences of at least 2 tokens (BOS and one more)")
        width = max(len(s) for s in seqs)
        pad = getattr(self.codec, "pad_id", 0)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, :len(s)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        states = None
        if self.grammar is not None:
            states = torch.zeros((len(seqs), width - 1), dtype=torch.long, device=self.device)
            s = torch.full((len(seqs),), self.grammar.start, dtype=torch.long, device=self.device)
            for t in range(width - 1):
                states[:, t] = s.clamp(min=0)
                s = torch.where(mask[:, t + 1].bool(), self.grammar.next_state[s.clamp(min=0), ids[:, t + 1]], s)
                bad = (s < 0) & mask[:, t + 1].bool()
                if bad.any():
                    i = int(bad.nonzero()[0, 0])
                    raise ValueError(f"sequence {offset + i} leaves the grammar at position {t + 1}")
        logits, _ = self._forward(ids, attention_mask=mask)
        lp = self._logprobs(logits[:, :-1], states)
        actual = lp.gather(-1, ids[:, 1:, None]).squeeze(-1)
        p = lp.exp()
        finite = torch.isfinite(lp)
        plogp = torch.where(finite, p * lp, torch.zeros_like(lp))
        mean = plogp.sum(-1)
        var = torch.where(finite, p * (lp - mean[..., None]) ** 2, torch.zeros_like(lp)).sum(-1)
        std = var.clamp(min=0).sqrt()
        out = []
        for i, s in enumerate(seqs):
            n = len(s) - 1
            out.append(TokenStats(logprob=actual[i, :n].cpu().numpy().astype(np.float64),
                                  mean=mean[i, :n].cpu().numpy().astype(np.float64),
                                  std=std[i, :n].cpu().numpy().astype(np.float64)))
        return out

    @torch.no_grad()
    def continuation_logprobs(self, prefix: Sequence[int], continuations: Sequence[Sequence[int]]) -> np.ndarray:
        """``log p(c | prefix)`` of each continuation, summed over its tokens (see the module docstring).

        A continuation that leaves the grammar scores ``-inf``; an empty one scores 0.
        """
        n = len(continuations)
        if n == 0:
            return np.zeros(0)
        lengths = np.fromiter((len(c) for c in continuations), dtype=np.int64, count=n)
        width = int(lengths.max())
        total = np.zeros(n)
        if width == 0:
            return total
        padded = np.full((n, width), -1, dtype=np.int64)
        if np.all(lengths == width):
            padded[:] = np.asarray(continuations, dtype=np.int64).reshape(n, width)
        else:
            for i, c in enumerate(continuations):
                padded[i, :len(c)] = c
        vocab = self.model.config.vocab_size
        if padded.max() >= vocab:
            raise ValueError(f"a continuation holds token id {int(padded.max())} outside the vocabulary ({vocab})")
        order = np.lexsort(padded.T[::-1])
        sorted_ids = padded[order]
        levels = _trie_levels(sorted_ids, lengths[order])
        scores = np.zeros(n)

        state0 = self._start_state(prefix)
        logits, cache = self._forward(torch.as_tensor([list(prefix)], dtype=torch.long, device=self.device))
        states = torch.tensor([state0 if state0 is not None else 0], dtype=torch.long, device=self.device)
        lp = self._logprobs(logits[:, -1], states if state0 is not None else None)
        tokens = torch.as_tensor(sorted_ids, device=self.device)
        prefix_bytes = sum(x.numel() * x.element_size() for layer in cache.layers for x in (layer.keys, layer.values))
        row_bytes = prefix_bytes * (len(prefix) + width) / len(prefix)
        batch = max(1, min(self.batch_size, int(self.max_cache_bytes // (row_bytes * width))))
        self._add_edges(scores, levels[0], 0, 1, lp, tokens, depth=0)
        self._expand(scores, levels, tokens, batch=batch, depth=0, lo=0, hi=1, cache=cache, states=states)
        total[order] = scores
        return total

    def _add_edges(self, scores: np.ndarray, level: _Level, lo: int, hi: int, lp: torch.Tensor,
                   tokens: torch.Tensor, *, depth: int) -> None:
        """Add the edge log-probabilities of nodes ``[lo, hi)`` of ``level`` to their rows."""
        a, b = np.searchsorted(level.node, [lo, hi])
        rows = level.rows[a:b]
        local = torch.as_tensor(level.node[a:b] - lo, device=lp.device)
        edge = lp[local, tokens[rows, depth]]
        scores[rows] += edge.cpu().numpy()

    def _expand(self, scores, levels, tokens, *, batch, depth, lo, hi, cache, states) -> None:
        """Score the children of nodes ``[lo, hi)`` at ``depth`` (whose KV ``cache`` is given), depth-first."""
        if depth + 1 >= len(levels):
            return
        child = levels[depth + 1]
        c_lo, c_hi = np.searchsorted(child.parent, [lo, hi])
        for s in range(int(c_lo), int(c_hi), batch):
            t = min(s + batch, int(c_hi))
            parent = torch.as_tensor(child.parent[s:t] - lo, device=self.device)
            tok = torch.as_tensor(child.token[s:t], device=self.device)
            logits, sub = self._forward(tok[:, None], self._select(cache, parent))
            if self.grammar is not None:
                sub_states = self.grammar.next_state[states[parent], tok]
                dead = sub_states < 0
                lp = self._logprobs(logits[:, -1], sub_states.clamp(min=0))
                lp[dead] = float("-inf")
            else:
                sub_states = states[parent]
                lp = self._logprobs(logits[:, -1], None)
            self._add_edges(scores, child, s, t, lp, tokens, depth=depth + 1)
            self._expand(scores, levels, tokens, batch=batch, depth=depth + 1, lo=s, hi=t, cache=sub,
                         states=sub_states.clamp(min=0))

    @torch.no_grad()
    def complete(self, prefix: Sequence[int], *, field: str | None, beam_width: int = 1,
                 max_new_tokens: int = 64) -> list[tuple[str, float]]:
        """Ranked completions of ``field`` after ``prefix`` by beam search in the grammar.

        A hypothesis ends when the grammar leaves ``field`` (the terminator's
        log-probability counts, the terminator is not part of the value) or after
        ``max_new_tokens``. ``beam_width=1`` is greedy decoding.

        Returns:
            Up to ``beam_width`` ``(value, log-prob)`` pairs, most likely first.
        """
        if beam_width < 1 or max_new_tokens < 1:
            raise ValueError(f"beam_width and max_new_tokens must be >= 1, got {beam_width}, {max_new_tokens}")
        fields = list(getattr(self.codec, "fields", []))
        target = fields.index(field) if field is not None else 0
        state0 = self._start_state(prefix)
        if state0 is not None and int(self.grammar.field_of[state0]) != target:
            raise ValueError(f"the prefix does not end inside field {field!r}")
        stops = {getattr(self.codec, "sep_id", None), getattr(self.codec, "eos_id", None)}
        logits, cache = self._forward(torch.as_tensor([list(prefix)], dtype=torch.long, device=self.device))
        live: list[tuple[list[int], float]] = [([], 0.0)]
        states = torch.tensor([state0 if state0 is not None else 0], dtype=torch.long, device=self.device)
        done: list[tuple[list[int], float]] = []
        for _ in range(max_new_tokens):
            lp = self._logprobs(logits[:, -1], states if state0 is not None else None)
            cand = (torch.tensor([sc for _, sc in live], device=self.device)[:, None] + lp).flatten()
            k = min(2 * beam_width, int(torch.isfinite(cand).sum()))
            top_scores, top_idx = cand.topk(k)
            keep: list[tuple[int, int, int, float]] = []
            vocab = lp.shape[-1]
            for score, idx in zip(top_scores.tolist(), top_idx.tolist()):
                b, tok = divmod(idx, vocab)
                nxt = int(self.grammar.next_state[states[b], tok]) if state0 is not None else 0
                ids = live[b][0]
                if state0 is not None and int(self.grammar.field_of[nxt]) != target:
                    done.append((ids + ([] if tok in stops else [tok]), score))
                elif len(keep) < beam_width:
                    keep.append((b, tok, nxt, score))
            done.sort(key=lambda h: -h[1])
            if not keep or (len(done) >= beam_width and keep[0][3] <= done[beam_width - 1][1]):
                live = []
                break
            live = [(live[b][0] + [tok], score) for b, tok, _, score in keep]
            parent = torch.tensor([b for b, *_ in keep], device=self.device)
            states = torch.tensor([nxt for _, _, nxt, _ in keep], dtype=torch.long, device=self.device)
            logits, cache = self._forward(torch.tensor([[tok] for _, tok, _, _ in keep], device=self.device),
                                          self._select(cache, parent))
        ranked = sorted(done + live, key=lambda h: -h[1])[:beam_width]
        return [(self.codec.decode_value(field, ids), score) for ids, score in ranked]
