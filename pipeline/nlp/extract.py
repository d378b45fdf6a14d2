"""One spaCy Doc in, attributions + events + entities out.

The NLP runs on the CLEAN body (after boilerplate removal); every offset returned is mapped back to the
RAW body with the article's :class:`pipeline.text.OffsetMap`. Texts longer than ``nlp.max_length`` arrive
as several pieces (see :func:`pipeline.nlp.model.pipe_texts`); :func:`extract_pieces` merges them.

Usage::

    text = prepare_text(article["body"])
    doc = nlp(text)
    attributions, events, entities = extract(doc, published_at=article["published_at"],
                                             offset_map=OffsetMap([(s["start"], s["end"]) for s in ...]))
"""

from __future__ import annotations

import re
from typing import Any

from pipeline.nlp.attributions import find_attributions
from pipeline.nlp.events import find_events
from pipeline.nlp.mentions import DocMentions
from pipeline.text import OffsetMap

__all__ = ["ENTITY_LABELS", "prepare_text", "extract", "extract_pieces"]

ENTITY_LABELS = {"PERSON", "ORG", "GPE", "NORP", "LOC", "FAC", "EVENT", "DATE", "LAW", "PRODUCT", "WORK_OF_ART"}

_WRAPPED_NL = re.compile(r"(?<=\S)\n(?=[^\s])")
#: Horizontal spaces other than " " (no-break, figure, thin, ideographic ...): the tokenizer makes each one a
#: token of its own ("of\xa0the" -> "of", "\xa0", "the"), which breaks every rule that looks at the previous
#: word ("Shevchuk of\xa0the ... Church" no longer reads as a prepositional phrase).
_ODD_SPACES = str.maketrans({c: " " for c in "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                                         "\u2009\u200a\u202f\u205f\u3000"})


def prepare_text(text: str) -> str:
    """Normalize spacing for the tagger without changing any offset.

    No-break and other one-character horizontal spaces become " ". In a body whose lines are wrapped at a
    fixed width (Reuters-21578 style), a newline followed by a non-space character is a wrap, not a paragraph
    break, and becomes a space (paragraphs there start with an indent). The result always has the same length
    as ``text``.
    """
    text = text.translate(_ODD_SPACES)
    lines = text.split("\n")
    if len(lines) < 4:
        return text
    widths = [len(x) for x in lines[:-1] if x.strip()]
    if not widths:
        return text
    wrapped = sum(1 for w in widths if 45 <= w <= 80)
    if wrapped / len(widths) < 0.6:
        return text
    return _WRAPPED_NL.sub(" ", text)


def extract(doc: Any, *, published_at: Any = None, offset_map: OffsetMap | None = None, char_offset: int = 0,
            sentence_offset: int = 0) -> tuple[list[dict], list[dict], list[dict]]:
    """Attributions, events and entities of one Doc.

    Args:
        doc: a Doc of (a piece of) the clean body.
        published_at: the article's publication time (epoch ms, ISO string or datetime) for date resolution.
        offset_map: clean -> raw offsets; identity if None.
        char_offset: where ``doc.text`` starts in the clean body (pieces of long texts).
        sentence_offset: index of the doc's first sentence in the clean body.

    Returns:
        ``(attributions, events, entities)`` as lists of dicts shaped like enriched_article.avsc.
    """
    om = offset_map or OffsetMap()

    def to_raw(a: int, b: int) -> tuple[int, int]:
        return om.span(a + char_offset, b + char_offset)

    dm = DocMentions(doc)
    res = find_attributions(doc, to_raw=to_raw, mentions=dm, sentence_offset=sentence_offset)
    events = find_events(doc, published_at=published_at, to_raw=to_raw, mentions=dm,
                         sources=res, sentence_offset=sentence_offset)
    entities = []
    for ent in doc.ents:
        if ent.label_ in ENTITY_LABELS:
            a, b = to_raw(ent.start_char, ent.end_char)
            entities.append({"text": ent.text, "label": ent.label_, "start": a, "end": b})
    return res.attributions, events, entities


def extract_pieces(pieces: list[tuple[int, Any]], *, published_at: Any = None,
                   offset_map: OffsetMap | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """:func:`extract` over the ``(char_offset, Doc)`` pieces of one text, merged (one entry per source)."""
    attrs: list[dict] = []
    events: list[dict] = []
    ents: list[dict] = []
    seen: set[tuple[str, str]] = set()
    sentences = 0
    for off, doc in pieces:
        a, e, n = extract(doc, published_at=published_at, offset_map=offset_map, char_offset=off,
                          sentence_offset=sentences)
        for x in a:
            key = (x["source"].lower(), x["kind"])
            if key not in seen:
                seen.add(key)
                attrs.append(x)
        events.extend(e)
        ents.extend(n)
        sentences += sum(1 for _ in doc.sents)
    return attrs, events, ents
