"""Source attributions: who the article says its information comes from.

Pure functions of a spaCy ``Doc`` (tokens, sentences, tags, entities; no parse needed -- a dependency-parse
subject was measured and did not beat these rules). Rules look for the *relation*, not the name:

* speaker before a cue: "X said", "X told reporters", "X reported", "X quoted ... as saying". The walk left
  from the cue skips adverbs, dates, comma/dash appositives and relative clauses ("Rustem Umerov, Ukraine's
  chief negotiator and ..., said", "Marco Rubio -- who was not there -- said", "X, who said"), a locative
  phrase ("the ambassador in Belgrade told"); a name that is the object of a preposition ("talks with the
  United States said", "CEO of Kovalska Group, ..., said") is not the speaker;
* speech verbs (said, told, announced, wrote ...) attribute by themselves; verbs that are also events
  (warned, denied, urged, confirmed, claimed, threatened, pledged, added, declared ...) only with reported
  content -- a that-clause, a quote, a colon, an embedded clause, "to" + verb for threats and pledges -- or
  inverted after the quote; stance verbs (rejected, dismissed, called ...) need an object; passives
  ("was cited for") and opinion verbs (believes) never attribute; a cue inside another cue's reported
  clause ("Zakharova said Moscow had rejected ...") is content, not a source;
* participles take the clause's subject: "Kyiv rejected the terms, saying ...", "... by vowing ...",
  "with X vowing ..."; "X did Y and said ..." takes X;
* inverted cue: '"...", said X', "..., X said";
* prepositional cues: "according to X" (also "according to a survey by X"), "citing X", "quoted by X",
  "told X" (X a channel when it is an agency), "in an interview with X"; "a survey by X showed";
  an agency that "cited Russia's defence ministry" is the channel and the ministry the speaker;
* datelines: "MOSCOW (Reuters) -", "(AP) —", "MOSCOW, May 3. /TASS/", a closing "— TASS";
  and the Reuters-21578 "Reuter" sign-off.

Bare "officials", "sources", experts, analysts, residents and witnesses are not sources (only an affiliated
"Ukrainian officials", "a Foreign Ministry official" is). Link lists and Title Case headline cues are skipped.

One entry is returned per distinct source, at its first attribution: surnames, transliteration variants
("Zelensky"/"Zelenskyy"), ORG-tagged names in a person's slot, a leader's name tagged as a place, acronyms
("IC" for "Investigative Committee") and an unnamed role whose holder the article names ("Russia's deputy
foreign minister" -> "Deputy Foreign Minister Mikhail Galuzin") join the canonical entry; "he said" joins
the last speaker. A body and a person from the same phrase ("Kremlin spokesperson Dmitry Peskov") give the
person only. An agency that is only the subject of the news ("TASS was founded in 1904"), photo credits and
bylines ("Novikov reported from Kyiv") are not attributions. :func:`find_attributions` also returns, per
sentence, the source the sentence is attributed to, which the event extractor uses for ``attributed_to``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pipeline.nlp.mentions import GOV_WORDS, PREPOSITIONS, DocMentions, Mention

__all__ = ["CUE_VERBS", "AttributionResult", "find_attributions", "attributions"]

#: Verbs that attribute information to their subject.
CUE_VERBS = {
    "said", "says", "say", "saying", "told", "tells", "tell", "added", "adds", "adding", "stated", "states",
    "stating", "noted", "notes", "noting", "wrote", "writes", "reported", "reports", "reporting", "announced",
    "announces", "announcing", "confirmed", "confirms", "claimed", "claims", "quoted", "quoting", "cited", "cites",
    "explained", "explaining", "stressed", "insisted", "warned", "warns", "declared", "denied", "denies",
    "acknowledged", "argued", "asserted", "maintained", "emphasized", "emphasised", "underscored", "estimated",
    "posted", "tweeted", "revealed", "disclosed", "suggested", "indicated", "informed", "responded", "replied",
    "commented", "concluded", "alleged", "alleges", "mentioned", "observed", "remarked", "predicted", "urged",
    "accused", "charged", "signaled", "signalled", "assured", "recalled", "conceded",
    "admitted", "vowed", "pledged", "threatened", "publishes", "published", "carried", "broadcast",
    "rejected", "rejects", "dismissed", "dismisses", "objected", "objects", "blamed", "blames", "called", "calls",
    "described", "describes", "expressed", "expresses",
    "warn", "urge", "urges", "deny", "claim", "confirm", "announce", "report", "insist", "insists", "argue",
    "argues", "vows", "threatens", "pledges", "accuses", "found", "finds", "determined", "forecasts",
    "forecast", "estimates", "predicts",
}
#: Cue verbs that report speech by themselves ("X said", "X announced the launch").
_SPEECH_CUES = {
    "said", "says", "say", "saying", "told", "tells", "tell", "adding", "stated", "states",
    "stating", "noted", "notes", "noting", "wrote", "writes", "announced", "announces", "announcing",
    "explained", "explaining", "stressed", "insisted", "argued", "asserted", "maintained",
    "emphasized", "emphasised", "underscored", "acknowledged", "conceded", "admitted", "commented", "remarked",
    "replied", "concluded", "mentioned", "observed", "recalled", "posted", "tweeted", "quoted", "cited",
    "rejected", "rejects", "dismissed", "dismisses", "objected", "objects", "blamed", "blames", "called", "calls",
    "described", "describes", "expressed", "expresses", "announce", "report", "insist", "insists", "argue",
    "argues", "forecasts", "forecast", "estimates", "predicts",
}
#: Cue verbs that are also event verbs ("Norway pledged 450 million euros", "Russia claims the region"):
#: an attribution only with a reported complement -- a that-clause, a quote, a colon, an embedded clause --
#: or in the inverted position ('"...", X warned').
_COMPLEMENT_CUES = CUE_VERBS - _SPEECH_CUES
#: ... of which these also take "to" + verb ("threatened to halt exports") and these a gerund ("denied taking").
_TO_CUES = {"threatened", "vowed", "pledged", "warned", "urged", "vows", "threatens", "pledges", "urges",
            "urge", "warn", "warns"}
_GERUND_CUES = {"denied", "denies", "deny", "admitted", "acknowledged"}
#: Stance verbs need an object: not "a proposal Russia has flatly rejected."
_STANCE_CUES = {"rejected", "rejects", "dismissed", "dismisses", "objected", "objects", "blamed", "blames",
                "called", "calls", "described", "describes", "expressed", "expresses"}
#: Only news outlets "carry" or "publish" information.
_MEDIA_ONLY_CUES = {"carried", "published", "publishes", "broadcast", "reporting"}
#: Participial cues after a comma take the clause's subject: "Kyiv rejected the terms, saying ...".
_PARTICIPLE_CUES = {"saying", "adding", "noting", "stating", "arguing", "insisting", "warning", "explaining"}
#: Participles that attribute a position only in the participial slot: "Kyiv rejected the terms, insisting ...".
_PARTICIPLE_ONLY = {"insisting", "declaring", "urging", "vowing", "claiming", "accusing", "describing",
                    "calling", "warning", "denying", "arguing", "saying", "adding"}
#: Page furniture that reached the text: link lists with clock times or inline bullets.
_FURNITURE = re.compile(r"(?:\b\d{1,2}:\d{2}\b.*){2,}|(?:\s\*\s.*){2,}")
_PASSIVE_AUX = {"was", "were", "is", "are", "be", "been", "being", "get", "got", "gets"}
_DELIMS = {",", "--", "\u2014", "\u2013", "-", "(", ")"}
#: Person titles and roles: an ORG-tagged name right after one is a person ("chief negotiator, Rustem Umerov").
_PERSON_ROLES = re.compile(
    r"(?i)\b(?:spokes\w*|minister|president|premier|chancellor|chief|head|director|official|secretary|adviser|"
    r"advisor|aide|governor|commander|ambassador|envoy|leader|chairman|chairwoman|chair|mayor|negotiator|"
    r"analyst|economist|professor|researcher|lawyer|attorney|ceo|founder|executive|officer|manager|deputy|"
    r"general|colonel|senator|lawmaker|mp|representative|activist|artist|journalist|editor|fellow|expert|"
    r"archbishop|bishop|pope|priest|king|queen|prince|judge|prosecutor|teacher|producer|resident|veteran|"
    r"founder|owner|partner|strategist|scientist|doctor|dr|mr|mrs|ms)\b")

_AGENCY_CUES = {"said", "says", "reported", "reports", "quoted", "quoting", "cited", "citing", "wrote", "writes",
                "carried", "published", "publishes", "broadcast", "announced", "added", "stated", "noted",
                "learned", "learnt", "reporting", "confirmed", "claimed", "showed"}
_SKIP_BEFORE_CUE = {"also", "later", "earlier", "previously", "then", "further", "again", "repeatedly",
                    "separately", "already", "publicly", "recently", "has", "have", "had", "was", "is", "would",
                    "will", "had", "subsequently", "once", "on", "last", "late", "early", "in", "statement", "a",
                    "news", "conference", "briefing", "interview", "not", "did", "does", "n't", "officially",
                    "reportedly", "initially", "first", "itself", "himself", "herself", "quickly", "flatly",
                    "formally", "previously", "this", "week", "yesterday", "today", "tonight", "night", "morning",
                    "afternoon", "evening", "never", "just", "only", "has", "also", "however", "meanwhile",
                    "too", "both", "all", "each", "had", "been", "being", "may", "might", "could", "can", "should"}
_PRONOUNS = {"he": "person", "she": "person", "it": "body", "they": "body"}
_DATELINE = re.compile(r"^[ \t]*(?:[A-Z][A-Za-z.'\- ]{1,40})?(?:,[^()\n]{1,30})?\s*\(([A-Za-z][\w.\- ]{0,28})\)\s*"
                       r"[-\u2013\u2014:]", re.MULTILINE)
_BARE_DATELINE = re.compile(r"^[ \t]*[A-Z][A-Z.'\- ]{2,30},\s*[A-Z][a-z]{2,8}\.? \d{1,2}\s+([A-Z][\w.\-]{1,20})\s*"
                            r"[-\u2013\u2014]", re.MULTILINE)
_SLASH_DATELINE = re.compile(r"^[ \t]*[A-Z][A-Za-z.'\- ]{1,40},[^/\n]{1,30}/([A-Za-z][\w\- ]{1,20})/", re.MULTILINE)
_TRAIL_CREDIT = re.compile(r"(?:^|\n)[ \t]*[\u2013\u2014-]{1,2}[ \t]*([A-Z][\w.\- ]{1,30})[ \t]*$", re.MULTILINE)
_SIGN_OFF = re.compile(r"(?:^|\n)[ \t]*(Reuter|REUTER)[ \t]*(?:\n|$)(?![\s\S]*\w[\s\S]*\n[ \t]*Reuter)")
_NOT_CREDIT = re.compile(r"(?i)\b(?:photo|photograph|photos|image|images|picture|pictures|video|file|getty|"
                         r"caption|credit|copyright|contributed|contributing|by)\b")


@dataclass
class AttributionResult:
    attributions: list[dict] = field(default_factory=list)
    #: sentence index -> [(token index of the cue, canonical source name)] of the sources cited in it
    sentence_source: dict[int, list[tuple[int, str]]] = field(default_factory=dict)

    def source_for(self, sentence: int, token: int) -> str | None:
        """The source an event at ``token`` of ``sentence`` is attributed to: the nearest cue after it,
        else the nearest before it."""
        cues = self.sentence_source.get(sentence) or []
        after = [c for c in cues if c[0] > token]
        if after:
            return min(after)[1]
        return max(cues)[1] if cues else None


def attributions(doc: Any, *, to_raw: Callable[[int, int], tuple[int, int]] | None = None,
                 mentions: DocMentions | None = None) -> list[dict]:
    """The attribution dicts of ``doc`` (see :func:`find_attributions`)."""
    return find_attributions(doc, to_raw=to_raw, mentions=mentions).attributions


def find_attributions(doc: Any, *, to_raw: Callable[[int, int], tuple[int, int]] | None = None,
                      mentions: DocMentions | None = None, sentence_offset: int = 0) -> AttributionResult:
    """Find the sources ``doc`` attributes information to.

    Args:
        doc: a spaCy Doc with sentences, tags and entities.
        to_raw: maps a ``[start, end)`` character span of ``doc.text`` to the raw body; identity if None.
        mentions: the shared mention layer, when the caller already built it.
        sentence_offset: added to sentence indices (for texts processed in pieces).

    Returns:
        An :class:`AttributionResult`: one dict per distinct source with keys source, kind, text,
        descriptor, cue, content, sentence, start, end, role, country; and the per-sentence source map.
    """
    dm = mentions or DocMentions(doc)
    to_raw = to_raw or (lambda a, b: (a, b))
    res = AttributionResult()
    text = doc.text  # Doc.text is rebuilt on every access
    co = _Coref(dm, text)
    seen: dict[tuple[str, str], dict] = {}
    sents = list(doc.sents)
    sent_of = {}
    for si, s in enumerate(sents):
        for i in range(s.start, s.end):
            sent_of[i] = si
    last_person: list[Mention | None] = [None]
    last_body: list[Mention | None] = [None]

    def emit(m: Mention | None, cue: str, role: str | None, si: int, content: str | None = None,
             char_span: tuple[int, int] | None = None, at: int | None = None) -> None:
        if m is None:
            return
        m = co.canon(m)
        kind = m.kind
        if kind in ("country", "group"):
            kind = "official_body"
        if kind == "place":
            return
        key = co.key(m, kind)
        if at is not None:
            res.sentence_source.setdefault(si + sentence_offset, []).append((at, seen[key]["source"] if key in seen
                                                                               else m.name))
        if kind == "person":
            last_person[0] = m
        elif kind != "news_agency":
            last_body[0] = m
        if key in seen:
            return
        if char_span is None:
            char_span = (doc[m.start].idx, doc[m.end - 1].idx + len(doc[m.end - 1].text))
        if kind == "news_agency":
            # span of the name itself (not "news agency")
            sp = doc[m.start:m.end]
            name_end = sp.start_char + len(m.text) if sp.text.startswith(m.text) else sp.end_char
            char_span = (sp.start_char, min(char_span[1], name_end)) if char_span[0] == sp.start_char else char_span
        a, b = to_raw(*char_span)
        seen[key] = {
            "source": m.name, "kind": kind, "text": text[char_span[0]:char_span[1]],
            "descriptor": m.descriptor, "cue": cue, "content": content, "sentence": si + sentence_offset,
            "start": a, "end": b, "role": role, "country": m.country,
        }
        res.attributions.append(seen[key])

    # datelines and credits ---------------------------------------------------------------------------
    for rx, cue in ((_DATELINE, "dateline"), (_SLASH_DATELINE, "dateline"), (_BARE_DATELINE, "dateline"),
                    (_TRAIL_CREDIT, "dateline"), (_SIGN_OFF, "sign-off")):
        for mt in rx.finditer(text):
            name = mt.group(1).strip()
            ag = dm.ag.lookup(name)
            if ag is None:
                continue
            line_start = text.rfind("\n", 0, mt.start(1)) + 1
            line_end = text.find("\n", mt.end(1))
            line = text[line_start: line_end if line_end >= 0 else len(text)]
            if _NOT_CREDIT.search(line) and cue != "sign-off":
                continue
            if cue == "dateline" and rx is _TRAIL_CREDIT and len(line.strip()) > 40:
                continue
            span = doc.char_span(mt.start(1), mt.end(1), alignment_mode="expand")
            if span is None:
                continue
            m = Mention(span.start, span.end, "news_agency", ag.name, mt.group(1), "AGENCY", ag.country)
            emit(m, cue, "channel", sent_of.get(span.start, 0), char_span=(mt.start(1), mt.end(1)))

    # cue-based relations --------------------------------------------------------------------------------
    in_list = _headline_list_lines(text)
    for si, sent in enumerate(sents):
        bound = sent.start  # a paragraph break inside a "sentence" (headlines, lists) is a hard boundary
        if _FURNITURE.search(sent.text):
            continue
        for tok in sent:
            low = tok.lower_
            i = tok.i
            if tok.is_space and "\n" in tok.text:
                bound = i + 1
                continue
            if low == "according" and i + 1 < sent.end:
                # "according to X and Y"; "according to a survey by X"; a credit line "according\nReuters"
                j = i + 2 if doc[i + 1].lower_ == "to" else i + 1
                ms = _coordinated_after(dm, _past_study_noun(doc, j, sent.end), sent.end)
                for m in ms:
                    if j == i + 1 and m.kind != "news_agency":
                        continue
                    emit(_resolve(dm, m, last_person, last_body), "according to",
                         "channel" if m.kind == "news_agency" else "speaker", si, _content(sent, i), at=i)
                continue
            if (low == "files" and i + 1 < sent.end and doc[i + 1].lower_ == "from") or (
                    low in ("reported", "published", "carried") and i + 1 < sent.end and doc[i + 1].lower_ == "by"):
                # "With files from The Associated Press"; "as reported by the online media Ukrinform"
                for m in _coordinated_after(dm, i + 2, min(sent.end, i + 12), skip_any=True):
                    if m.kind == "news_agency":
                        emit(m, "reported", "channel", si, at=i)
                continue
            if low in ("comment", "comments", "statement", "interview") and i + 1 < sent.end \
                    and doc[i + 1].lower_ == "to":
                m = _mention_after(dm, i + 2, min(sent.end, i + 6))
                if m and m.kind == "news_agency":
                    emit(m, "told", "channel", si, at=i)
            if low in ("citing", "quoting") or (low in ("cited", "quoted") and i + 1 < sent.end
                                                 and doc[i + 1].lower_ == "by"):
                j = i + 2 if doc[i + 1].lower_ == "by" else i + 1
                m = _mention_after(dm, j, sent.end)
                if m and (m.kind != "person" or low in ("citing",)):
                    emit(_resolve(dm, m, last_person, last_body), "citing" if low == "citing" else "quoted",
                         "channel" if m.kind == "news_agency" else "speaker", si, at=i)
                # "TASS, quoting X, reported": the agency before is handled by the subject rule
            if low in ("interview", "speaking", "spoke", "talking") and i + 1 < sent.end \
                    and doc[i + 1].lower_ in ("with", "to"):
                m = _mention_after(dm, i + 2, sent.end)
                if m and m.kind == "news_agency":
                    emit(m, "told", "channel", si, at=i)
                continue
            if in_list and _in_spans(in_list, tok.idx):
                continue  # a headline in a list of links ("More to Read / Russia claims ... / World")
            if low in _STUDY_CUES and low not in CUE_VERBS:
                # "a survey by the European Business Association showed that ..."
                for m in _study_author_before(dm, bound, i):
                    emit(m, low, "speaker", si, _content(sent, i), at=i)
                continue
            if low in _PARTICIPLE_ONLY and low not in CUE_VERBS:
                if _after_speech_cue(doc, bound, i):
                    continue
                for r in _participle_subject(dm, bound, i):
                    emit(_resolve(dm, r, last_person, last_body), low, "speaker", si, _content(sent, i), at=i)
                continue
            if low not in CUE_VERBS:
                continue
            if low in ("quoted", "cited") and i + 1 < sent.end and doc[i + 1].lower_ == "by":
                continue
            if not (tok.tag_.startswith("VB") or low in ("said", "told", "says", "reports", "reported")):
                continue
            if tok.is_title and i > bound and not doc[i - 1].is_punct and not doc[i - 1].is_quote:
                continue  # a Title Case headline in a list of links ("Ukraine Announces ...")
            if low in _STANCE_CUES and (i + 1 >= sent.end or doc[i + 1].is_punct or doc[i + 1].is_space):
                continue  # no object: "a proposal Russia has flatly rejected."
            if low != "published" and _passive_or_adjectival(doc, bound, i, sent.end):
                continue  # ("This report by The Canadian Press was first published ...": a credit)
            # told X: X is a channel when it is an agency
            if low in ("told", "tells", "tell") and i + 1 < sent.end:
                m = _mention_after(dm, i + 1, min(sent.end, i + 8))
                if m and m.kind == "news_agency":
                    emit(m, "told", "channel", si, at=i)
            if low in ("cited", "quoted", "cites", "quotes") and i + 1 < sent.end:
                # "the state-owned RIA news agency cited Russia's defence ministry": the ministry speaks
                subj = _subject_before(dm, bound, i, co)
                if subj and subj[0].kind == "news_agency":
                    m = _mention_after(dm, i + 1, min(sent.end, i + 8), allow_np=True)
                    if m is not None and m.kind != "news_agency":
                        emit(m, "quoted" if low.startswith("quot") else "cited", "speaker", si,
                             _content(sent, i), at=i)
            inverted = _inverted(doc, bound, i)
            complement = low not in _COMPLEMENT_CUES or inverted or _reported_complement(doc, i, sent.end, low)
            media_verb = low in _MEDIA_ONLY_CUES or low in ("reported", "reports")
            if low in _PARTICIPLE_CUES and _after_speech_cue(doc, bound, i):
                continue  # "..., the air force said, adding that ...": the speaker of that cue, already found
            if low in _PARTICIPLE_CUES:
                subjects = _participle_subject(dm, bound, i)
                for r in subjects:
                    emit(_resolve(dm, r, last_person, last_body), _cue_name(low), "speaker", si,
                         _content(sent, i), at=i)
                if subjects:
                    continue
            # subject before the cue
            subjects = _subject_before(dm, bound, i, co)
            if subjects and _embedded(doc, bound, subjects[0].start):
                continue  # "Zakharova said Moscow had rejected the protest": reported content, not a source
            if subjects:
                for subj in subjects:
                    media = subj.kind == "news_agency" or (subj.kind == "organization" and _media_name(subj))
                    if subj.kind == "news_agency" and low not in _AGENCY_CUES and low not in ("told",):
                        continue
                    if low in _MEDIA_ONLY_CUES and not media:
                        continue
                    if not media and low == "reported" and not (inverted or _reported_complement(
                            doc, i, sent.end, low)):
                        continue  # "Moscow reported its first test-launch"
                    if low in ("reported", "contributed") and i + 1 < sent.end and doc[i + 1].lower_ == "from":
                        continue  # a byline: "Novikov reported from Kyiv"
                    if not complement and not (media and media_verb):
                        continue
                    r = _resolve(dm, subj, last_person, last_body)
                    if r is not None:
                        emit(r, _cue_name(low), "channel" if r.kind == "news_agency" else "speaker", si,
                             _content(sent, i), at=i)
                continue
            # inverted: '"...", said X'
            prev = doc[i - 1] if i > bound else None
            if prev is not None and (prev.is_punct or prev.is_quote) and low in ("said", "says", "added", "wrote",
                                                                                   "reported", "told", "noted"):
                m = _person_after(dm, i + 1, min(sent.end, i + 9)) or _mention_after(
                    dm, i + 1, min(sent.end, i + 9), allow_np=True)
                if m:
                    emit(_resolve(dm, m, last_person, last_body) or m, _cue_name(low),
                         "channel" if m.kind == "news_agency" else "speaker", si, _content(sent, i), at=i)
    return res


#: Last words that show a line is a sentence broken across lines, not a headline.
_CONTINUES = {"the", "a", "an", "to", "of", "in", "on", "at", "by", "for", "from", "with", "over", "than", "and",
              "or", "but", "that", "which", "who", "as", "into", "about", "after", "before", "between", "is",
              "are", "was", "were", "has", "have", "had", "will", "would", "its", "their", "his", "her", ","}
_LINE_END = re.compile(r"[.!?:;\"'\u201d\u2019)\]\u2026]\s*$")


def _headline_list_lines(text: str) -> list[tuple[int, int]]:
    """Character spans of lines that belong to a list of headlines or links: short lines (at most 20 words)
    without sentence-final punctuation between two such lines (section labels, times, other headlines). A
    story's own headline or a live blog's subheading has a punctuated paragraph after it."""
    lines = []
    pos = 0
    for raw in text.split("\n"):
        if raw.strip():
            lines.append((pos, pos + len(raw), raw.strip()))
        pos += len(raw) + 1
    bare = [len(x.split()) <= 20 and not _LINE_END.search(x) and (x[:1].isupper() or x[:1].isdigit())
            and x.split()[-1].lower() not in _CONTINUES for _, _, x in lines]
    out = []
    for n, (a, b, _) in enumerate(lines):
        if bare[n] and (n == 0 or bare[n - 1]) and (n + 1 == len(lines) or bare[n + 1]) and len(lines) > 1:
            out.append((a, b))
    return out


def _in_spans(spans: list[tuple[int, int]], c: int) -> bool:
    return any(a <= c < b for a, b in spans)


# -- coreference: one entry per distinct source ------------------------------------------------------------

_TITLE_WORDS = {"president", "prime", "minister", "mr", "mrs", "ms", "dr", "sir", "pope", "archbishop", "major",
                "bishop", "ambassador", "mayor", "governor", "general", "gen", "col", "colonel", "senator", "sen",
                "rep", "chancellor", "king", "queen", "prince", "judge", "secretary", "chief", "deputy", "foreign",
                "defence", "defense", "spokesman", "spokeswoman", "spokesperson", "lt", "lieutenant", "premier",
                "vice", "acting", "former", "u.s.", "us", "russian", "ukrainian", "asst", "assistant", "commander",
                "envoy", "adviser", "advisor", "aide", "leader", "head", "director", "reverend", "rev", "father",
                "captain", "capt", "admiral", "state"}
_NOT_PERSON_WORDS = {"group", "inc", "corp", "company", "bank", "institute", "university", "association", "council",
                     "capital", "fund", "church", "ministry", "agency", "news", "times", "post", "party", "committee",
                     "foundation", "center", "centre", "securities", "research", "international", "network",
                     "media", "press", "club", "union", "office", "department", "service", "forces", "force",
                     "airlines", "energy", "holdings", "partners", "llc", "ltd", "plc", "co", "systems", "daily",
                     "house", "court", "school", "lab", "laboratory", "project", "world", "state", "states"}
_MEDIA_WORDS = {"news", "times", "post", "daily", "journal", "tribune", "gazette", "herald", "radio", "tv",
                "television", "broadcaster", "newspaper", "magazine", "telegraph", "guardian", "observer",
                "independent", "kommersant", "izvestia", "vedomosti", "cnn", "bbc", "cbs", "nbc", "abc", "fox",
                "politico", "axios", "bloomberg", "channel", "online", "weekly", "review", "express", "mail",
                "mirror", "standard", "chronicle", "today", "wire", "agency", "media"}


def _media_name(m: Mention) -> bool:
    return bool({w.lower() for w in re.findall(r"[\w]+", m.name)} & _MEDIA_WORDS)


def _name_words(name: str) -> list[str]:
    words = [w for w in re.findall(r"[\w'\u2019.-]+", name)]
    while words and words[0].lower().strip(".") in _TITLE_WORDS and len(words) > 1:
        words = words[1:]
    return words


def _similar_surname(a: str, b: str) -> bool:
    """Transliteration variants of one surname: Zelensky / Zelenskyy / Zelenskiy."""
    a, b = a.lower(), b.lower()
    if a == b:
        return True
    if len(a) < 5 or len(b) < 5 or a[:4] != b[:4] or abs(len(a) - len(b)) > 2:
        return False
    strip = lambda x: re.sub(r"(?:yy|iy|ii|y|i|ij)$", "", x)  # noqa: E731
    if strip(a) == strip(b):
        return True
    # one y/i/j inserted or swapped after the first four letters: Minnekaev / Minnekayev
    if len(a) < 6 or len(b) < 6:
        return False
    if len(a) > len(b):
        a, b = b, a
    k = next((n for n in range(len(a)) if a[n] != b[n]), len(a))
    if len(a) == len(b):
        return a[k] in "yij" and b[k] in "yij" and a[k + 1:] == b[k + 1:]
    return len(b) == len(a) + 1 and b[k] in "yij" and a[k:] == b[k + 1:]


def _initials(name: str) -> str:
    return "".join(w[0] for w in re.findall(r"[A-Za-z][\w'-]*", name) if w[0].isupper())


def _personish(dm: DocMentions, m: Mention) -> bool:
    """An ORG-tagged two- or three-word name that stands in a person's slot ("chief negotiator,
    Rustem Umerov," / "Rustem Umerov, the chief negotiator,")."""
    doc = dm.doc
    words = [t for t in doc[m.start:m.end]]
    if not 2 <= len(words) <= 3 or any(not t.text[:1].isupper() or not t.is_alpha for t in words):
        return False
    if any(t.lower_ in _NOT_PERSON_WORDS or t.lower_ in GOV_WORDS for t in words):
        return False
    before = doc[max(0, m.start - 3):m.start].text
    after = doc[m.end:min(len(doc), m.end + 5)].text
    return bool(re.search(r",\s*$", before) and _PERSON_ROLES.search(before)) or bool(
        re.match(r"\s*,\s*(?:the\s+|a\s+|an\s+)?[\w'\u2019 .-]*$", after) and _PERSON_ROLES.search(after))


_ACRONYM_PAREN = re.compile(r"\(([A-Z]{2,6})\)")
_ACRONYM_TOKEN = re.compile(r"\b[A-Z]{3,6}\b")
_WORD = re.compile(r"[A-Za-z][\w'\u2019-]*")
_ACR_SKIP = {"of", "the", "and", "for", "on", "in"}
#: A conjunction glued to the next word by lost spacing in scraped text ("ButThrall, who previously ...").
_GLUED = re.compile(r"^(?:But|And|Yet|So|Or|Then|As|In|The)([A-Z][a-z]{2,}(?:-[A-Z][a-z]+)?)$")
_ACRONYM_DEF = re.compile(r"([A-Za-z][\w' -]{3,80}?)\s*\(([A-Z]{2,6})\)")


class _Coref:
    """Maps a source mention to its canonical entity: surnames and name variants to the person's full name,
    acronyms to the body they abbreviate, ORG-tagged names in a person's slot to persons."""

    def __init__(self, dm: DocMentions, text: str | None = None):
        self.dm = dm
        text = dm.doc.text if text is None else text
        self.persons: list[Mention] = []
        self.surnames: set[str] = set()
        for m in dm.mentions:
            if m.kind == "person":
                words = _name_words(m.name)
                if words:
                    self.surnames.add(words[-1].lower())
                if len(words) > 1:
                    self.persons.append(m)
            elif m.kind == "organization" and _personish(dm, m):
                self.persons.append(Mention(m.start, m.end, "person", m.name, m.text, m.label, m.country,
                                            m.descriptor))
        self.bodies = [m for m in dm.mentions if m.kind in ("organization", "official_body")
                       and len(m.name.split()) > 1]
        self.acronyms: list[tuple[str, Mention]] = []
        for m in self.bodies:
            ini = _initials(m.name)
            if len(ini) >= 2:
                self.acronyms.append((ini, m))
        # explicit definitions: "the central bank of Russia (CBR)"
        for mt in _ACRONYM_PAREN.finditer(text):
            before = _ACRONYM_DEF.search(text, max(0, mt.start() - 80), mt.end())
            if before is None or before.end() != mt.end():
                continue
            mt = before
            acr, words = mt.group(2), re.findall(r"[A-Za-z][\w'-]*", mt.group(1))
            content = [w for w in words if w.lower() not in ("of", "the", "and", "for", "on", "in")]
            for n in range(len(acr), len(acr) + 3):
                tail = [w for w in words[-n:]] if n <= len(words) else None
                if tail and "".join(w[0] for w in tail if w.lower() not in ("of", "the", "and", "for", "on",
                                                                              "in")).upper() == acr:
                    name = " ".join(tail)
                    span = dm.doc.char_span(mt.start(1) + mt.group(1).rfind(name), mt.end(1), alignment_mode="expand")
                    if span is not None and content:
                        kind = "official_body" if {w.lower() for w in tail} & GOV_WORDS else "organization"
                        self.acronyms.insert(0, (acr, Mention(span.start, span.end, kind, name, name, "NP")))
                    break
        self._spelled_acronyms(text)
        self._persons_seen: list[tuple[str, str]] = []  # (first name or "", surname) of emitted persons
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}
        self._body_sigs: dict[tuple[str, str], tuple[str, frozenset, str | None]] = {}

    def _spelled_acronyms(self, text: str) -> None:
        """An acronym of three or more letters that no named body explains, spelled by the initials of a
        body written in lower case elsewhere: "the CBR" <- "the central bank of Russia"."""
        known = {ini for ini, _ in self.acronyms}
        wanted = {a for a in _ACRONYM_TOKEN.findall(text) if a not in known} - {"CEO", "USA", "GMT", "UTC"}
        if not wanted:
            return
        words = list(_WORD.finditer(text))
        for acr in sorted(wanted):
            n = len(acr)
            for i, w in enumerate(words):
                if w.group(0)[0].lower() != acr[0].lower() or w.group(0).lower() in _ACR_SKIP:
                    continue
                content, k = [w], i + 1
                while k < len(words) and len(content) < n:
                    if text[words[k - 1].end():words[k].start()].strip():
                        break  # punctuation between the words
                    if words[k].group(0).lower() not in _ACR_SKIP:
                        content.append(words[k])
                    k += 1
                if len(content) < n or "".join(x.group(0)[0] for x in content).upper() != acr:
                    continue
                low = {x.group(0).lower() for x in content}
                if not low & (GOV_WORDS | _ORG_HEADS) or all(x.group(0)[0].isupper() for x in content):
                    continue
                span = self.dm.doc.char_span(w.start(), content[-1].end(), alignment_mode="expand")
                if span is None:
                    continue
                name = text[w.start():content[-1].end()]
                c = self.dm.cl.country_in([x.group(0) for x in content])
                kind = "official_body" if low & GOV_WORDS else "organization"
                self.acronyms.append((acr, Mention(span.start, span.end, kind, name, name, "NP",
                                                   c[0] if c else None)))
                break

    def person_in_role(self, m: Mention) -> Mention | None:
        """ "Russia's deputy foreign minister said" where the article names him elsewhere as "Deputy Foreign
        Minister Mikhail Galuzin": the named person (a role that one person holds, not "officials")."""
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", m.name)]
        if not words or words[-1] not in _UNIQUE_ROLES:
            return None
        role = [w for w in words if w not in ("s", "the", "a", "an", "senior", "top", "acting", "former", "high",
                                              "ranking", "current", "new") and self.dm.cl.lookup(w.title()) is None]
        if not role:
            return None
        hits = []
        for p in self.persons + [x for x in self.dm.mentions if x.kind == "person"]:
            q = _strip_role(p)
            desc = (q.descriptor or "").lower()
            dwords = set(re.findall(r"[a-z]+", desc))
            if dwords and set(role) <= dwords:
                hits.append(q)
        names = {h.name for h in hits}
        if len(names) == 1:
            h = hits[0]
            return Mention(m.start, m.end, "person", h.name, m.text, h.label, h.country or m.country,
                           h.descriptor, h.country_kind)
        return None

    def person_for(self, word: str) -> Mention | None:
        for p in self.persons:
            words = _name_words(p.name)
            if _similar_surname(word, words[-1]) or (len(words) > 1 and word == words[0] and word[:1].isupper()
                                                      and "-" in words[-1]):
                return p
        return None

    def canon(self, m: Mention) -> Mention:
        if m.kind == "country" and m.country_kind == "leader":
            # a leader's name the tagger took for a place ("Zelenskyy says ...")
            p = self.person_for(_name_words(m.name)[-1]) if _name_words(m.name) else None
            return Mention(m.start, m.end, "person", p.name if p else m.name, m.text, m.label, m.country,
                           p.descriptor if p else None, "leader")
        if m.kind in ("news_agency", "country") or m.label == "PRON":
            return m
        glued = _GLUED.match(m.name)
        if glued:
            p = self.person_for(glued.group(1))
            if p is not None:
                return Mention(m.start, m.end, "person", p.name, m.text, p.label, p.country, p.descriptor,
                               p.country_kind)
        if m.kind == "person":
            m = _strip_role(m)
        if m.kind == "official_body" and m.label == "NP":
            p = self.person_in_role(m)
            if p is not None:
                return p
        words = _name_words(m.name)
        if words and all(w[:1].isupper() for w in words) and (m.kind == "person" or len(words) <= 2):
            if len(words) == 1:
                p = self.person_for(words[0])
                if p is not None:
                    return Mention(m.start, m.end, "person", p.name, m.text, p.label, p.country or m.country,
                                   m.descriptor or p.descriptor, p.country_kind)
            elif m.kind != "person" and any(_similar_surname(words[-1], s) for s in self.surnames) \
                    and not {w.lower() for w in words} & _NOT_PERSON_WORDS:
                # "Volodymyr Zelenskyy" tagged ORG where "Zelenskyy" is a PERSON elsewhere
                return Mention(m.start, m.end, "person", m.name, m.text, m.label, m.country, m.descriptor)
        if m.kind == "organization" and m.label != "NP":
            q = _strip_role(Mention(m.start, m.end, "person", m.name, m.text, m.label, m.country))
            rest = q.name.split()
            if q.name != m.name and 2 <= len(rest) <= 3 and all(w[:1].isupper() and w.isalpha() for w in rest) \
                    and not {w.lower() for w in rest} & (_NOT_PERSON_WORDS | GOV_WORDS):
                return q  # "Regional Governor Pavel Orlov" tagged ORG
        if m.kind == "organization" and _personish(self.dm, m):
            return Mention(m.start, m.end, "person", m.name, m.text, m.label, m.country, m.descriptor)
        if len(words) == 1 and words[0].isupper() and len(words[0]) >= 2:
            for ini, b in self.acronyms:
                if b.start != m.start and (ini == words[0] or (len(words[0]) >= 3 and ini.startswith(words[0]))):
                    return Mention(m.start, m.end, b.kind, b.name, m.text, b.label, b.country or m.country,
                                   m.descriptor)
        return m

    def key(self, m: Mention, kind: str) -> tuple[str, str]:
        """Identity of a source: persons by surname (up to transliteration) and first name when both have
        one, bodies by name, a shorter body name ("Defence Ministry") joining an earlier longer one with the
        same head ("Russia's Defence Ministry")."""
        if kind == "person":
            words = _name_words(m.name)
            sur = words[-1].lower() if words else m.name.lower()
            first = words[0].lower() if len(words) > 1 else ""
            for f, s in self._persons_seen:
                if _similar_surname(s, sur) and (not f or not first or f == first):
                    return ("person", f + " " + s)
            self._persons_seen.append((first, sur))
            return ("person", first + " " + sur)
        if m.kind == "country" and m.country and m.country_kind in ("name", "capital") \
                and re.sub(r"^the\s+", "", m.name.lower()) not in _SEATS_OF_GOVERNMENT:
            # a country and its capital city speaking are one source, its government ("Moscow says" after
            # "Russia said"); a seat of government ("the Kremlin", "the Pentagon") is a body of its own
            return ("country", m.country)
        name = re.sub(r"^(?:the)\s+", "", m.name.lower())
        if kind == "news_agency":
            return (name, kind)
        unnamed = self._unnamed_officials(m)
        if unnamed is not None:
            # "Ukrainian officials say ...", "a Ukrainian official denounced ...", "Ukraine's energy officials
            # said ...": unnamed officials of one government cannot be told apart -- one source
            return self._keys.setdefault(("officials", unnamed), (name, kind))
        gloss = self._gloss(m)
        if gloss is not None:
            for k, v in self._keys.items():
                if k[0] == "body" and self._body_sigs[k][0] == gloss:
                    return v  # "The Council of Ministers (government)" after "the Soviet government"
        head, words, country = self._sig(m.name)
        country = country or m.country
        for k, v in self._keys.items():
            if k[0] != "body":
                continue
            h2, w2, c2 = self._body_sigs[k]
            if head and head == h2 and head in lexicon_gov_words() and (words <= w2 or w2 <= words) \
                    and (country is None or c2 is None or country == c2):
                return v
        k = ("body", f"{name}@{country or ''}")  # one name, two countries: "Japan's" / "South Korea's Defense Ministry"
        self._keys[k] = (k[1], kind)
        self._body_sigs[k] = (head, words, country)
        return (k[1], kind)

    def _sig(self, name: str) -> tuple[str, frozenset, str | None]:
        """A body name as (head, content words, country): "the central bank of Russia", "Russia's central
        bank" and "the Russian central bank" all give ("bank", {central, bank}, "RUS"); "the ministry of
        defence" and "defence ministry" the same words."""
        words = [w for w in re.findall(r"[\w.\u2019'-]+", name) if w.lower() not in ("the", "a", "an")]
        country = None
        content = []
        for w in words:
            hit = self.dm.cl.lookup(w) or self.dm.cl.lookup(w.title())
            if hit and hit[1] in ("name", "demonym"):
                country = country or hit[0]
                continue
            w = re.sub(r"[\u2019']s$", "", w).lower().strip(".")
            if w and w not in ("s", "and"):
                content.append(w)
        if not content:
            return "", frozenset(), country
        cut = next((n for n, w in enumerate(content) if w in ("of", "for", "on") and n > 0), len(content))
        head = content[cut - 1]
        return head, frozenset(w for w in content if w not in ("of", "for", "on")), country

    def _unnamed_officials(self, m: Mention) -> str | None:
        """The country of an unnamed official whose only affiliation is the country (with common nouns:
        "Ukraine's energy officials"), else None ("a Foreign Ministry official" names a body)."""
        if m.label != "NP" or not m.country:
            return None
        words = re.findall(r"[\w.\u2019'-]+", m.name)
        if not words or words[-1].lower() not in ("official", "officials", "source", "sources"):
            return None
        for w in words[:-1]:
            hit = self.dm.cl.lookup(w) or self.dm.cl.lookup(w.title())
            if hit and hit[1] in ("name", "demonym") and hit[0] == m.country:
                continue
            if w[:1].isupper() or w.lower() in ("s", "’s"):
                if w.lower() in ("s", "’s", "'s"):
                    continue
                return None
        return m.country

    def _gloss(self, m: Mention) -> str | None:
        """ "The Council of Ministers (government)": the common noun glossing a body in parentheses."""
        doc = self.dm.doc
        e = m.end
        if e + 2 < len(doc) and doc[e].text == "(" and doc[e + 2].text == ")" and doc[e + 1].is_lower \
                and doc[e + 1].is_alpha and doc[e + 1].lower_ in lexicon_gov_words():
            return doc[e + 1].lower_
        return None


#: Lexicon "capitals" that name an institution, not the city: sources distinct from the country.
_SEATS_OF_GOVERNMENT = {"kremlin", "white house", "pentagon", "state department", "capitol hill", "downing street",
                        "whitehall", "elysee", "élysée", "zhongnanhai"}

_UNIQUE_ROLES = {"minister", "spokesman", "spokeswoman", "spokesperson", "ambassador", "envoy", "governor",
                 "president", "mayor", "secretary", "chancellor", "premier", "commander", "chief", "head",
                 "negotiator", "adviser", "advisor", "aide"}


def _strip_role(m: Mention) -> Mention:
    """ "Pentagon Spokesperson John Kirby" -> "John Kirby" (descriptor "Pentagon Spokesperson")."""
    words = m.name.split()
    cut = 0
    for k, w in enumerate(words[:-1]):
        if _PERSON_ROLES.fullmatch(w.strip(".,")) or w.lower().strip(".") in _TITLE_WORDS:
            cut = k + 1
    if cut == 0 or len(words) - cut < 1 or (len(words) - cut == 1 and cut < len(words) - 1):
        return m
    name = " ".join(words[cut:])
    desc = m.descriptor or " ".join(words[:cut])
    return Mention(m.start, m.end, m.kind, name, m.text, m.label, m.country, desc, m.country_kind)


def lexicon_gov_words() -> set[str]:
    return GOV_WORDS


# -- cue context ---------------------------------------------------------------------------------------------

_STUDY_NOUNS = {"report", "survey", "study", "research", "data", "analysis", "poll", "estimate", "estimates",
                "figures", "statement", "assessment", "tally", "count", "census", "calculations", "review",
                "findings", "forecast", "statistics", "index", "investigation", "monitoring"}
_STUDY_CUES = {"showed", "shows", "found", "finds", "suggested", "suggests", "concluded", "estimated",
               "estimates", "predicted", "predicts", "indicated", "indicates", "said", "says"}


def _past_study_noun(doc: Any, j: int, end: int) -> int:
    """After "according to": skip "a report by" / "research from" / "the latest data from"."""
    k = j
    while k < end and k < j + 5 and (doc[k].tag_ in ("DT", "JJ", "JJS", "CD", "PRP$") or doc[k].ent_type_ == "DATE"):
        k += 1
    if k < end and doc[k].lower_ in _STUDY_NOUNS:
        q = k + 1
        if q < end and doc[q].lower_ in ("conducted", "published", "released", "commissioned", "compiled"):
            q += 1
        if q < end and doc[q].lower_ in ("by", "from", "of"):
            return q + 1
    return j


def _study_author_before(dm: DocMentions, bound: int, i: int) -> list[Mention]:
    """ "a survey by X showed": X, when the subject of the cue is a study noun followed by by/from X."""
    doc = dm.doc
    j = i - 1
    while j >= bound and (doc[j].tag_ in ("RB",) or doc[j].ent_type_ == "DATE"):
        j -= 1
    m = dm.at(j) if j >= bound else None
    if m is None or m.kind not in ("organization", "official_body", "news_agency", "country"):
        return []
    k = m.start - 1
    while k >= bound and (doc[k].tag_ in ("DT", "JJ", "POS", "NNP") or doc[k].ent_type_ in ("GPE", "NORP")) \
            and dm.at(k) is not None or (k >= bound and doc[k].tag_ in ("DT", "JJ")):
        k -= 1
    if k - 1 >= bound and doc[k].lower_ in ("by", "from") and (doc[k - 1].lower_ in _STUDY_NOUNS or (
            doc[k - 1].lower_ in ("conducted", "published", "released", "commissioned") and k - 2 >= bound
            and doc[k - 2].lower_ in _STUDY_NOUNS)):
        return [m]
    return []


def _after_speech_cue(doc: Any, bound: int, i: int) -> bool:
    """Whether the last finite verb before the participle at ``i`` is a speech cue ("X said, adding ...")."""
    for q in range(i - 1, bound - 1, -1):
        if doc[q].tag_ in ("VBD", "VBZ", "VBP"):
            return doc[q].lower_ in _SPEECH_CUES or doc[q].lower_ in ("added", "adds")
    return False


def _embedded(doc: Any, bound: int, start: int) -> bool:
    """Whether the clause starting at ``start`` is the content of an earlier speech cue of the sentence
    ("Peskov said [Moscow had rejected ...]")."""
    for q in range(start - 1, max(bound, start - 4) - 1, -1):
        t = doc[q]
        if t.lower_ == "that" or t.tag_ in ("DT", "JJ", "POS", "NNP"):
            continue
        return t.lower_ in _SPEECH_CUES and t.tag_.startswith("VB") and t.lower_ not in ("told", "tell", "tells")
    return False


def _passive_or_adjectival(doc: Any, bound: int, i: int, end: int) -> bool:
    """ "Miller was cited for ...", "has been declared", "forces alleged to be fighting", "its founder added
    to the register" are not speech."""
    tok = doc[i]
    j = i - 1
    while j >= bound and doc[j].tag_ in ("RB", "RBR") and doc[j].lower_ not in ("not",):
        j -= 1
    if tok.tag_ == "VBN" and j >= bound and doc[j].lower_ in _PASSIVE_AUX:
        return True
    if tok.lower_ in ("alleged", "declared", "quoted", "cited", "charged", "accused") and i + 1 < end \
            and doc[i + 1].lower_ == "to" and tok.lower_ != "quoted":
        return True
    return False


def _inverted(doc: Any, bound: int, i: int) -> bool:
    """The cue follows the reported content: '"...", X warned' / '..., X said.'"""
    j = i - 1
    while j >= bound and not doc[j].is_punct and not doc[j].is_quote and i - j < 7:
        j -= 1
    return j >= bound and (doc[j].is_quote or doc[j].text == ",") and (
        i + 1 >= len(doc) or doc[i + 1].is_punct or doc[i + 1].ent_type_ in ("DATE", "TIME")
        or doc[i + 1].lower_ in ("on", "in", "at", "during", "after", "before", "while", "when", "from"))


def _reported_complement(doc: Any, i: int, end: int, low: str) -> bool:
    """Whether the cue at ``i`` takes reported content: a that-clause, a quote, a colon, an embedded clause
    ("confirmed its president would attend"), "to" + verb for threats and pledges, a gerund for denials."""
    k = i + 1
    while k < end:
        t = doc[k]
        if t.tag_ in ("RB", "RBR") or t.ent_type_ in ("DATE", "TIME") or t.lower_ in ("on", "in", "a", "statement",
                                                                                      "last", "late", "early"):
            k += 1
            continue
        break
    if k >= end or doc[k].text in (".", ";", ",") or doc[k].is_space:
        return True
    t = doc[k]
    if t.lower_ == "that" or t.is_quote or t.text == ":":
        return True
    if low in _TO_CUES:
        for q in range(k, min(end - 1, k + 6)):
            if doc[q].lower_ == "to" and doc[q + 1].tag_ == "VB":
                return True
            if doc[q].is_punct:
                break
    if low in _GERUND_CUES and t.tag_ == "VBG":
        return True
    if low in ("accused", "charged", "accuses"):
        for q in range(k, min(end - 1, k + 7)):
            if doc[q].lower_ == "of" and doc[q + 1].tag_ in ("VBG", "NN", "NNS", "DT", "JJ"):
                return True
            if doc[q].is_punct:
                break
    for q in range(k, min(end, k + 7)):
        x = doc[q]
        if x.is_punct or x.lower_ in ("and", "or", "but") or x.is_space:
            break
        if x.lower_ == "that" and q < k + 4:
            return True
        if x.tag_ in ("MD", "VBD", "VBZ", "VBP") and q > k:
            return True
    return False


def _cue_name(low: str) -> str:
    return {"says": "said", "say": "said", "saying": "said", "tells": "told", "tell": "told",
            "reports": "reported", "reporting": "reported", "quoting": "quoted", "writes": "wrote",
            "adding": "added", "noting": "noted", "stating": "stated", "explaining": "explained",
            "announcing": "announced"}.get(low, low)


def _content(sent: Any, i: int) -> str | None:
    text = sent.text.strip()
    q = re.findall(r"[\"\u201c]([^\"\u201d]{8,})[\"\u201d]", text)
    if q:
        return q[0]
    return text if len(text) < 400 else text[:400]


def _resolve(dm: DocMentions, m: Mention, last_person: list, last_body: list) -> Mention | None:
    if m.label == "PRON":
        if m.kind == "person":
            return last_person[0]
        return last_body[0]
    return m


def _mention_after(dm: DocMentions, j: int, end: int, *, allow_np: bool = False) -> Mention | None:
    """The first source-like mention at or after token j (skipping determiners and descriptors)."""
    doc = dm.doc
    k = j
    while k < end:
        t = doc[k]
        m = dm.at(k)
        if m is not None:
            nx = m.end + 1 if m.end < end and doc[m.end].tag_ == "POS" else m.end
            owned = dm.at(nx) if nx > m.end and nx < end else None
            if m.kind == "country" and owned is not None and owned.kind == "official_body":
                # "Russia's defence ministry" where the ministry is an entity of its own
                txt = doc[m.start:owned.end].text
                return Mention(m.start, owned.end, "official_body", txt, txt, "NP", m.country, None, m.country_kind)
            if m.kind in ("organization", "official_body", "country") and nx < end \
                    and doc[nx].tag_ in ("NN", "NNS", "NNP", "NNPS", "JJ") and dm.at(nx) is None:
                # "the UN refugee agency", "Russia's defence ministry": the whole noun phrase
                aff = dm.affiliated_np(_np_head(doc, nx, end))
                if aff is not None:
                    return aff
            if m.kind in ("person", "news_agency", "organization", "official_body", "country"):
                return m
            if m.kind == "group":
                nxt = dm.affiliated_np(_np_head(doc, m.end, end))
                if nxt:
                    return nxt
            return None
        if t.lower_ in ("the", "a", "an", "its", "state-run", "state-owned", "official", "independent", "-",
                        "semi", "state", "run", "owned", "private", "news", "agency", "private", "local",
                        "russian", "chinese", "ukrainian") \
                or t.tag_ in ("JJ",) or (t.tag_ in ("NN", "NNP") and not allow_np and k - j < 4):
            if allow_np or t.tag_ in ("NN", "NNS", "NNP"):
                head = _np_head(doc, k, end)
                aff = dm.affiliated_np(head)
                if aff is not None and dm.at(head) is None:
                    return aff
            k += 1
            continue
        if allow_np and t.tag_ in ("NN", "NNS", "NNP"):
            aff = dm.affiliated_np(_np_head(doc, k, end))
            if aff:
                return aff
        return None
    return None


def _person_after(dm: DocMentions, j: int, end: int) -> Mention | None:
    """ '"...", said Regional Governor Gleb Nikitin': the person among the title words after the cue."""
    doc = dm.doc
    k = j
    while k < end and not doc[k].is_punct and not doc[k].is_quote:
        m = dm.at(k)
        if m is not None and m.kind == "person":
            return m
        if m is not None and m.kind not in ("organization", "official_body", "country", "group"):
            return None
        k = m.end if m is not None else k + 1
    return None


def _coordinated_after(dm: DocMentions, j: int, end: int, *, skip_any: bool = False) -> list[Mention]:
    """Mentions after token j joined by "and"/commas: "according to CBS News and Agence France-Presse".
    A comma continues the list only before another name that is itself followed by a comma or "and"
    (not "according to RIA, Dmitriev refused", not "the ISW, a Washington-based think tank")."""
    doc = dm.doc
    out: list[Mention] = []
    k = j
    while k < end:
        m = _mention_after(dm, k, end)
        if m is None and skip_any and not out:
            k += 1
            continue
        if m is None:
            break
        out.append(m)
        k = m.end
        if k + 1 < end and doc[k].lower_ == "and" and doc[k + 1].lower_ not in ("said", "says"):
            k += 1
            continue
        if k + 1 < end and doc[k].text == "," and dm.at(k + 1) is not None:
            nxt = dm.at(k + 1)
            if nxt.end < end and (doc[nxt.end].text == "," or doc[nxt.end].lower_ == "and"):
                k += 1
                continue
        break
    return out


def _np_head(doc: Any, k: int, end: int) -> int:
    while k + 1 < end and doc[k + 1].tag_ in ("NN", "NNS", "NNP", "NNPS") and not doc[k + 1].is_punct:
        k += 1
    return k


_OPENERS = {",", "--", "\u2014", "\u2013", "("}


def _segment_open(doc: Any, bound: int, j: int) -> int | None:
    """The delimiter opening the comma/dash segment that the delimiter at ``j`` closes, or None."""
    k = j - 1
    while k >= bound and j - k < 40:
        t = doc[k]
        if t.is_quote or (t.is_space and "\n" in t.text) or t.text in (".", ";", ":"):
            return None
        if t.text in _OPENERS or (t.text == "-" and doc[j].text == "-"):
            return k
        k -= 1
    return None


_CLAUSE_OPENERS = {"after", "before", "as", "until", "since", "than", "like"}


def _pp_object(dm: DocMentions, bound: int, m: Mention) -> int | None:
    """Index of the preposition whose object the noun phrase of ``m`` is, else None. Words that also open
    clauses ("after Zelensky said", "as Washington seeks") and the "of" inside a title ("Secretary of State
    Marco Rubio") do not count."""
    doc = dm.doc
    j = m.start - 1
    while j >= bound and (doc[j].tag_ in ("DT", "JJ", "JJS", "CD", "PRP$", "NNP", "NNPS", "POS", "HYPH", "VBN")
                          or doc[j].lower_ in ("the", "a", "an")) and doc[j].lower_ not in PREPOSITIONS \
            and (not doc[j].is_punct or doc[j].tag_ == "HYPH"):
        j -= 1
    if j < bound or not (doc[j].lower_ in PREPOSITIONS or doc[j].tag_ == "TO"):
        return None
    if doc[j].lower_ in _CLAUSE_OPENERS:
        return None
    if m.kind == "person" and doc[j].lower_ == "of" and j - 1 >= bound and doc[j - 1].text[:1].isupper() \
            and j + 1 < m.start:
        return None
    return j


def _coordinated_before(dm: DocMentions, bound: int, m: Mention) -> Mention | None:
    """ "Hungary and Slovakia threatened": the name joined to ``m`` by "and"."""
    doc = dm.doc
    j = m.start - 1
    while j >= bound and doc[j].lower_ in ("the",):
        j -= 1
    if j - 1 >= bound and doc[j].lower_ == "and":
        other = dm.at(j - 1)
        if other is not None and other.kind in ("country", "official_body", "organization", "person") and \
                (other.kind == m.kind or {other.kind, m.kind} <= {"country", "official_body"}):
            return other
    return None


def _subject_before(dm: DocMentions, bound: int, i: int, co: _Coref | None = None) -> list[Mention]:
    """The speakers of the cue verb at token i when they stand before the verb.

    Walks left over adverbs, auxiliaries and dates, over comma/dash segments (appositives, relative clauses:
    "Rustem Umerov, Ukraine's chief negotiator and ..., said", "Marco Rubio -- who was not there -- said"),
    over a locative phrase after the speaker ("Walt Disney World in Florida announced"); a name that is the
    object of another preposition ("talks with the United States said") is not the speaker.
    """
    doc = dm.doc
    j = i - 1
    hops = 0
    antecedent = False
    while j >= bound and hops < 8:
        t = doc[j]
        if t.lower_ in _SKIP_BEFORE_CUE or t.tag_ in ("RB", "MD") or t.ent_type_ in ("DATE", "TIME"):
            j -= 1
            continue
        if t.lower_ == "and" and j - 1 >= bound and not doc[j - 1].is_punct and dm.at(j - 1) is None \
                and doc[i].tag_ in ("VBD", "VBZ"):
            # "Moscow declared victory in the city and said ...": the subject of the first verb
            return _clause_subject(dm, bound, j)
        if t.text == ")":
            k = j - 1
            while k >= bound and j - k < 20 and doc[k].text != "(":
                k -= 1
            if k < bound or doc[k].text != "(":
                return []
            j = k - 1
            hops += 1
            continue
        if t.lower_ in ("who", "which") and t.tag_ in ("WP", "WDT"):
            k = j - 1
            while k >= bound and doc[k].text in _DELIMS:
                k -= 1
            if k < bound:
                return []
            j = k
            hops += 1
            antecedent = True
            # the antecedent: evaluated below
        elif t.text in _DELIMS and t.text not in ("(", ")"):
            hops += 1
            k = _segment_open(doc, bound, j)
            named = dm.at(j - 1) if j - 1 >= bound else None
            if named is not None and named.kind in ("person", "organization") and (
                    named.kind == "person" or _personish(dm, named)):
                if k is None or named.start <= k + 3:
                    # "The Kremlin spokesperson, Dmitry Peskov, said" / "Kim Ji-san, analyst at ... said"
                    if k is not None and named.kind == "person" and not named.descriptor:
                        p = k - 1
                        while p >= bound and (doc[p].tag_ in ("NN", "NNP", "JJ", "POS", "NNPS")
                                              or doc[p].lower_ in ("the", "a")) and k - p < 8:
                            p -= 1
                        desc = doc[p + 1:k].text.strip()
                        named.descriptor = re.sub(r"^(?:the|a|an|The|A|An)\s+", "", desc) or None
                    return [named]
            if k is None or k >= j - 1:
                return []
            inner = doc[k + 1:j]
            first = inner[0].lower_
            if first in ("who", "which", "the", "a", "an", "its", "his", "her", "whose") or inner[0].tag_ in (
                    "NN", "NNP", "JJ", "VBN", "VBG", "IN", "RB", "PRP$", "DT", "CD") or first in ("quoting",
                                                                                                "citing"):
                j = k - 1
                continue
            return []
        # a candidate at j
        if t.lower_ in _PRONOUNS and t.tag_ == "PRP":
            return [Mention(j, j + 1, _PRONOUNS[t.lower_], t.text, t.text, "PRON")]
        m = dm.at(j)
        if m is None and t.tag_ in ("NN", "NNS", "NNP", "NNPS"):
            m = dm.affiliated_np(j) or _bare_name(dm, bound, j) or _government(doc, bound, j) \
                or _body_with_pp(dm, bound, j) or _unrecognized_org(dm, bound, j)
            if m is None and co is not None and t.tag_ == "NNP" and t.is_title and (
                    j == bound or doc[j - 1].is_punct or doc[j - 1].tag_ in ("DT", "CC")):
                p = co.person_for(t.text)  # "Zelenskiy told Reuters": a known surname the tagger missed here
                if p is not None:
                    m = Mention(j, j + 1, "person", p.name, t.text, "NP", p.country, p.descriptor)
            if m is None and j - 3 >= bound and t.lower_ in ("allies", "partners") \
                    and doc[j - 1].lower_ in ("its", "their") and doc[j - 2].lower_ == "and":
                j -= 3  # "Washington and its allies have denied ..."
                hops += 1
                continue
            if m is None:
                return []
        if m is None or m.kind == "group":
            return []
        p = None if antecedent else _pp_object(dm, bound, m)
        if p is not None and doc[p].lower_ in ("by", "from") and p - 1 >= bound and (
                doc[p - 1].lower_ in _STUDY_NOUNS or doc[p - 1].lower_ in ("story", "article", "dispatch")):
            return [m]  # "a report by X said", "This report by The Canadian Press was first published"
        if p is not None:
            if doc[p].lower_ in ("in", "at", "from", "near") and p - 1 >= bound and (
                    doc[p - 1].tag_ in ("NN", "NNS", "NNP", "NNPS") or dm.at(p - 1) is not None):
                j = p - 1  # "Russia's ambassador in Belgrade told"
                hops += 1
                continue
            q = p - 1
            while q >= bound and doc[q].text not in _DELIMS and not doc[q].is_quote \
                    and not (doc[q].is_space and "\n" in doc[q].text):
                q -= 1
            if q >= bound and doc[q].text in _DELIMS and doc[q].text not in ("(", ")"):
                j = q  # "Sergii Pylypenko, CEO of Kovalska Group, ...": back to the comma before "CEO"
                hops += 1
                continue
            return []
        if m.kind == "place":
            return []
        out = [m]
        other = _coordinated_before(dm, bound, m)
        if other is not None:
            out.insert(0, other)
        return out
    return []


_GOVERNMENT_MODIFIERS = {"federal", "national", "central", "provincial", "regional", "state", "interim",
                         "military", "transitional", "municipal", "city"}


def _government(doc: Any, bound: int, j: int) -> Mention | None:
    """ "The federal government says": a government named by its level rather than its country."""
    if doc[j].lower_ != "government" or j - 1 < bound or doc[j - 1].lower_ not in _GOVERNMENT_MODIFIERS:
        return None
    text = doc[j - 1:j + 1].text
    return Mention(j - 1, j + 1, "official_body", text, text, "NP")


_ORG_HEADS = {"organisation", "organization", "institute", "association", "council", "committee", "agency",
              "bureau", "office", "commission", "court", "fund", "union", "foundation", "centre", "center",
              "federation", "society", "board", "authority", "secretariat", "programme", "program", "mission",
              "observatory", "group", "network", "watch", "alliance", "coalition", "league", "assembly"}


def _unrecognized_org(dm: DocMentions, bound: int, j: int) -> Mention | None:
    """A proper-name organization the entity recognizer missed, opening the clause: "The Organisation for the
    Prohibition of Chemical Weapons has found that ..."."""
    doc = dm.doc
    if doc[j].tag_ not in ("NNP", "NNPS"):
        return None
    k = j
    while k - 1 >= bound and j - k < 10 and (doc[k - 1].tag_ in ("NNP", "NNPS") or doc[k - 1].lower_ in (
            "of", "for", "the", "and", "on")) and dm.at(k - 1) is None:
        k -= 1
    while k < j and doc[k].lower_ in ("of", "for", "and", "on"):
        k += 1
    if doc[k].lower_ == "the":
        k += 1
    if k > bound and not (doc[k - 1].lower_ in ("the", "The") and (k - 1 == bound or doc[k - 2].is_punct
                                                                   or doc[k - 2].is_space)) \
            and not (doc[k - 1].is_punct or doc[k - 1].is_space):
        return None
    words = doc[k:j + 1]
    if len(words) < 2 or not words[0].is_title or not any(t.lower_ in _ORG_HEADS for t in words):
        return None
    kind = "official_body" if any(t.lower_ in GOV_WORDS for t in words) else "organization"
    return Mention(k, j + 1, kind, words.text, words.text, "NP")


def _body_with_pp(dm: DocMentions, bound: int, j: int) -> Mention | None:
    """ "Moldova's bureau for reintegration policies said": a body whose name goes on in a prepositional
    phrase of common nouns."""
    doc = dm.doc
    k = j
    while k - 1 >= bound and j - k < 5 and doc[k - 1].tag_ in ("NN", "NNS", "JJ", "DT"):
        k -= 1
    if k - 2 < bound or doc[k - 1].lower_ not in ("for", "of", "on") or k > j:
        return None
    aff = dm.affiliated_np(k - 2)
    if aff is None or aff.kind != "official_body":
        return None
    text = doc[aff.start:j + 1].text
    return Mention(aff.start, j + 1, "official_body", text, text, "NP", aff.country, None, aff.country_kind)


def _bare_name(dm: DocMentions, bound: int, j: int) -> Mention | None:
    """A name the entity recognizer missed, in a person's slot: two or three capitalized words opening the
    clause and followed by a comma and a role ("Rustem Umerov, Ukraine's chief negotiator ..., said")."""
    doc = dm.doc
    k = j
    while k - 1 >= bound and j - k < 2 and doc[k - 1].tag_ == "NNP" and doc[k - 1].is_title \
            and dm.at(k - 1) is None:
        k -= 1
    words = doc[k:j + 1]
    if len(words) < 2 or not all(t.is_title and t.is_alpha for t in words):
        return None
    if k > bound and not (doc[k - 1].is_punct or doc[k - 1].is_space):
        return None
    hit = dm.cl.lookup(words.text)
    if {t.lower_ for t in words} & (_NOT_PERSON_WORDS | GOV_WORDS | _TITLE_WORDS) or (hit and hit[1] != "leader"):
        return None  # a country or capital; a leader the lexicon knows ("Rustem Umerov") is a person
    if j + 2 >= len(doc) or doc[j + 1].text != "," or not _PERSON_ROLES.search(doc[j + 2:j + 8].text):
        return None
    return Mention(k, j + 1, "person", words.text, words.text, "NP")


def _clause_subject(dm: DocMentions, bound: int, j: int) -> list[Mention]:
    """The last name in ``[bound, j)`` that is followed by its finite verb: the subject of the clause."""
    doc = dm.doc
    best: list[Mention] = []
    k = bound
    while k < j:
        t = doc[k]
        m = dm.at(k)
        if m is None and t.tag_ in ("NN", "NNS", "NNP", "NNPS"):
            m = dm.affiliated_np(_np_head(doc, k, j)) or None
            if m is not None and m.start != k:
                m = None
        if m is not None and m.kind in ("person", "organization", "official_body", "country", "news_agency") \
                and _pp_object(dm, bound, m) is None and not _after_that(doc, bound, m.start):
            q = m.end
            while q < j and doc[q].tag_ == "NNP" and dm.at(q) is None and q < m.end + 3:
                q += 1
            if q < j and dm.at(q) is not None and dm.at(q).kind == "person":
                m = dm.at(q)  # "Pentagon spokesperson John Kirby appeared to ..., saying"
                q = m.end
            out = [m]
            if q + 1 < j and doc[q].lower_ == "and" and dm.at(q + 1) is not None:
                out.append(dm.at(q + 1))
                q = dm.at(q + 1).end
            elif m.kind == "person" and q + 1 < j and doc[q].lower_ in ("of", "from", "at"):
                # "Archbishop Sviatoslav Shevchuk of the Ukrainian Greek Catholic Church attended ...":
                # the affiliation phrase between the person and the verb
                p = q + 1
                while p < j and p < q + 9 and (doc[p].tag_ in ("DT", "NNP", "NNPS", "NN", "JJ", "POS", "HYPH")
                                                or dm.at(p) is not None) and not doc[p].is_punct:
                    p += 1
                if p < j and doc[p].tag_ in ("VBD", "VBZ") and p > q + 1:
                    q = p
            while q < j and (doc[q].tag_ in ("RB", "MD") or doc[q].lower_ in ("has", "have", "had", "not")
                             or doc[q].ent_type_ in ("DATE", "TIME")):
                q += 1
            if q < j and doc[q].tag_ in ("VBD", "VBZ", "VBP", "VBN") and not _embedded(doc, bound, m.start):
                other = _coordinated_before(dm, bound, out[0])
                best = ([other] if other is not None else []) + out
        k = m.end if m is not None and m.end > k else k + 1
    return best


def _after_that(doc: Any, bound: int, start: int) -> bool:
    """Whether the noun phrase at ``start`` opens a that-clause ("He reiterated that Ukraine remains open ...
    and said": Ukraine is the subject of the reported clause, not of "said")."""
    q = start - 1
    while q >= bound and doc[q].tag_ in ("DT", "JJ", "POS", "NNP", "PRP$") and doc[q].lower_ != "that":
        q -= 1
    return q >= bound and doc[q].lower_ == "that"


def _participle_subject(dm: DocMentions, bound: int, i: int) -> list[Mention]:
    """ "Kyiv has rejected such terms, saying ...", "the Kremlin marked the date by vowing ...": the subject of
    the clause the participle hangs on (the last name before it followed by its verb); "with X vowing ..."."""
    doc = dm.doc
    j = i - 1
    while j >= bound and (doc[j].tag_ in ("RB", "RBR") or doc[j].lower_ in ("instead", "also")):
        j -= 1
    if j < bound:
        return []
    m = dm.at(j)
    if m is not None and m.kind in ("person", "organization", "official_body", "country"):
        k = m.start - 1
        while k >= bound and k > m.start - 5 and (doc[k].lower_ in _TITLE_WORDS or _PERSON_ROLES.fullmatch(
                doc[k].text) or doc[k].ent_type_ in ("NORP", "GPE") or doc[k].tag_ == "POS"):
            k -= 1
        if k >= bound and doc[k].lower_ == "with":
            return [m]  # "with Ukrainian president Volodymyr Zelensky vowing to ..."
    if doc[j].text != "," and doc[j].lower_ != "by":
        return []
    return _clause_subject(dm, bound, j)
