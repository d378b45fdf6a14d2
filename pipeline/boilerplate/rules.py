"""Known-publisher rules: a small versioned data file, not code.

``pipeline/data/boilerplate_rules.json``::

    {"version": "2025.1",
     "publishers": {"The Moscow Times": [
         {"id": "appeal-header", "kind": "donation_appeal", "match": "prefix",
          "pattern": "A Message from The Moscow Times", "scope": "tail"}]}}

* ``match``: ``prefix`` (the stripped line starts with ``pattern``, case-insensitive), ``line`` (the
  stripped line equals it, case-insensitive) or ``regex`` (``re.search``, case-insensitive).
* ``scope``: ``line`` cuts the matching line; ``tail`` cuts it and every line after it; ``head`` cuts it
  and every line before it. Wire credit lines are never cut, whatever the scope.

Publisher names compare case-insensitively. Operators pass their own file with :func:`load_rules`.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from pathlib import Path
from typing import NamedTuple

from pipeline.boilerplate.cues import KINDS

__all__ = ["Rule", "RuleSet", "RulesError", "load_rules", "default_rules"]

_MATCHES = ("prefix", "line", "regex")
_SCOPES = ("line", "tail", "head")
_RULE_KEYS = {"id", "kind", "pattern", "match", "scope"}


class RulesError(ValueError):
    """A rules file that does not load or has a bad entry."""


class Rule(NamedTuple):
    id: str
    kind: str
    pattern: str
    match: str
    scope: str
    regex: re.Pattern

    def matches(self, line: str) -> bool:
        # ``regex`` is the escaped pattern for prefix and line rules, compiled case-insensitive
        if self.match == "prefix":
            return self.regex.match(line) is not None
        if self.match == "line":
            return self.regex.fullmatch(line) is not None
        return self.regex.search(line) is not None


class RuleSet(NamedTuple):
    version: str
    by_publisher: dict

    def for_publisher(self, publisher: str | None) -> tuple:
        return self.by_publisher.get((publisher or "").strip().casefold(), ())

    @classmethod
    def empty(cls) -> "RuleSet":
        return cls("none", {})


def _rule(entry: dict, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError(f"{where}: a rule must be an object, got {entry!r}")
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise RulesError(f"{where}: unrecognized rule keys {sorted(unknown)}")
    missing = {"id", "kind", "pattern"} - set(entry)
    if missing:
        raise RulesError(f"{where}: missing rule keys {sorted(missing)}")
    kind, match, scope = entry["kind"], entry.get("match", "prefix"), entry.get("scope", "line")
    if kind not in KINDS:
        raise RulesError(f"{where}: unknown kind {kind!r}; expected one of {KINDS}")
    if match not in _MATCHES:
        raise RulesError(f"{where}: unknown match {match!r}; expected one of {_MATCHES}")
    if scope not in _SCOPES:
        raise RulesError(f"{where}: unknown scope {scope!r}; expected one of {_SCOPES}")
    pattern = entry["pattern"]
    if not isinstance(pattern, str) or not pattern.strip():
        raise RulesError(f"{where}: empty pattern")
    try:
        rx = re.compile(pattern if match == "regex" else re.escape(pattern), re.IGNORECASE)
    except re.error as exc:
        raise RulesError(f"{where}: bad regex {pattern!r}: {exc}") from exc
    return Rule(str(entry["id"]), kind, pattern, match, scope, rx)


def parse_rules(data: dict, source: str = "<rules>") -> RuleSet:
    if not isinstance(data, dict) or "version" not in data or "publishers" not in data:
        raise RulesError(f"{source}: expected an object with 'version' and 'publishers'")
    unknown = set(data) - {"version", "publishers", "doc"}
    if unknown:
        raise RulesError(f"{source}: unrecognized top-level keys {sorted(unknown)}")
    by_pub: dict[str, tuple] = {}
    for pub, entries in data["publishers"].items():
        rules = tuple(_rule(e, f"{source}: {pub}[{i}]") for i, e in enumerate(entries))
        ids = [r.id for r in rules]
        if len(set(ids)) != len(ids):
            raise RulesError(f"{source}: {pub}: duplicate rule ids {ids}")
        by_pub[pub.strip().casefold()] = rules
    return RuleSet(str(data["version"]), by_pub)


def load_rules(path: str | Path | None = None) -> RuleSet:
    """The rules in ``path``, or the packaged default rules when ``path`` is None."""
    if path is None:
        return default_rules()
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise RulesError(f"cannot load boilerplate rules from {str(path)!r}: {exc}") from exc
    return parse_rules(data, str(path))


@functools.lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The packaged ``pipeline/data/boilerplate_rules.json``."""
    text = importlib.resources.files("pipeline").joinpath("data/boilerplate_rules.json").read_text("utf-8")
    return parse_rules(json.loads(text), "pipeline/data/boilerplate_rules.json")
