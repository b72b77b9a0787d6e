"""Presidio's findings for many texts, computed with less work than one ``analyze`` per text.

:func:`analyze_batch` returns, for each text, exactly what
``AnalyzerEngine.analyze(text, entities=engine.entities, score_threshold=...,
context=..., allow_list=...)`` returns (the scan then resolves overlaps). It
follows the steps of ``analyze`` (recognizers, context enhancement, threshold,
duplicates, allow-list) with four savings, each of which leaves every result
unchanged:

1. **NLP in batches** (``nlp.pipe``) instead of one pipeline call per text.
2. **NER first, lemmas on demand.** Presidio reads lemmas only to enhance
   scores from the words around a result. The pipeline's lemma branch (tok2vec,
   tagger, attribute ruler, lemmatizer) runs after NER only for texts where a
   lemma can change a score (:func:`deferrable_components` says when the branch
   may run after NER; :func:`needs_lemmas` which texts need it).
3. **Prefilters** skip recognizers that provably cannot match a text
   (:mod:`auditor.pii.prefilter`).
4. **One recognizer pass per distinct text**: the recognizers' raw results do
   not depend on the column context, so a value found in several columns is
   analysed once (:class:`TextCache`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.language import Language
from spacy.tokens import Doc

from auditor.pii.config import PiiConfig
from auditor.pii.engine import Engine
from auditor.pii.prefilter import Prefilter, TextShape, prefilter_of

#: Components that only feed lemmas and part-of-speech (never NER) in spaCy's pipelines.
LEMMA_BRANCH = frozenset({"tok2vec", "tagger", "morphologizer", "attribute_ruler", "lemmatizer"})

#: Token attributes computed from the text alone (the lexeme), set by no component.
LEXICAL_ATTRS = frozenset({"ORTH", "LOWER", "NORM", "PREFIX", "SUFFIX", "SHAPE"})


def deferrable_components(nlp: Language) -> tuple[str, ...]:
    """Components that may run after NER without changing any annotation; ``()`` if unsure.

    Running them later changes nothing when (a) NER reads none of their outputs:
    it embeds tokens itself (no listener on a shared tok2vec) from lexical
    attributes only, which the attribute ruler does not overwrite; and (b) they
    read nothing NER writes: no attribute-ruler pattern tests entity attributes,
    and taggers and lemmatizers never do. Any other component (an entity ruler,
    a parser) makes the answer ``()``: the whole pipeline then runs for every text.
    """
    names = list(nlp.pipe_names)
    if "ner" not in names or not set(names) - {"ner"} <= LEMMA_BRANCH:
        return ()
    ner_tok2vec = nlp.config["components"]["ner"]["model"].get("tok2vec", {})
    if "listener" in str(ner_tok2vec.get("@architectures", "")).lower():
        return ()
    if not set(ner_tok2vec.get("embed", {}).get("attrs", ["?"])) <= LEXICAL_ATTRS:
        return ()
    if "attribute_ruler" in names:
        for pattern in nlp.get_pipe("attribute_ruler").patterns:
            if set(pattern.get("attrs", {})) & LEXICAL_ATTRS:
                return ()
            token_keys = {key.upper() for token in _pattern_tokens(pattern) for key in token}
            if any(key.startswith("ENT_") for key in token_keys):
                return ()
    return tuple(n for n in names if n != "ner")


def _pattern_tokens(pattern: dict) -> Iterator[dict]:
    for tokens in pattern.get("patterns", []):
        yield from (t for t in tokens if isinstance(t, dict))


def needs_lemmas(
    raw: Sequence[RecognizerResult], *, recognizers: dict[str, EntityRecognizer], context: Sequence[str] | None,
    enhancer,
) -> bool:
    """Whether the lemmas of a text can change the context enhancement of its raw results.

    Presidio's ``LemmaContextAwareEnhancer`` reads lemmas for a result only if
    its recognizer has context words and the result was not boosted already;
    it then boosts the result iff a recognizer context word occurs in the
    surrounding lemmas *or* in the caller's ``context`` (the column name). When
    the column name already supports the recognizer, the lemmas cannot change
    the score (only the explanation, which ``analyze`` discards). Any other
    enhancer, or a recognizer with its own ``enhance_using_context``, needs lemmas.
    """
    if not raw:
        return False
    if type(enhancer) is not LemmaContextAwareEnhancer:
        return True
    words = [w.lower() for w in context or ()]
    for res in raw:
        recognizer = recognizers.get(res.recognition_metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
        if recognizer is None:
            continue
        if type(recognizer).enhance_using_context is not EntityRecognizer.enhance_using_context:
            return True
        if not recognizer.context or res.recognition_metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
            continue
        if not LemmaContextAwareEnhancer._find_supportive_word_in_context(words, recognizer.context, enhancer.context_matching_mode):
            return True
    return False


@dataclass
class Analysed:
    """One text's NLP artifacts and raw recognizer results (before context enhancement)."""

    doc: Doc
    artifacts: NlpArtifacts
    raw: list[RecognizerResult]
    has_lemmas: bool


@dataclass
class TextCache:
    """Per distinct text: NLP artifacts and raw recognizer results, shared by every column."""

    items: dict[str, Analysed] = field(default_factory=dict)


class BatchAnalyzer:
    """Runs an :class:`~auditor.pii.engine.Engine` over many texts (see the module docstring)."""

    def __init__(self, engine: Engine, config: PiiConfig, *, prefilters: bool = True):
        self.engine = engine
        self.config = config
        self.analyzer = engine.analyzer
        self.nlp = engine.nlp_engine.nlp[engine.language]
        self.deferred = deferrable_components(self.nlp)
        self.recognizers = self.analyzer.registry.get_recognizers(
            language=engine.language, entities=list(engine.entities), all_fields=False
        )
        self.by_id = {r.id: r for r in self.recognizers}
        # Presidio's lemma enhancer deep-copies the results before changing a
        # score, and the default recognizer-level enhancement changes nothing:
        # then the cached raw results are never modified and need no copy.
        self.copy_raw = type(self.analyzer.context_aware_enhancer) is not LemmaContextAwareEnhancer or any(
            type(r).enhance_using_context is not EntityRecognizer.enhance_using_context for r in self.recognizers
        )
        self.prefilters: list[Prefilter | None] = [prefilter_of(r) if prefilters else None for r in self.recognizers]
        self.skipped = 0

    def _artifacts(self, doc: Doc) -> NlpArtifacts:
        return self.engine.nlp_engine._doc_to_nlp_artifact(doc, self.engine.language)

    def _raw_results(self, text: str, artifacts: NlpArtifacts) -> list[RecognizerResult]:
        """The recognizer loop of ``AnalyzerEngine.analyze``, skipping prefiltered recognizers."""
        out: list[RecognizerResult] = []
        entities = list(self.engine.entities)
        shape = TextShape.of(text)
        for recognizer, may_match in zip(self.recognizers, self.prefilters):
            if may_match is not None and not may_match(shape):
                self.skipped += 1
                continue
            if not recognizer.is_loaded:
                recognizer.load()
                recognizer.is_loaded = True
            found = recognizer.analyze(text=text, entities=entities, nlp_artifacts=artifacts)
            for res in found or ():
                meta = res.recognition_metadata
                if not meta:
                    res.recognition_metadata = meta = {}
                meta.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
                meta.setdefault(RecognizerResult.RECOGNIZER_NAME_KEY, recognizer.name)
            out.extend(found or ())
        return out

    def prepare(self, texts: Sequence[str], cache: TextCache) -> None:
        """NLP (NER stage) and raw recognizer results for every text not in ``cache``."""
        todo = [t for t in dict.fromkeys(texts) if t not in cache.items]
        if not todo:
            return
        docs = self.nlp.pipe(
            todo, batch_size=self.config.batch_size, n_process=self.config.n_process, disable=list(self.deferred)
        )
        for text, doc in zip(todo, docs):
            artifacts = self._artifacts(doc)
            cache.items[text] = Analysed(doc, artifacts, self._raw_results(text, artifacts), not self.deferred)

    def add_lemmas(self, texts: Sequence[str], cache: TextCache) -> None:
        """Run the deferred lemma branch on the NER-stage docs of ``texts`` (in batches)."""
        todo = [cache.items[t] for t in dict.fromkeys(texts) if not cache.items[t].has_lemmas]
        if not todo:
            return
        docs: Iterator[Doc] = iter([item.doc for item in todo])
        for name in self.deferred:
            docs = self.nlp.get_pipe(name).pipe(docs, batch_size=self.config.batch_size)
        for item, doc in zip(todo, docs):
            ner = item.artifacts
            # As SpacyNlpEngine._doc_to_nlp_artifact, keeping the entities already mapped.
            item.artifacts = NlpArtifacts(
                entities=ner.entities, tokens=doc, tokens_indices=ner.tokens_indices,
                lemmas=[token.lemma_ for token in doc], nlp_engine=self.engine.nlp_engine,
                language=self.engine.language, scores=ner.scores,
            )
            item.has_lemmas = True

    def finish(self, text: str, item: Analysed, context: list[str] | None) -> list[RecognizerResult]:
        """The rest of ``AnalyzerEngine.analyze``: context, threshold, duplicates, allow-list."""
        if not item.raw:
            return []
        raw = copy.deepcopy(item.raw) if self.copy_raw else list(item.raw)
        results = self.analyzer._enhance_using_context(text, raw, item.artifacts, self.recognizers, context)
        results = [r for r in results if r.score >= self.config.score_threshold]
        results = EntityRecognizer.remove_duplicates(results)
        if self.config.allow_list:
            results = self.analyzer._remove_allow_list(results, list(self.config.allow_list), text, None, "exact")
        for res in results:
            res.analysis_explanation = None
        return results

    def analyze(self, texts: Sequence[str], *, context: list[str] | None, cache: TextCache) -> list[list[RecognizerResult]]:
        """``AnalyzerEngine.analyze`` results for each text, with ``context`` (column words)."""
        self.prepare(texts, cache)
        enhancer = self.analyzer.context_aware_enhancer
        lemma_texts = [
            t for t in texts
            if not cache.items[t].has_lemmas
            and needs_lemmas(cache.items[t].raw, recognizers=self.by_id, context=context, enhancer=enhancer)
        ]
        self.add_lemmas(lemma_texts, cache)
        return [self.finish(t, cache.items[t], context) for t in texts]


def analyze_batch(
    texts: Sequence[str], *, engine: Engine, config: PiiConfig, context: list[str] | None, cache: TextCache | None = None,
    prefilters: bool = True,
) -> list[list[RecognizerResult]]:
    """Presidio's ``analyze`` results for each text (see :class:`BatchAnalyzer`)."""
    return BatchAnalyzer(engine, config, prefilters=prefilters).analyze(texts, context=context, cache=cache or TextCache())
