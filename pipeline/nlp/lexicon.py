"""Gazetteers and lexicons, loaded from the JSON files in ``pipeline/data`` with importlib.resources.

* ``news_agencies.json`` -> :func:`agencies`: canonical agency names, aliases, home countries, descriptors.
* ``countries.json`` -> :func:`countries`: names, demonyms, capitals/seats of government, leaders by ISO-3.
* ``cameo.json`` -> :func:`cameo`: CAMEO root labels and trigger forms (inflections generated here).

Every loader is cached: the files are read once per process.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["DATA_FILES", "load_data", "Agency", "AgencyLexicon", "CountryLexicon", "Trigger", "CameoLexicon",
           "agencies", "countries", "cameo"]

DATA_FILES = ("news_agencies.json", "countries.json", "cameo.json")


def load_data(name: str) -> Any:
    """Parse one JSON data file of the ``pipeline.data`` package."""
    return json.loads(resources.files("pipeline.data").joinpath(name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Agency:
    name: str
    country: str | None
    aliases: tuple[str, ...]
    descriptors: tuple[str, ...]


class AgencyLexicon:
    """Finds agency names in text. Aliases of up to 3 characters (AP, RT, AA...) match case-sensitively."""

    def __init__(self, data: dict):
        self.by_alias: dict[str, Agency] = {}
        self._ci: dict[str, Agency] = {}
        for a in data["agencies"]:
            ag = Agency(a["name"], a.get("country"), tuple(a["aliases"]), tuple(a.get("descriptors", ())))
            for alias in ag.aliases + (ag.name,):
                self.by_alias[alias] = ag
                if len(alias) > 4:
                    self._ci[alias.lower()] = ag
        alts = sorted(self.by_alias, key=len, reverse=True)
        self.pattern = re.compile(r"(?<![\w.-])(?:The |the )?(" + "|".join(re.escape(a) for a in alts)
                                  + r")(?![\w]|-\w)")
        self.pattern_ci = re.compile(r"(?<![\w.-])(" + "|".join(re.escape(a) for a in sorted(self._ci, key=len,
                                                                                              reverse=True))
                                     + r")(?!\w)", re.IGNORECASE)

    def lookup(self, text: str) -> Agency | None:
        text = re.sub(r"^(?:the|The)\s+", "", text.strip())
        hit = self.by_alias.get(text) or self._ci.get(text.lower())
        if hit:
            return hit
        text = re.sub(r"\s+(?:news agency|News Agency|agency|Agency|news service)$", "", text)
        return self.by_alias.get(text) or self._ci.get(text.lower())

    def finditer(self, text: str):
        """(start, end, Agency) of each mention (start/end of the alias itself, not of a leading 'the')."""
        seen = set()
        for m in self.pattern.finditer(text):
            seen.add(m.start(1))
            yield m.start(1), m.end(1), self.by_alias[m.group(1)]
        for m in self.pattern_ci.finditer(text):
            if m.start(1) not in seen and text[m.start(1)].isupper():
                yield m.start(1), m.end(1), self._ci[m.group(1).lower()]


@dataclass
class CountryLexicon:
    """Surface form -> (ISO-3, kind) with kind in name, demonym, capital, leader."""

    forms: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict) -> "CountryLexicon":
        lex = cls()
        for iso, c in data["countries"].items():
            for kind, key in (("leader", "leaders"), ("capital", "capitals"), ("demonym", "demonyms"),
                              ("name", "names")):
                for form in c.get(key, ()):
                    lex.forms[form] = (iso, kind)
                    bare = re.sub(r"^the ", "", form)
                    lex.forms.setdefault(bare, (iso, kind))
                    lex.forms.setdefault(bare.upper() if len(bare) > 3 and kind == "name" else bare, (iso, kind))
        return lex

    def lookup(self, text: str) -> tuple[str, str] | None:
        t = text.strip()
        t = re.sub(r"[\u2019']s$", "", t)
        t = re.sub(r"^(?:the|The)\s+", "", t)
        return self.forms.get(t) or self.forms.get("the " + t)

    def country_in(self, words: list[str]) -> tuple[str, str] | None:
        """The first country a sequence of words names (longest match first), e.g. ['Russian', 'Foreign', ...]."""
        n = len(words)
        for i in range(n):
            for j in range(min(n, i + 4), i, -1):
                hit = self.lookup(" ".join(words[i:j]))
                if hit:
                    return hit
        return None


@dataclass(frozen=True)
class Trigger:
    code: str
    label: str
    words: tuple[str, ...]  # lower-case surface tokens
    is_noun: bool
    needs_object: tuple[str, ...] = ()


def _inflect(verb: str, irregular: dict[str, list[str]]) -> set[str]:
    forms = {verb, verb + "s", verb + "ed", verb + "ing"}
    if verb.endswith("e"):
        forms |= {verb + "d", verb[:-1] + "ing"}
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        forms |= {verb[:-1] + "ies", verb[:-1] + "ied"}
    if re.search(r"[^aeiou][aeiou][bdgmnprt]$", verb) and len(verb) <= 5:
        forms |= {verb + verb[-1] + "ed", verb + verb[-1] + "ing"}
    if verb.endswith(("sh", "ch", "s", "x")):
        forms.add(verb + "es")
    forms |= set(irregular.get(verb, ()))
    return forms


class CameoLexicon:
    """Trigger phrases (tuples of lower-case tokens) -> :class:`Trigger`; longest phrase wins."""

    def __init__(self, data: dict):
        self.roots: dict[str, str] = dict(data["roots"])
        self.labels: dict[str, str] = {}
        self.phrases: dict[tuple[str, ...], Trigger] = {}  # verb forms
        self.nouns: dict[tuple[str, ...], Trigger] = {}
        irregular = data.get("irregular", {})
        for e in data["entries"]:
            code, label = e["code"], e["label"]
            self.labels[code] = label
            need = tuple(e.get("needs_object", ()))
            for verb in e.get("verbs", ()):
                first, *rest = verb.split()
                for f in _inflect(first, irregular):
                    words = (f, *rest)
                    self.phrases.setdefault(words, Trigger(code, label, words, False, need))
                    if rest and not rest[-1].endswith("s") and rest[-1] not in ("to", "in", "on", "for", "with",
                                                                                  "upon", "down", "out", "up"):
                        plural = (f, *rest[:-1], rest[-1] + "s")
                        self.phrases.setdefault(plural, Trigger(code, label, plural, False, need))
            for noun in e.get("nouns", ()):
                words = tuple(noun.split())
                self.nouns.setdefault(words, Trigger(code, label, words, True, need))
        self.max_len = max(len(k) for k in list(self.phrases) + list(self.nouns))
        #: first words of all phrases: a cheap pre-filter per token
        self.first_words = frozenset(k[0] for k in list(self.phrases) + list(self.nouns))

    def label(self, code: str) -> str:
        return self.labels.get(code) or self.roots.get(code[:2], "")


@functools.lru_cache(maxsize=None)
def agencies() -> AgencyLexicon:
    return AgencyLexicon(load_data("news_agencies.json"))


@functools.lru_cache(maxsize=None)
def countries() -> CountryLexicon:
    return CountryLexicon.from_data(load_data("countries.json"))


@functools.lru_cache(maxsize=None)
def cameo() -> CameoLexicon:
    return CameoLexicon(load_data("cameo.json"))
