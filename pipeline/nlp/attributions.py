"""Source attributions: who the article says its information comes from.

Pure functions of a spaCy ``Doc`` (tokens, sentences, tags, entities; no parse needed). Rules look for the
*relation*, not the name:

* speaker before a cue: "X said", "X told reporters", "X reported", "X quoted ... as saying" (X may be
  followed by an appositive: "Dmitry Peskov, the Kremlin spokesman, said");
* inverted cue: '"...", said X', "..., X said";
* prepositional cues: "according to X", "citing X", "quoted by X", "told X" (X a channel when it is an
  agency), "in an interview with X";
* datelines: "MOSCOW (Reuters) -", "(AP) —", "MOSCOW, May 3. /TASS/", a closing "— TASS";
  and the Reuters-21578 "Reuter" sign-off.

An agency that is only the subject of the news ("TASS was founded in 1904"), photo credits and bylines are
not attributions: they never sit in one of those slots. One entry is returned per distinct source (at its
first attribution); :func:`find_attributions` also returns, per sentence, the source the sentence is
attributed to, which the event extractor uses for ``attributed_to``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from pipeline.nlp.mentions import DocMentions, Mention

__all__ = ["CUE_VERBS", "AttributionResult", "find_attributions", "attributions"]

#: Verbs that attribute information to their subject.
CUE_VERBS = {
    "said", "says", "say", "saying", "told", "tells", "tell", "added", "adds", "stated", "states", "noted", "notes",
    "wrote", "writes", "reported", "reports", "reporting", "announced", "announces", "confirmed", "confirms",
    "claimed", "claims", "quoted", "quoting", "cited", "cites", "explained", "stressed", "insisted", "warned",
    "warns", "declared", "denied", "denies", "acknowledged", "argued", "asserted", "maintained", "emphasized",
    "emphasised", "underscored", "estimated", "posted", "tweeted", "revealed", "disclosed", "suggested",
    "indicated", "informed", "responded", "replied", "commented", "concluded", "alleged", "alleges",
    "mentioned", "observed", "remarked", "predicted", "urged", "accused", "charged", "signaled", "signalled",
    "stated", "assured", "recalled", "believes", "thinks", "told", "conceded", "admitted", "vowed", "pledged",
    "threatened", "announcing", "stating", "publishes", "published", "carried", "broadcast",
}
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
    seen: dict[tuple[str, str], dict] = {}
    sents = list(doc.sents)
    sent_of = {}
    for si, s in enumerate(sents):
        for i in range(s.start, s.end):
            sent_of[i] = si
    last_person: list[Mention | None] = [None]
    last_body: list[Mention | None] = [None]

    def emit(m: Mention, cue: str, role: str | None, si: int, content: str | None = None,
             char_span: tuple[int, int] | None = None, at: int | None = None) -> None:
        kind = m.kind
        if kind in ("country", "group"):
            kind = "official_body"
        if kind == "place":
            return
        key = (m.name.lower(), kind)
        if at is not None:
            res.sentence_source.setdefault(si + sentence_offset, []).append((at, m.name))
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
            "source": m.name, "kind": kind, "text": doc.text[char_span[0]:char_span[1]],
            "descriptor": m.descriptor, "cue": cue, "content": content, "sentence": si + sentence_offset,
            "start": a, "end": b, "role": role, "country": m.country,
        }
        res.attributions.append(seen[key])

    text = doc.text
    # datelines and credits ---------------------------------------------------------------------------
    for rx, cue in ((_DATELINE, "dateline"), (_SLASH_DATELINE, "dateline"), (_BARE_DATELINE, "dateline"), (_TRAIL_CREDIT, "dateline"),
                    (_SIGN_OFF, "sign-off")):
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
    for si, sent in enumerate(sents):
        toks = list(sent)
        for k, tok in enumerate(toks):
            low = tok.lower_
            i = tok.i
            if low == "according" and i + 1 < sent.end:
                # "according to X and Y"; a credit line "according\nReuters" without "to"
                j = i + 2 if doc[i + 1].lower_ == "to" else i + 1
                for m in _coordinated_after(dm, j, sent.end):
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
            if low not in CUE_VERBS:
                continue
            if low in ("quoted", "cited") and i + 1 < sent.end and doc[i + 1].lower_ == "by":
                continue
            if not (tok.tag_.startswith("VB") or low in ("said", "told", "says", "reports", "reported")):
                continue
            # told X: X is a channel when it is an agency
            if low in ("told", "tells", "tell") and i + 1 < sent.end:
                m = _mention_after(dm, i + 1, min(sent.end, i + 8))
                if m and m.kind == "news_agency":
                    emit(m, "told", "channel", si, at=i)
            # subject before the cue
            subj = _subject_before(dm, sent, i)
            if subj is not None:
                if subj.kind == "news_agency" and low not in _AGENCY_CUES and low not in ("told",):
                    subj = None
            if subj is not None:
                r = _resolve(dm, subj, last_person, last_body)
                if r is not None:
                    emit(r, _cue_name(low), "channel" if r.kind == "news_agency" else "speaker", si,
                         _content(sent, i), at=i)
                continue
            # inverted: '..., said X' / '"...", X said' handled above; here 'said X'
            prev = doc[i - 1] if i > sent.start else None
            if prev is not None and (prev.is_punct or prev.is_quote) and low in ("said", "says", "added", "wrote",
                                                                                   "reported", "told", "noted"):
                m = _mention_after(dm, i + 1, min(sent.end, i + 9), allow_np=True)
                if m:
                    emit(_resolve(dm, m, last_person, last_body) or m, _cue_name(low),
                         "channel" if m.kind == "news_agency" else "speaker", si, _content(sent, i), at=i)
    return res


def _cue_name(low: str) -> str:
    return {"says": "said", "say": "said", "saying": "said", "tells": "told", "tell": "told",
            "reports": "reported", "reporting": "reported", "quoting": "quoted", "writes": "wrote"}.get(low, low)


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


def _coordinated_after(dm: DocMentions, j: int, end: int, *, skip_any: bool = False) -> list[Mention]:
    """Mentions after token j joined by "and"/commas: "according to CBS News and Agence France-Presse"."""
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
        if k + 1 < end and doc[k].lower_ in ("and", ",") and doc[k + 1].lower_ not in ("said", "says"):
            k += 1
            continue
        break
    return out


def _np_head(doc: Any, k: int, end: int) -> int:
    while k + 1 < end and doc[k + 1].tag_ in ("NN", "NNS", "NNP", "NNPS") and not doc[k + 1].is_punct:
        k += 1
    return k


def _subject_before(dm: DocMentions, sent: Any, i: int) -> Mention | None:
    """The speaker of the cue verb at token i when it stands before the verb."""
    doc = dm.doc
    j = i - 1
    while j >= sent.start:
        t = doc[j]
        if t.lower_ in _SKIP_BEFORE_CUE or t.tag_ in ("RB", "MD") or t.ent_type_ in ("DATE", "TIME"):
            j -= 1
            continue
        if t.text == "," and j - 1 >= sent.start:
            # skip a comma-delimited appositive/relative clause: "X, the Kremlin spokesman, said"
            k = j - 1
            while k >= sent.start and k > j - 16 and doc[k].text != "," and not doc[k].is_quote:
                k -= 1
            if k >= sent.start and doc[k].text == "," and k < j - 1:
                inner = doc[k + 1:j]
                named = dm.at(j - 1)
                if named is not None and named.kind == "person":
                    # "The Kremlin spokesperson, Dmitry Peskov, said": the name in the appositive speaks
                    if not named.descriptor:
                        p = k - 1
                        while p >= sent.start and (doc[p].tag_ in ("NN", "NNP", "JJ", "POS", "NNPS")
                                                   or doc[p].lower_ in ("the", "a")) and k - p < 8:
                            p -= 1
                        desc = doc[p + 1:k].text.strip()
                        named.descriptor = re.sub(r"^(?:the|a|an|The|A|An)\s+", "", desc) or None
                    return named
                first = inner[0].lower_
                if first in ("who", "which", "the", "a", "an", "its", "his", "her") or inner[0].tag_ in (
                        "NN", "NNP", "JJ", "VBN", "VBG", "IN", "RB") or first in ("quoting", "citing"):
                    j = k - 1
                    continue
            return None
        break
    if j < sent.start:
        return None
    t = doc[j]
    if t.lower_ in _PRONOUNS and t.tag_ == "PRP":
        return Mention(j, j + 1, _PRONOUNS[t.lower_], t.text, t.text, "PRON")
    m = dm.at(j)
    if m is not None:
        if m.kind == "place":
            return None
        if m.kind == "group":
            return None
        return m
    if t.tag_ in ("NN", "NNS", "NNP", "NNPS"):
        aff = dm.affiliated_np(j)
        if aff is not None:
            return aff
    return None
