"""Who is mentioned where: the mention layer both extractors share.

A :class:`Mention` is a token span that can act as a source or an actor: a news agency (gazetteer), a
named entity (PERSON, ORG, GPE, NORP, FAC), a seat of government the model missed ("the Kremlin"), or an
affiliated common-noun phrase ("A Foreign Ministry official", "Ukraine's central bank"). Each carries its
kind, a canonical name, a descriptor and a country when those can be told.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.nlp import lexicon

__all__ = ["Mention", "DocMentions", "PREPOSITIONS", "GOV_WORDS", "OFFICIAL_NOUNS"]

PREPOSITIONS = {"with", "including", "to", "from", "of", "on", "in", "at", "by", "for", "into", "over",
                "between", "among", "against", "about", "like", "than", "toward", "towards", "across",
                "near", "after", "before", "under", "via", "through", "around", "as", "upon", "within"}
#: Heads that make an ORG an official body rather than an organization.
GOV_WORDS = {"ministry", "government", "department", "council", "committee", "parliament", "embassy", "office",
             "administration", "authority", "authorities", "commission", "court", "army", "military", "police",
             "forces", "navy", "staff", "kremlin", "pentagon", "house", "street", "cabinet", "senate", "congress",
             "duma", "presidency", "prosecutor", "prosecutors", "service", "guard", "command", "bank", "nations",
             "union", "nato", "un", "eu", "assembly", "agency", "directorate", "bureau", "mission", "g7", "g20",
             "treasury", "secretariat", "fund", "imf", "headquarters", "inspectorate", "who", "opcw", "iaea",
             "kyiv", "moscow", "washington", "coast", "defense", "defence", "rada", "legislature", "mayor", "force"}
#: Common nouns for an affiliated unnamed official ("a Foreign Ministry official").
OFFICIAL_NOUNS = {"official", "officials", "spokesman", "spokeswoman", "spokesperson", "spokespeople",
                  "source", "sources", "diplomat", "diplomats", "envoy", "ambassador", "minister", "statement",
                  "representative", "representatives", "officer", "officers", "commander", "governor"}
_ORG_INTL = {"united nations", "un", "u.n.", "nato", "european union", "eu", "imf", "world bank", "g7", "g20",
             "international monetary fund", "opcw", "osce", "red cross", "iaea", "who", "wto"}
_GOV_ENDINGS = ("ministry", "government", "office", "department", "military", "army", "forces", "police",
                "authorities", "council", "bank", "embassy", "committee", "service", "staff", "command",
                "administration", "parliament", "navy", "guard", "prosecutor", "court")
_DET = {"the", "a", "an", "its", "their", "his", "her"}


@dataclass
class Mention:
    start: int  # token indices in the doc
    end: int
    kind: str  # news_agency | person | organization | official_body | country | group
    name: str  # canonical name
    text: str
    label: str  # spaCy entity label or AGENCY / NP
    country: str | None = None
    descriptor: str | None = None
    country_kind: str | None = None  # name | demonym | capital | leader

    @property
    def actor_code(self) -> str | None:
        if not self.country:
            return None
        if self.kind == "news_agency":
            return self.country + "MED"
        low = self.text.lower()
        if any(w in low for w in ("forces", "army", "military", "troops", "navy", "soldiers")):
            return self.country + "MIL"
        if self.country_kind == "capital" or self.kind in ("official_body",) or self.country_kind == "leader" \
                or (self.descriptor and re.search(r"(?i)president|minister|spokes|leader|chancellor|king",
                                                  self.descriptor)):
            return self.country + "GOV"
        return self.country


class DocMentions:
    """All mentions of a Doc, indexed by token."""

    def __init__(self, doc: Any):
        self.doc = doc
        self.ag = lexicon.agencies()
        self.cl = lexicon.countries()
        self.mentions: list[Mention] = []
        self.by_token: dict[int, Mention] = {}
        self.person_country: dict[str, str] = {}
        self.person_full: dict[str, str] = {}
        self._build()

    # -- construction -------------------------------------------------------------------------------
    def _add(self, m: Mention) -> None:
        if any(i in self.by_token for i in range(m.start, m.end)):
            return
        self.mentions.append(m)
        for i in range(m.start, m.end):
            self.by_token[i] = m

    def _build(self) -> None:
        doc = self.doc
        text = doc.text
        for a, b, agency in self.ag.finditer(text):
            span = doc.char_span(a, b, alignment_mode="expand")
            if span is None:
                continue
            end = span.end
            # "the TASS news agency"
            if end + 1 < len(doc) and doc[end].lower_ == "news" and doc[end + 1].lower_ in ("agency", "service"):
                end += 2
            elif end < len(doc) and doc[end].lower_ == "agency":
                end += 1
            self._add(Mention(span.start, end, "news_agency", agency.name, span.text, "AGENCY", agency.country,
                              self._agency_descriptor(span.start)))
        for ent in doc.ents:
            if ent.label_ not in ("PERSON", "ORG", "GPE", "NORP", "FAC", "LOC"):
                continue
            start, end = ent.start, ent.end
            while start < end and doc[start].lower_ in _DET:
                start += 1
            while end > start and doc[end - 1].tag_ == "POS":
                end -= 1
            if start >= end:
                continue
            m = self._entity_mention(start, end, ent.label_)
            if m is not None:
                self._add(m)
        # seats of government and capitals the model tagged as something else or missed
        for tok in doc:
            if tok.i in self.by_token or not tok.text[:1].isupper():
                continue
            for n in (3, 2, 1):
                if tok.i + n > len(doc):
                    continue
                words = doc[tok.i:tok.i + n].text
                hit = self.cl.lookup(words)
                if hit and hit[1] in ("capital", "name", "demonym") and (n > 1 or len(words) > 2):
                    if any(i in self.by_token for i in range(tok.i, tok.i + n)):
                        continue
                    label = "NORP" if hit[1] == "demonym" else "GPE"
                    self._add(self._entity_mention(tok.i, tok.i + n, label))
                    break
        self.mentions.sort(key=lambda m: m.start)
        for m in self.mentions:
            if m.kind == "person":
                last = m.name.split()[-1]
                if len(m.name.split()) > 1:
                    self.person_full.setdefault(last, m.name)
                if m.country:
                    self.person_country.setdefault(last, m.country)
        for m in self.mentions:
            if m.kind == "person":
                last = m.name.split()[-1]
                m.name = self.person_full.get(last, m.name)
                if m.country is None and last in self.person_country:
                    m.country = self.person_country[last]
                    m.country_kind = "leader"

    def _agency_descriptor(self, start: int) -> str | None:
        doc = self.doc
        words = []
        j = start - 1
        while j >= 0 and j >= start - 4:
            t = doc[j]
            if t.lower_ in ("state-run", "state-owned", "independent", "official", "semi-official", "private",
                            "state-controlled", "state-funded", "state", "government-run", "pro-kremlin",
                            "run", "owned", "-", "news", "russian", "chinese", "ukrainian", "iranian"):
                words.insert(0, t.text_with_ws)
                j -= 1
                continue
            break
        desc = "".join(words).strip()
        desc = re.sub(r"\s*-\s*", "-", desc)
        for d in ("state-run", "state-owned", "state-controlled", "state-funded", "semi-official", "independent",
                  "official", "private", "government-run"):
            if d in desc.lower():
                return d
        return None

    def _np_prefix(self, start: int, limit: int = 5) -> int:
        """Start of the title words before a name ("Kremlin spokesperson Dmitry Peskov")."""
        doc = self.doc
        j = start
        while j > 0 and start - j < limit:
            t = doc[j - 1]
            if t.is_sent_start and j - 1 != start - 1 and False:
                break
            if (t.tag_ in ("NNP", "NNPS", "NN", "JJ", "POS", "HYPH") or t.ent_type_ in ("NORP", "GPE", "ORG")) \
                    and t.lower_ not in _DET and not t.is_punct or t.tag_ == "POS":
                j -= 1
                if doc[j].is_sent_start:
                    break
                continue
            break
        return j

    def _entity_mention(self, start: int, end: int, label: str) -> Mention | None:
        doc = self.doc
        span = doc[start:end]
        text = span.text
        hit = self.cl.lookup(text)
        if label == "PERSON" and hit and hit[1] in ("capital", "name"):
            # a capital or country the model took for a person ("Rabat will host ...")
            return Mention(start, end, "country", text, text, "GPE", hit[0], None, hit[1])
        if label == "PERSON":
            if self.ag.lookup(text):
                ag = self.ag.lookup(text)
                return Mention(start, end, "news_agency", ag.name, text, "AGENCY", ag.country)
            p = self._np_prefix(start)
            desc = doc[p:start].text.strip() or None
            country, ck = (hit[0], "leader") if hit and hit[1] == "leader" else (None, None)
            if country is None and desc:
                c = self.cl.country_in(re.findall(r"[\w.-]+(?:[\u2019']s)?", desc))
                if c:
                    country, ck = c[0], c[1]
            if desc is None and end + 1 < len(doc) and doc[end].text == ",":
                # appositive title: "Dmitry Peskov, the Kremlin spokesman,"
                k = end + 1
                while k < len(doc) and k < end + 8 and doc[k].text not in (",", ".", ";") and not doc[k].is_quote:
                    k += 1
                if k < len(doc) and doc[k].text == "," and k > end + 1:
                    app = doc[end + 1:k].text
                    if re.search(r"(?i)spokes|minister|president|chief|head|director|official|secretary|adviser|"
                                 r"aide|governor|commander|ambassador|envoy|leader|chairman|mayor", app):
                        desc = re.sub(r"^(?:the|a|an)\s+", "", app)
                        if country is None:
                            c = self.cl.country_in(re.findall(r"[\w.-]+", app))
                            if c:
                                country, ck = c[0], c[1]
            return Mention(start, end, "person", text, text, label, country, desc, ck)
        if label in ("GPE", "LOC"):
            if hit:
                return Mention(start, end, "country", text, text, label, hit[0], None, hit[1])
            return Mention(start, end, "place", text, text, label, None)
        if label == "NORP":
            c = hit or self.cl.country_in([t.text for t in span])
            return Mention(start, end, "group", text, text, label, c[0] if c else None, None, "demonym")
        # ORG / FAC
        ag = self.ag.lookup(text)
        if ag:
            return Mention(start, end, "news_agency", ag.name, text, "AGENCY", ag.country)
        if hit and hit[1] in ("capital", "name"):
            return Mention(start, end, "country", text, text, label, hit[0], None, hit[1])
        words = [t.text for t in span]
        p = self._np_prefix(start, 3)
        prefix = [t.text for t in doc[p:start]]
        c = self.cl.country_in(prefix + words)
        low = text.lower()
        lw = {w.lower() for w in words}
        kind = "official_body" if (lw & GOV_WORDS or low in _ORG_INTL or low.endswith(_GOV_ENDINGS)) \
            else "organization"
        if label == "FAC" and kind == "organization":
            return None
        return Mention(start, end, kind, text, text, label, c[0] if c else None, None, c[1] if c else None)

    # -- queries --------------------------------------------------------------------------------------
    def at(self, i: int) -> Mention | None:
        return self.by_token.get(i)

    def preceded_by_preposition(self, m: Mention) -> bool:
        """True when the noun phrase of ``m`` is the object of a preposition ("with France", "to the UN")."""
        doc = self.doc
        j = m.start - 1
        while j >= 0 and (doc[j].tag_ in ("DT", "JJ", "JJS", "CD", "PRP$", "NNP", "NNPS", "POS", "HYPH")
                          or doc[j].lower_ in _DET) and doc[j].lower_ not in PREPOSITIONS \
                and not doc[j].is_punct:
            j -= 1
        return j >= 0 and (doc[j].lower_ in PREPOSITIONS or doc[j].tag_ == "TO")

    def affiliated_np(self, head: int) -> Mention | None:
        """An unnamed official or body ending at token ``head``: "a Foreign Ministry official",
        "Russia's defence ministry", "Ukrainian officials". None for bare "officials", "sources"."""
        doc = self.doc
        t = doc[head]
        low = t.lower_
        if low not in OFFICIAL_NOUNS and low not in GOV_WORDS:
            return None
        j = head
        while j > 0:
            p = doc[j - 1]
            if p.is_sent_start and p.lower_ in _DET:
                break
            if p.tag_ in ("NNP", "NNPS", "NN", "JJ", "POS", "HYPH") and not p.is_punct or p.tag_ == "POS":
                j -= 1
                if doc[j].is_sent_start:
                    break
                continue
            break
        words = [x.text for x in doc[j:head + 1]]
        if len(words) < 2:
            return None
        mods = doc[j:head]
        named = [x for x in mods if x.text[:1].isupper() or x.ent_type_ in ("ORG", "GPE", "NORP")]
        if not named and not any(x.lower_ in GOV_WORDS for x in mods):
            return None
        if low in ("source", "sources", "statement") and not named:
            return None
        c = self.cl.country_in(words)
        text = doc[j:head + 1].text
        if any(x.lower_ in ("analyst", "analysts", "expert", "experts") for x in doc[j:head + 1]):
            return None
        return Mention(j, head + 1, "official_body", text, text, "NP", c[0] if c else None, None,
                       "capital" if c else None)
