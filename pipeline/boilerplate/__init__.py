"""Boilerplate removal, pure Python (no Beam): cue classifier (:mod:`.cues`), page layout -- the story core
and the frame of menus and link lists around it (:mod:`.layout`) --, per-publisher memory (:mod:`.memory`),
known-publisher rules (:mod:`.rules`), HTML to text (:mod:`.html`). The Beam shell is
:mod:`pipeline.stages.boilerplate`.

Entry point: :func:`strip` -- raw body in, clean body plus the removed spans out, with
``clean == pipeline.text.cut_spans(raw, [(s.start, s.end) for s in removed])``.
"""

from pipeline.boilerplate.memory import PublisherMemory
from pipeline.boilerplate.rules import RuleSet, RulesError, default_rules, load_rules
from pipeline.boilerplate.strip import ALL_BOILERPLATE, RemovedSpan, StripResult, strip

__all__ = [
    "ALL_BOILERPLATE",
    "PublisherMemory",
    "RemovedSpan",
    "RuleSet",
    "RulesError",
    "StripResult",
    "default_rules",
    "load_rules",
    "strip",
]
