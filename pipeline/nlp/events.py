"""CAMEO-coded events from a spaCy Doc: trigger lexicon + actor slots, no dependency parse.

For each sentence:

1. Triggers: the longest phrase of the CAMEO lexicon (``pipeline/data/cameo.json``) at each token; verb
   forms must be tagged as verbs, event nouns as nouns; some triggers need an object word nearby
   ("sign" needs agreement/deal..., "exchange" needs prisoners...).
2. actor1: the nearest mention before the trigger that is not the object of a preposition ("Russia is
   coordinating with countries including France" -> Russia); a pronoun resolves to the previous actor;
   a noun trigger also takes an adjacent demonym ("a Russian strike"). Capitals, the Kremlin and
   leaders stand for the government (``RUSGOV``). Coordinated subjects ("Norway and Sweden pledged")
   give one event each.
3. actor2: the first mention after the trigger within the clause.
4. Modality (planned / hypothetical / postponed / asserted), negation, date (resolved against
   ``published_at``), and ``attributed_to`` from the sentence's attribution.

Reporting verbs that only introduce a quote are not in the lexicon; announcements, denials, accusations,
appeals and threats are.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from pipeline.nlp import lexicon
from pipeline.nlp.mentions import DocMentions, Mention

__all__ = ["find_events", "events", "resolve_date", "parse_published"]

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = {m: i + 1 for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july",
                                           "august", "september", "october", "november", "december"])}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_PLANNED = {"will", "'ll", "plans", "plan", "planned", "planning", "intends", "intend", "set", "going", "would",
            "aims", "expected", "to", "ready", "prepared", "shall", "wants", "seeks", "proposed"}
_HYPOTHETICAL = {"could", "might", "may", "if", "unless", "should", "possible", "possibly", "whether"}
_NEGATION = {"not", "n't", "never", "no", "without", "refused", "denied", "declined"}
#: Verbs whose object noun is the event: "launched an offensive", "imposed new sanctions".
_LIGHT_VERBS = {"launched", "launch", "launches", "launching", "carried", "carry", "carries", "carrying",
                "conducted", "conduct", "conducts", "conducting", "began", "begin", "begins", "begun", "mounted",
                "mount", "staged", "stage", "resumed", "resume", "imposed", "impose", "imposes", "imposing",
                "held", "hold", "holds", "holding", "started", "start", "made", "make", "issued", "issue",
                "announced", "unleashed", "stepped", "escalated", "escalating", "intensified", "ordered", "order",
                "continued", "continue", "continues", "sent", "send", "extended", "expanded", "slapped", "levied",
                "agreed", "signed", "lodged", "lodge", "delivered", "provided", "offered", "renewed", "expressed",
                "voiced", "open", "opened", "opening"}
_CLAUSE_BREAK = {";", ":", "\u2014", "\u2013", "(", ")"}
_SUBJ_STOP = {"who", "which", "that", "because", "after", "before", "while", "when", "as", "since", "but",
              "although", "though", "where", "if", "until"}


def parse_published(published_at: Any) -> dt.date | None:
    """The publication date from epoch milliseconds, an ISO 8601 string or a datetime; None if unknown."""
    if published_at is None or published_at == "":
        return None
    try:
        if isinstance(published_at, dt.datetime):
            return published_at.astimezone(dt.timezone.utc).date() if published_at.tzinfo else published_at.date()
        if isinstance(published_at, dt.date):
            return published_at
        if isinstance(published_at, (int, float)):
            return dt.datetime.fromtimestamp(published_at / 1000, tz=dt.timezone.utc).date()
        s = str(published_at).strip().replace("Z", "+00:00")
        return dt.datetime.fromisoformat(s).date()
    except (ValueError, OverflowError, OSError):
        m = re.match(r"(\d{4})-(\d{2})-(\d{2})", str(published_at))
        return dt.date(int(m[1]), int(m[2]), int(m[3])) if m else None


def resolve_date(text: str, published: dt.date | None) -> str | None:
    """ISO date of a date expression relative to the publication date, or None.

    Weekdays resolve to the latest such day on or before the publication date ("Thursday"); "today",
    "yesterday", "tomorrow" likewise; "June 24"/"24 June" take the publication year; a month or year alone
    ("last month", "in May", "2020") gives None.
    """
    if published is None:
        m = re.search(r"\b(\w+) (\d{1,2}),? (\d{4})\b", text)
        if m and m[1].lower() in _MONTHS:
            try:
                return dt.date(int(m[3]), _MONTHS[m[1].lower()], int(m[2])).isoformat()
            except ValueError:
                return None
        return None
    low = text.lower()
    if re.search(r"\b(today|tonight|this morning|this afternoon|this evening)\b", low):
        return published.isoformat()
    if "yesterday" in low or "last night" in low:
        return (published - dt.timedelta(days=1)).isoformat()
    if "tomorrow" in low:
        return (published + dt.timedelta(days=1)).isoformat()
    for i, wd in enumerate(_WEEKDAYS):
        if re.search(rf"\b{wd}\b", low):
            delta = (published.weekday() - i) % 7
            if "next" in low:
                delta = -((i - published.weekday()) % 7 or 7)
            return (published - dt.timedelta(days=delta)).isoformat()
    m = re.search(r"\b([a-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?\b(?:,? (\d{4}))?", low) or None
    if m and m[1] in _MONTHS:
        month, day, year = _MONTHS[m[1]], int(m[2]), int(m[3]) if m[3] else published.year
    else:
        m = re.search(r"\b(\d{1,2}) ([a-z]+)\b(?: (\d{4}))?", low)
        if not (m and m[2] in _MONTHS):
            return None
        month, day, year = _MONTHS[m[2]], int(m[1]), int(m[3]) if m[3] else published.year
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def events(doc: Any, *, published_at: Any = None, **kw: Any) -> list[dict]:
    """The event dicts of ``doc`` (see :func:`find_events`)."""
    return find_events(doc, published_at=published_at, **kw)


def find_events(doc: Any, *, published_at: Any = None, to_raw: Callable[[int, int], tuple[int, int]] | None = None,
                mentions: DocMentions | None = None, sources: Any = None,
                sentence_offset: int = 0) -> list[dict]:
    """CAMEO events of ``doc``.

    Args:
        doc: a spaCy Doc with sentences, tags and entities.
        published_at: publication time (epoch ms, ISO string, datetime or None) for date resolution.
        to_raw: maps a ``[start, end)`` character span of ``doc.text`` to the raw body; identity if None.
        mentions: the shared mention layer, when the caller already built it.
        sources: the :class:`~pipeline.nlp.attributions.AttributionResult` of the same doc, for
            ``attributed_to`` (None: no attribution).
        sentence_offset: added to sentence indices (for texts processed in pieces).

    Returns:
        Event dicts with keys code, root_code, label, trigger, actor1, actor2, location, date_text, date,
        sentence, start, end, attributed_to, negated, modality.
    """
    dm = mentions or DocMentions(doc)
    lex = lexicon.cameo()
    to_raw = to_raw or (lambda a, b: (a, b))
    published = parse_published(published_at)
    out: list[dict] = []
    last_actor: list[Mention | None] = [None]
    lows = [t.lower_ for t in doc]
    tags = [t.tag_ for t in doc]
    dates = [e for e in doc.ents if e.label_ == "DATE"]
    for si, sent in enumerate(doc.sents):
        i = sent.start
        sent_actor = None
        while i < sent.end:
            if lows[i] not in lex.first_words:
                i += 1
                continue
            trig, n = _match(lows, tags, lex, i, sent.end)
            if trig is None:
                i += 1
                continue
            actors, how = _actor1(dm, sent, i, i + n, trig, last_actor[0])
            if actors:
                actor2 = _actor2(dm, sent, i + n, actors)
                modality, negated = _modality(doc, sent, i, trig)
                date_text, date = _date(dates, sent, i, published)
                location = _location(dm, sent, i + n)
                a, b = to_raw(doc[i].idx, doc[i + n - 1].idx + len(doc[i + n - 1].text))
                src = sources.source_for(si + sentence_offset, i) if sources is not None else None
                for act in actors:
                    if src and act.name == src:
                        attributed = None
                    else:
                        attributed = src
                    out.append({
                        "code": trig.code, "root_code": trig.code[:2], "label": lex.label(trig.code),
                        "trigger": doc[i:i + n].text, "actor1": _actor_dict(act), "actor2": _actor_dict(actor2),
                        "location": location, "date_text": date_text, "date": date,
                        "sentence": si + sentence_offset, "start": a, "end": b, "attributed_to": attributed,
                        "negated": negated, "modality": modality,
                    })
                if how != "pronoun":
                    sent_actor = actors[0]
            i += n
        if sent_actor is not None:
            last_actor[0] = sent_actor
        else:
            # the subject of a sentence without events still sets the pronoun antecedent
            for m in dm.mentions:
                if sent.start <= m.start < sent.end and m.country and not dm.preceded_by_preposition(m):
                    last_actor[0] = m
                    break
    return _dedupe(out)


def _dedupe(evs: list[dict]) -> list[dict]:
    seen = set()
    out = []
    for e in evs:
        k = (e["sentence"], e["root_code"], e["actor1"]["country"], e["actor1"]["text"],
             (e["actor2"] or {}).get("country"))
        if k in seen:
            continue
        seen.add(k)
        out.append(e)
    return out


def _match(lows: list[str], tags: list[str], lex: lexicon.CameoLexicon, i: int, end: int):
    tag = tags[i]
    for n in range(min(lex.max_len, end - i), 0, -1):
        words = tuple(lows[i:i + n])
        trig = None
        if words in lex.phrases and (tag.startswith("VB") or (n > 1 and tag in ("NN", "NNS", "JJ"))):
            trig = lex.phrases[words]
        elif words in lex.nouns and (tag.startswith("NN") or n > 1):
            trig = lex.nouns[words]
        if trig is None:
            continue
        if trig.needs_object:
            window = lows[i + n:min(end, i + n + 6)]
            if not any(w in trig.needs_object for w in window):
                continue
        return trig, n
    return None, 0


def _actor_dict(m: Mention | None) -> dict | None:
    if m is None:
        return None
    return {"text": m.text, "type": m.label if m.label not in ("AGENCY", "NP", "PRON") else
            {"AGENCY": "ORG", "NP": "ORG", "PRON": None}[m.label], "code": m.actor_code, "country": m.country}


def _usable(m: Mention) -> bool:
    return m.kind in ("person", "country", "group", "official_body", "organization", "news_agency") and (
        m.country is not None or m.kind in ("organization", "official_body"))


def _actor1(dm: DocMentions, sent: Any, i: int, j: int, trig: lexicon.Trigger, last: Mention | None):
    doc = dm.doc
    # noun triggers: an adjacent modifier ("a Russian strike", "Russia's invasion")
    if trig.is_noun:
        k = i - 1
        while k >= sent.start and doc[k].tag_ in ("JJ", "DT", "CD") and doc[k].lower_ not in ("the", "a") \
                and dm.at(k) is None:
            k -= 1
        m = dm.at(k) if k >= sent.start else None
        if m is not None and m.country and m.kind in ("group", "country", "official_body", "person"):
            return [m], "modifier"
        # otherwise only as the object of a light verb: "launched an invasion", "imposed sanctions"
        k = i - 1
        while k >= sent.start and (doc[k].tag_ in ("JJ", "DT", "CD", "PRP$", "JJR", "JJS", "HYPH", "NN", "VBN")
                                   and doc[k].lower_ not in _LIGHT_VERBS):
            k -= 1
        if k < sent.start or doc[k].lower_ not in _LIGHT_VERBS:
            return [], None
        i = k
    k = i - 1
    depth = 0
    while k >= sent.start:
        t = doc[k]
        if t.text in _CLAUSE_BREAK or t.is_quote:
            break
        if t.lower_ in _SUBJ_STOP and depth == 0 and k < i - 1:
            break
        m = dm.at(k)
        if m is not None:
            if _usable(m) and not dm.preceded_by_preposition(m) and not _is_possessive_modifier(doc, m):
                return _coordinated(dm, sent, m), "subject"
            k = m.start - 1
            continue
        if t.tag_ == "PRP" and t.lower_ in ("he", "she", "it", "they", "we"):
            if last is not None and _usable(last):
                return [last], "pronoun"
            return [], "pronoun"
        if t.tag_ in ("NN", "NNS") and t.lower_ in ("forces", "troops", "military", "army", "government",
                                                    "ministry", "officials", "authorities", "navy", "soldiers"):
            aff = dm.affiliated_np(k)
            if aff is not None and aff.country:
                return [aff], "subject"
        k -= 1
    return [], None


def _is_possessive_modifier(doc: Any, m: Mention) -> bool:
    """ "Russia's war" as the subject is fine; "the president of Russia's" is not our concern here."""
    return False


def _coordinated(dm: DocMentions, sent: Any, m: Mention) -> list[Mention]:
    """m plus the mentions coordinated with it before it: "Norway, Sweden and Denmark"."""
    doc = dm.doc
    out = [m]
    k = m.start - 1
    while k > sent.start and doc[k].lower_ in ("and", ",", "&"):
        k -= 1
        if doc[k].lower_ in ("and", ","):
            continue
        prev = dm.at(k)
        if prev is None or not _usable(prev) or prev.kind != m.kind and {prev.kind, m.kind} - {"country", "group"}:
            break
        out.insert(0, prev)
        k = prev.start - 1
    return out


def _actor2(dm: DocMentions, sent: Any, j: int, actors: list[Mention]) -> Mention | None:
    doc = dm.doc
    for k in range(j, min(sent.end, j + 10)):
        t = doc[k]
        if t.text in _CLAUSE_BREAK or t.lower_ in _SUBJ_STOP:
            return None
        m = dm.at(k)
        if m is not None and m.country and all(m.country != a.country or m.kind != a.kind for a in actors):
            return m
    return None


def _modality(doc: Any, sent: Any, i: int, trig: lexicon.Trigger) -> tuple[str, bool]:
    window = [t.lower_ for t in doc[max(sent.start, i - 4):i]]
    negated = any(w in _NEGATION for w in window[-3:])
    if any(w in _HYPOTHETICAL for w in window) or any(t.lower_ == "if" for t in doc[sent.start:i]):
        return "hypothetical", negated
    if "postpone" in sent.text.lower() and trig.code[:2] not in ("01",):
        if any(t.lower_.startswith("postpon") for t in doc[max(sent.start, i - 3):i + 3]):
            return "postponed", negated
    if any(w in _PLANNED for w in window[-3:]):
        return "planned", negated
    if trig.code == "010":
        return "announced", negated
    return "asserted", negated


def _date(dates: list, sent: Any, i: int, published: dt.date | None) -> tuple[str | None, str | None]:
    best = None
    for ent in dates:
        if not (sent.start <= ent.start < sent.end):
            continue
        d = abs(ent.start - i)
        if best is None or d < best[0]:
            best = (d, ent)
    if best is None:
        return None, None
    text = best[1].text
    return text, resolve_date(text, published)


def _location(dm: DocMentions, sent: Any, j: int) -> str | None:
    doc = dm.doc
    for k in range(j, sent.end - 1):
        if doc[k].lower_ in ("in", "at", "near", "on") and doc[k + 1].ent_type_ in ("GPE", "LOC", "FAC"):
            m = dm.at(k + 1)
            return m.text if m else doc[k + 1].text
    return None
