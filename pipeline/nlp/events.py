"""CAMEO-coded events from a spaCy Doc: trigger lexicon + actor slots, no dependency parse.

For each sentence:

1. Triggers (``pipeline/data/cameo.json``): the longest contiguous phrase at each token, else a verb + noun
   phrase with modifiers between ("lodged a formal protest", "imposed new sanctions"), else one word. Verb
   forms must be tagged as verbs, event nouns as nouns; some triggers need an object word nearby ("sign"
   needs agreement/deal..., "launch" needs missiles/drones...). Background nouns (invasion, war, sanctions...)
   count only as the object of a verb ("launched an invasion"), never as a bare reference.
2. actor1 -- the subject of the trigger, by rules of the genre rather than a parse:
   * the nearest mention before the verb that is not the object of a preposition, without crossing a clause
     break, a subordinator or a reporting verb ("X said the floods destroyed ..." has no actor); a subject
     with no country (a city, an unknown person, a company) gives no event rather than a wrong actor;
   * passive "Y was attacked by X" / "a swap mediated by X" -> X; an agentless passive of a self-reported
     act (announce, invite, deploy, sanction...) in a sourced sentence -> the source; otherwise no event;
   * "X-mediated talks" -> X; "X summoned ... and lodged a protest" -> X; "after warning that" and a
     sentence-initial participle take the main clause's subject;
   * pronouns: "X said it would" -> X; "we" in a quote -> the quote's source; he/she -> the last person;
     else the previous sentence's actor;
   * noun triggers: an adjacent modifier ("a Russian strike", "Germany's surrender"), a "by" agent, the
     parties of "talks between A and B" (one event each), or the subject of the governing verb;
   * capitals, the Kremlin, ministries and leaders stand for the government (``RUSGOV``); coordinated
     subjects ("Norway and Sweden pledged") give one event each; news agencies never act.
3. actor2: the first mention after the trigger within the clause.
4. Modality (planned / hypothetical / postponed / asserted), negation, date (resolved against
   ``published_at``), and ``attributed_to`` from the sentence's attribution.

Reporting verbs that only introduce a quote are not in the lexicon; announcements, denials, accusations,
appeals and threats are.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
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
                "voiced", "open", "opened", "opening", "give", "gave", "given", "gives", "set", "sets",
                "renewed", "renew", "extended", "issuing"}
_BE = {"is", "are", "was", "were", "be", "been", "being", "'s", "'re", "am"}
_AUX = _BE | {"has", "have", "had", "having", "do", "does", "did", "will", "would", "shall", "should", "can", "could",
              "may", "might", "must", "'ll", "'d", "'ve"}
#: Verbs that report speech: a subject search does not cross them ("X said the floods destroyed ...").
_REPORTING = {"said", "says", "say", "saying", "told", "tells", "telling", "added", "adds", "adding", "stated",
              "states", "wrote", "writes", "noted", "notes", "reported", "reports", "according", "claimed", "claims",
              "believes", "believe", "thinks", "think", "estimates", "suggested", "suggests", "asserted", "recalled",
              "explained", "argued", "argues", "stressed", "acknowledged", "confirmed", "showed", "shows"}
_PRONOUNS = {"he", "she", "it", "they", "we", "i"}
#: Subordinators before a participle whose subject is the main clause's ("after warning that ...").
_ADJUNCT = {"after", "before", "while", "by", "since", "when", "without", "despite", "in", "upon", "following"}
#: Common-noun heads of an unnamed actor ("Ukrainian forces", "the Russian military").
_ACTOR_HEADS = {"forces", "troops", "military", "army", "government", "ministry", "officials", "authorities", "navy",
                "soldiers", "police", "guards", "units", "command", "administration", "leaders", "diplomats"}
#: Codes a government reports about itself: an agentless passive in a sourced sentence ("invitations were
#: being issued, the ministry said") takes the source as actor. Not for force, where the source is often the target.
_SELF_REPORTED = {"01", "02", "03", "04", "05", "06", "07", "08", "09", "15", "16", "17"}
#: Subordinators a clause subject may follow ("after Russia launched ...").
_SUBORD = {"after", "before", "since", "as", "until", "while", "when", "because", "although", "though", "if", "once",
           "unless", "than", "whether"}
#: Heads of a definite description that refers back to an organization ("the fund", "the ministry").
_ORG_ANAPHORS = {"fund", "lender", "bank", "organization", "organisation", "bloc", "alliance", "ministry", "body",
                 "committee", "council", "court", "agency", "government", "administration", "commission"}
#: Heads of a person or unit named by a possessive ("its president", "their forces").
_POSSESSED_HEADS = {"president", "leader", "leaders", "prime", "minister", "government", "forces", "troops", "army",
                    "military", "navy", "officials", "diplomats", "ambassador", "envoy", "delegation"}
#: Plural common nouns that act without a country ("nearby countries have taken in refugees"): actor1 null.
_GENERIC_ACTORS = {"countries", "nations", "organizations", "organisations", "governments", "allies", "leaders",
                   "donors", "critics", "partners", "lawmakers", "protesters", "demonstrators", "rebels", "militants",
                   "insurgents", "states", "powers", "agencies"}
#: Event words whose infinitive complement is the content of the event, not an event ("urged X to stop").
_CONTENT_ROOTS = {"02", "10", "13", "17", "03"}
_CONTENT_NOUNS = {"deadline", "ultimatum", "call", "calls", "appeal", "pressure", "demand", "demands", "plea",
                  "request", "proposal", "plan", "bid", "effort", "efforts", "push", "attempt", "readiness",
                  "willingness", "chance", "decision", "order", "orders", "permission", "right"}
_PARTICLES = {"to", "in", "on", "for", "with", "upon", "down", "out", "up", "of", "off", "into", "back", "over",
              "the", "a", "an", "from", "at", "by", "around"}
#: Tags of the words allowed between the verb and the noun of a verb + noun phrase.
_FILLER_TAGS = {"DT", "JJ", "JJR", "JJS", "PRP$", "CD", "RB", "VBN", "HYPH", "NN", "NNP", "NNS", "POS", "NNPS", "VBG",
                "``", "''"}
#: International actors without a country (actor1 country null).
_INTL = {"united nations", "un", "u.n.", "nato", "european union", "eu", "imf", "world bank", "g7", "g20", "g-7",
         "g-20",
         "international monetary fund", "opcw", "osce", "red cross", "iaea", "who", "wto", "european commission",
         "security council", "un security council", "african union", "asean", "opec", "interpol", "icc",
         "international criminal court", "international court of justice", "council of europe", "the fund",
         "group of seven", "world food programme", "unicef", "unhcr"}
_INTL_WORDS = {"international", "nations", "g7", "g20", "nato", "un", "eu", "imf", "european"}
#: Events of one (root, actor, target) closer than this in a sentence are one event.
_DEDUPE_CHARS = 30
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


@dataclass(frozen=True)
class _Index:
    """What :mod:`pipeline.nlp.lexicon` does not index: gapped verb+noun phrases ("lodged a formal protest"),
    per-verb object constraints, nouns that need a governing verb, two-sided nouns."""

    gapped: dict  # (verb form, last word) -> Trigger
    gapped_first: frozenset
    verb_objects: dict  # verb form -> object words
    need_verb: frozenset  # noun word tuples
    symmetric: frozenset  # noun word tuples


@functools.lru_cache(maxsize=None)
def _index() -> _Index:
    lex = lexicon.cameo()
    data = lexicon.load_data("cameo.json")
    irregular = data.get("irregular", {})
    gapped: dict[tuple[str, str], lexicon.Trigger] = {}
    for words, trig in lex.phrases.items():
        if len(words) >= 2 and words[-1] not in _PARTICLES and not any(w in _PARTICLES for w in words[1:]):
            gapped.setdefault((words[0], words[-1]), trig)
    verb_objects: dict[str, tuple[str, ...]] = {}
    for e in data["entries"]:
        for verb, objs in (e.get("needs_object_verbs") or {}).items():
            for form in lexicon._inflect(verb, irregular):
                verb_objects[form] = tuple(objs)
    need_verb = frozenset(tuple(n.split()) for n in data.get("nouns_need_verb", ()))
    symmetric = frozenset(tuple(n.split()) for n in data.get("symmetric_nouns", ()))
    return _Index(gapped, frozenset(k[0] for k in gapped), verb_objects, need_verb, symmetric)


class _Ctx:
    """Per-doc state shared by the helpers."""

    def __init__(self, doc: Any, dm: DocMentions, sources: Any):
        self.doc = doc
        self.dm = dm
        self.lows = [t.lower_ for t in doc]
        self.tags = [t.tag_ for t in doc]
        self.sources = sources
        self.by_name: dict[str, Mention] = {}
        for m in dm.mentions:
            self.by_name.setdefault(m.name, m)
            self.by_name.setdefault(m.text, m)
        self.src_country = {}
        if sources is not None:
            for a in getattr(sources, "attributions", None) or []:
                if a.get("country"):
                    self.src_country[a.get("source")] = a["country"]
        self.last_actor: Mention | None = None
        self.sent_index = 0
        self.sentence_offset = 0

    def source_mention(self, sent: Any, i: int) -> Mention | None:
        """The mention of the source the sentence is attributed to, when it has a country."""
        if self.sources is None:
            return None
        # the cue whose complement holds the event: the nearest before it ("X said [it was done]"), else
        # the nearest after it ("[it was done], X said")
        cues = (getattr(self.sources, "sentence_source", None) or {}).get(self.sent_index + self.sentence_offset) \
            or []
        before = [c for c in cues if c[0] < i]
        after = [c for c in cues if c[0] > i]
        name = max(before)[1] if before else (min(after)[1] if after else None)
        if not name:
            return None
        for m in self.dm.mentions:
            if sent.start <= m.start < sent.end and (m.name == name or m.text == name) and _usable(m):
                return m
        m = self.by_name.get(name)
        if m is not None and _usable(m) and m.kind != "news_agency":
            return m
        return None


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
    ix = _index()
    to_raw = to_raw or (lambda a, b: (a, b))
    published = parse_published(published_at)
    out: list[dict] = []
    ctx = _Ctx(doc, dm, sources)
    ctx.sentence_offset = sentence_offset
    lows, tags = ctx.lows, ctx.tags
    first = lex.first_words | ix.gapped_first
    dates = [e for e in doc.ents if e.label_ == "DATE"]
    for si, sent in enumerate(doc.sents):
        ctx.sent_index = si
        i = sent.start
        sent_actor = None
        last_trigger = None
        while i < sent.end:
            if lows[i] not in first:
                i += 1
                continue
            trig, n = _match(ctx, lex, ix, i, sent.end)
            if trig is None:
                i += 1
                continue
            if trig.code == "172" and "sanctions" in lows[i + n:i + n + 5]:
                trig = lexicon.Trigger("163", trig.label, trig.words, trig.is_noun)  # "added to the sanctions list"
            actors, how = _actor1(ctx, ix, sent, i, i + n, trig)
            if actors and _is_content(ctx, sent, i, last_trigger):
                actors = []
            last_trigger = (i, trig)
            if actors:
                actor2 = _actor2(dm, sent, i + n, actors)
                modality, negated = _modality(doc, sent, i, trig)
                date_text, date = _date(dates, sent, i, published)
                location = _location(dm, sent, i + n)
                a, b = to_raw(doc[i].idx, doc[i + n - 1].idx + len(doc[i + n - 1].text))
                src = sources.source_for(si + sentence_offset, i) if sources is not None else None
                code = trig.code[:3]
                for act in actors:
                    attributed = None if src and act.name == src else src
                    out.append({
                        "code": code, "root_code": code[:2], "label": lex.label(code),
                        "trigger": doc[i:i + n].text, "actor1": _actor_dict(act), "actor2": _actor_dict(actor2),
                        "location": location, "date_text": date_text, "date": date,
                        "sentence": si + sentence_offset, "start": a, "end": b, "attributed_to": attributed,
                        "negated": negated, "modality": modality,
                    })
                if how not in ("pronoun", "source") and sent_actor is None:
                    sent_actor = actors[0]
            i += n
        if sent_actor is not None:
            ctx.last_actor = sent_actor
        else:
            # the subject of a sentence without events still sets the pronoun antecedent
            cands = [m for m in dm.mentions if sent.start <= m.start < sent.end and _usable(m)
                     and not dm.preceded_by_preposition(m)]
            subj = [m for m in cands if m.end < sent.end and (tags[m.end].startswith("VB") or tags[m.end] == "MD")]
            if subj or cands:
                ctx.last_actor = (subj or cands)[0]
    return _dedupe(out)


def _is_content(ctx: _Ctx, sent: Any, i: int, last: tuple | None) -> bool:
    """True for the infinitive that is the content of an appeal, demand, threat or plan before it in the
    sentence ("urged Pyongyang to stop", "a deadline to reach an agreement", "plans to test")."""
    lows = ctx.lows
    if i - 1 < sent.start:
        return False
    if lows[i - 1] in ("not", "never") and last is not None and last[1].code[:2] in ("02", "10"):
        return True  # "called on all countries to keep markets open and not impose restrictions"
    if lows[i - 1] != "to":
        return False
    lo = max(sent.start, i - 10)
    if last is not None and last[1].code[:2] in _CONTENT_ROOTS and (
            last[0] >= lo or not any(ctx.doc[k].text in (";", "—") for k in range(last[0], i))):
        return True
    return any(lows[k] in _CONTENT_NOUNS for k in range(lo, i - 1))


def _dedupe(evs: list[dict]) -> list[dict]:
    """One event per (root, actor, target) within a stretch of one sentence: "Russian missile and drone strikes"
    is one event; the same pair far apart in a long (or badly split) sentence is two."""
    last: dict[tuple, int] = {}
    out = []
    for e in evs:
        k = (e["sentence"], e["root_code"], e["actor1"]["country"], e["actor1"]["text"],
             (e["actor2"] or {}).get("country"))
        if k in last and e["start"] - last[k] < _DEDUPE_CHARS:
            continue
        last[k] = e["start"]
        out.append(e)
    return out


def _objects_ok(lows: list[str], j: int, end: int, need: tuple[str, ...], span: int = 6) -> bool:
    return any(w in need for w in lows[j:min(end, j + span)])


def _match(ctx: _Ctx, lex: lexicon.CameoLexicon, ix: _Index, i: int, end: int):
    """The trigger starting at token i and its length: a contiguous phrase of two or more words, else a
    verb + noun phrase with modifiers between ("imposed new sanctions"), else a single word."""
    lows, tags = ctx.lows, ctx.tags
    tag = tags[i]
    single = None
    for n in range(min(lex.max_len, end - i), 0, -1):
        words = tuple(lows[i:i + n])
        trig = None
        if words in lex.phrases and (tag.startswith("VB") or (n > 1 and tag in ("NN", "NNS", "JJ"))):
            trig = lex.phrases[words]
        elif words in lex.nouns and (tag.startswith("NN") or n > 1):
            trig = lex.nouns[words]
        if trig is None:
            continue
        if trig.needs_object and not _objects_ok(lows, i + n, end, trig.needs_object):
            continue
        if n == 1 and not trig.is_noun and words[0] in ix.verb_objects \
                and not _objects_ok(lows, i + 1, end, ix.verb_objects[words[0]]):
            continue
        if n > 1:
            return trig, n
        single = trig
        break
    if tag.startswith("VB") and lows[i] in ix.gapped_first:
        j = i + 1
        while j < end and j - i <= 7:
            if (lows[i], lows[j]) in ix.gapped and tags[j].startswith("NN"):
                return ix.gapped[(lows[i], lows[j])], j - i + 1
            if tags[j] not in _FILLER_TAGS and not (lows[j] == "of" and tags[j - 1].startswith("NN")):
                break
            j += 1
    if single is not None:
        return single, 1
    return None, 0


def _actor_dict(m: Mention | None) -> dict | None:
    if m is None:
        return None
    return {"text": m.text, "type": m.label if m.label not in ("AGENCY", "NP", "PRON") else
            {"AGENCY": "ORG", "NP": "ORG", "PRON": None}[m.label], "code": m.actor_code, "country": m.country}


def _usable(m: Mention) -> bool:
    """Can act: a person, country, group or body with a country, or an international organization."""
    if m.kind == "news_agency" or m.kind == "place":
        return False
    if m.country is not None:
        return m.kind in ("person", "country", "group", "official_body", "organization")
    return m.kind in ("organization", "official_body") and _international(m)


def _international(m: Mention) -> bool:
    low = m.text.lower()
    return low in _INTL or any(w in low.split() for w in _INTL_WORDS)


def _actor1(ctx: _Ctx, ix: _Index, sent: Any, i: int, j: int, trig: lexicon.Trigger):
    doc, dm, lows, tags = ctx.doc, ctx.dm, ctx.lows, ctx.tags
    # "US-mediated talks", "Russian-led forces": the hyphenated name is the agent
    if i - 2 >= sent.start and doc[i - 1].text == "-" and tags[i].startswith("VB"):
        m = dm.at(i - 2)
        if m is not None and _usable(m):
            return [m], "compound"
        return [], None
    if trig.is_noun:
        words = trig.words
        if words in ix.symmetric:
            parties = _between(ctx, sent, j)
            if parties:
                return parties, "between"
        # "invitations to X were being renewed": the passive verb the noun is the subject of
        for k in range(j, min(sent.end, j + 8)):
            if ctx.doc[k].text in _CLAUSE_BREAK or lows[k] in _SUBJ_STOP:
                break
            if tags[k] == "VBN" and lows[k] in _LIGHT_VERBS and _is_passive(ctx, sent, k):
                return _subject(ctx, sent, k, trig, verb_is_trigger=False)
            if tags[k].startswith("VB") and lows[k] not in _AUX:
                break
        # "attacks by Russian forces"
        if j < sent.end and lows[j] == "by":
            m = _mention_after(ctx, sent, j + 1, 4)
            if m is not None:
                return (_coordinated_after(ctx, sent, m) if _usable(m) else []), "agent"
        k = i - 1
        while k >= sent.start and (tags[k] in ("JJ", "CD", "POS", "HYPH", "VBN", "JJS") or
                                   (tags[k] == "DT" and lows[k] not in ("the", "a", "an"))) and dm.at(k) is None:
            k -= 1
        m = dm.at(k) if k >= sent.start else None
        if m is not None and words not in ix.need_verb and m.country and m.kind in (
                "group", "country", "official_body", "person"):
            return [m], "modifier"
        # the object of a verb: "launched an invasion", "imposed sanctions", "was already in touch"
        k = i - 1
        while k >= sent.start and (tags[k] in ("JJ", "DT", "CD", "PRP$", "JJR", "JJS", "HYPH", "NN", "NNS", "VBN",
                                               "RB", "RP", "POS", "NNP") or lows[k] == "of"
                                   or (lows[k] == "and" and dm.at(k - 1) is not None) or dm.at(k) is not None) \
                and lows[k] not in _LIGHT_VERBS and lows[k] not in _BE:
            k -= 1
        if k < sent.start or (lows[k] not in _LIGHT_VERBS and lows[k] not in _BE):
            return [], None
        if tags[k] == "VBN" and k == i - 1 and not any(lows[q] in ("has", "have", "had") for q in range(max(
                sent.start, k - 3), k)) and not _is_passive(ctx, sent, k):
            return [], None  # "Russia's renewed offensive": an adjective
        if lows[k] in _BE and words in ix.need_verb:
            return [], None
        return _subject(ctx, sent, k, trig, verb_is_trigger=False)
    return _subject(ctx, sent, i, trig, verb_is_trigger=True, end=j)


def _mention_after(ctx: _Ctx, sent: Any, j: int, span: int) -> Mention | None:
    for k in range(j, min(sent.end, j + span)):
        if ctx.doc[k].text in _CLAUSE_BREAK or ctx.tags[k].startswith("VB"):
            return None
        m = ctx.dm.at(k)
        if m is not None:
            return m
    return None


def _coordinated_after(ctx: _Ctx, sent: Any, m: Mention) -> list[Mention]:
    """m plus the mentions coordinated with it after it: "by Norway, Sweden and Denmark"."""
    out = [m]
    k = m.end
    while k + 1 < sent.end and ctx.lows[k] in ("and", ",", "&"):
        k += 1
        if ctx.lows[k] in ("and", "the"):
            k += 1
        nxt = ctx.dm.at(k) if k < sent.end else None
        if nxt is None or not _usable(nxt):
            break
        out.append(nxt)
        k = nxt.end
    return [x for x in out if _usable(x)]


def _between(ctx: _Ctx, sent: Any, j: int) -> list[Mention]:
    """The parties of "talks (in Geneva) between A, B and C"."""
    for k in range(j, min(sent.end, j + 8)):
        if ctx.lows[k] == "between":
            m = _mention_after(ctx, sent, k + 1, 3)
            if m is None or not _usable(m):
                return []
            parties = _coordinated_after(ctx, sent, m)
            return parties if len(parties) >= 2 else []
        if ctx.doc[k].text in _CLAUSE_BREAK or ctx.tags[k].startswith("VB"):
            return []
    return []


def _prev_content(ctx: _Ctx, sent: Any, i: int) -> int:
    """Index of the token before i, skipping adverbs, auxiliaries, modals and negation."""
    k = i - 1
    while k >= sent.start and (ctx.tags[k] in ("RB", "MD") or ctx.lows[k] in _AUX or ctx.lows[k] in _NEGATION):
        k -= 1
    return k


def _is_passive(ctx: _Ctx, sent: Any, i: int) -> bool:
    if ctx.tags[i] != "VBN":
        return False
    k = i - 1
    while k >= sent.start and (ctx.tags[k] == "RB" or ctx.lows[k] in ("not", "n't", "being", "been", "already")):
        if ctx.lows[k] in ("being", "been"):
            return True
        k -= 1
    if k >= sent.start and ctx.lows[k] in _BE | {"get", "got", "gets", "getting"}:
        return True
    # reduced relative: "a swap mediated by the UAE"
    return k >= sent.start and ctx.tags[k] in ("NN", "NNS", "NNP", "NNPS") and i + 1 < sent.end \
        and ctx.lows[i + 1] == "by"


def _subject(ctx: _Ctx, sent: Any, v: int, trig: lexicon.Trigger, *, verb_is_trigger: bool,
             end: int | None = None, depth: int = 0):
    """The subject(s) of the verb at token v, as (mentions, how)."""
    doc, dm, lows, tags = ctx.doc, ctx.dm, ctx.lows, ctx.tags
    end = end if end is not None else v + 1
    if verb_is_trigger and lows[v] == "blame" and v - 2 >= sent.start and lows[v - 1] == "to" and lows[v - 2] in _BE:
        src = ctx.source_mention(sent, v)  # "X is to blame, Y said": Y blames X
        return ([src] if src is not None else []), "source"
    # "prevented X from signing", "barred from entering": not an event of X
    if tags[v] == "VBG" and v - 1 >= sent.start and lows[v - 1] == "from":
        return [], None
    if _is_passive(ctx, sent, v):
        for k in range(end, min(sent.end, end + 8)):
            if doc[k].text in _CLAUSE_BREAK or lows[k] in _SUBJ_STOP:
                break
            if lows[k] == "by":
                m = _mention_after(ctx, sent, k + 1, 4)
                if m is not None and _usable(m):
                    return _coordinated_after(ctx, sent, m), "agent"
                return [], None
        if trig.code[:2] in _SELF_REPORTED:
            src = ctx.source_mention(sent, v)
            if src is not None:
                return [src], "source"
        return [], None
    # a participle adjunct ("after warning that ...") or a sentence-initial participle: the main subject
    if tags[v] == "VBG":
        p = v - 1
        if p >= sent.start and lows[p] in _ADJUNCT:
            m = _main_subject(ctx, sent, sent.start, p)
            return ([m] if m is not None else []), "main"
        if p < sent.start or doc[p].is_quote or doc[p].is_punct and doc[p].text not in (",",):
            comma = next((k for k in range(v, sent.end) if lows[k] == ","), None)
            m = _main_subject(ctx, sent, comma + 1, sent.end) if comma is not None else None
            return ([m] if m is not None else []), "main"
    # coordinated verb phrase: "X summoned Y's envoy and lodged a protest" -> X
    p = _prev_content(ctx, sent, v)
    if p >= sent.start and lows[p] in ("and", "but") and dm.at(p - 1) is None and depth < 2:
        for q in range(p - 1, sent.start - 1, -1):
            if (tags[q] in ("VBD", "VBZ", "VBP") or tags[q] == "VBN" and lows[q - 1] in _AUX) \
                    and lows[q] not in _AUX:
                # "X said ... but called on" -> the subject of "said"
                return _subject(ctx, sent, q, trig, verb_is_trigger=False, depth=depth + 1)
            if doc[q].text in _CLAUSE_BREAK:
                break
    k = v - 1
    while k >= sent.start:
        t = doc[k]
        low = lows[k]
        if t.text in _CLAUSE_BREAK or t.is_quote:
            break
        if low in ("who", "which") and k > sent.start:
            q = k - 1
            if lows[q] == ",":
                q -= 1
            m = dm.at(q)
            if m is not None and _usable(m):
                return _coordinated(dm, sent, m), "subject"
            break
        if low in _SUBJ_STOP and k < v - 1:
            break
        if low in _REPORTING and tags[k].startswith("VB"):
            if trig.code[:2] in ("18", "19", "20"):
                return _attacker_from_speaker(ctx, sent, k, v, end), "speaker"
            break
        m = dm.at(k)
        if m is not None:
            if dm.preceded_by_preposition(m) and lows[m.start - 1] != "by" and not (
                    lows[m.start - 1] in _SUBORD and m.end == _verb_group_start(ctx, sent, v)):
                k = m.start - 1
                continue
            if _usable(m):
                return _coordinated(dm, sent, m), "subject"
            return [], None
        if t.tag_ == "PRP" and low in _PRONOUNS:
            return _pronoun(ctx, sent, k), "pronoun"
        if t.tag_ in ("NN", "NNS") and k > sent.start and lows[k - 1] in ("its", "their") \
                and low in _POSSESSED_HEADS:
            for m in reversed(dm.mentions):
                if m.start < k - 1 and m.start >= sent.start and _usable(m) and m.country:
                    return [m], "possessor"
            return [], None
        if t.tag_ in ("NN", "NNS") and k > sent.start and lows[k - 1] == "the" and low in _ORG_ANAPHORS \
                and dm.at(k) is None:
            for m in reversed(dm.mentions):
                if m.start < k and m.start >= k - 150 and m.kind in ("organization", "official_body") and _usable(m):
                    return [m], "anaphor"
            return [], None
        if t.tag_ == "NNS" and low in _GENERIC_ACTORS and k == _verb_group_start(ctx, sent, v) - 1:
            g = Mention(k, k + 1, "group", t.text, t.text, "NORP")
            if not dm.preceded_by_preposition(g) and dm.affiliated_np(k) is None:
                return [g], "generic"
        if t.tag_ in ("NN", "NNS") and low in _ACTOR_HEADS:
            aff = dm.affiliated_np(k)
            if aff is not None and aff.country:
                return [aff], "subject"
        k -= 1
    return [], None


def _attacker_from_speaker(ctx: _Ctx, sent: Any, r: int, v: int, end: int) -> list[Mention]:
    """"X said missiles destroyed Ukrainian positions": with no named subject, a government speaker whose
    country is not the target's reports its own side's strike (a side does not report striking itself)."""
    speaker = None
    q = r - 1
    while q >= sent.start and speaker is None:
        m = ctx.dm.at(q)
        if m is not None:
            speaker = m
        elif ctx.doc[q].text in _CLAUSE_BREAK:
            break
        q -= 1
    if speaker is None or not speaker.country or speaker.kind not in ("official_body", "country", "person"):
        return []
    for k in range(v + 1, min(sent.end, end + 8)):
        m = ctx.dm.at(k)
        if m is not None and m.country:
            return [speaker] if m.country != speaker.country else []
        if ctx.doc[k].text in _CLAUSE_BREAK or ctx.lows[k] in _SUBJ_STOP:
            break
    return []


def _verb_group_start(ctx: _Ctx, sent: Any, v: int) -> int:
    """First token of the auxiliaries and adverbs before the verb at v ("has further slashed")."""
    k = v
    while k - 1 >= sent.start and (ctx.lows[k - 1] in _AUX or ctx.tags[k - 1] in ("RB", "MD")):
        k -= 1
    return k


def _main_subject(ctx: _Ctx, sent: Any, a: int, b: int) -> Mention | None:
    for m in ctx.dm.mentions:
        if a <= m.start < b and not ctx.dm.preceded_by_preposition(m):
            return m if _usable(m) else None
    return None


def _pronoun(ctx: _Ctx, sent: Any, k: int) -> list[Mention]:
    """What a subject pronoun at token k stands for: the speaker of "X said (that) it ...", the quoted
    source for "we", the last person for he/she, else the previous sentence's actor."""
    lows, dm = ctx.lows, ctx.dm
    low = lows[k]
    q = k - 1
    if q >= sent.start and lows[q] == "that":
        q -= 1
    if q >= sent.start and lows[q] in _REPORTING:
        r = q - 1
        while r >= sent.start:
            m = dm.at(r)
            if m is not None:
                return [m] if _usable(m) and not dm.preceded_by_preposition(m) else []
            if ctx.doc[r].text in _CLAUSE_BREAK:
                break
            r -= 1
    if low in ("we", "i"):
        src = ctx.source_mention(sent, k)
        if src is not None:
            return [src]
    if low in ("he", "she", "i"):
        for m in reversed(dm.mentions):
            if m.start < k and m.kind == "person" and m.start >= k - 120:
                return [m] if _usable(m) else []
    last = ctx.last_actor
    return [last] if last is not None and _usable(last) else []


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
        if prev is None or not _usable(prev) or prev.kind != m.kind and {prev.kind, m.kind} - {"country", "group",
                                                                                            "official_body"}:
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
