"""Strip furniture from an article body: the pure core of the boilerplate stage.

Layers, in order of authority (every one skips wire credit lines, which belong to the story):

1. ``rules:<version>/<id>`` -- known-publisher rules from a versioned data file (:mod:`.rules`).
2. ``cue:<kind>`` -- the publisher-agnostic cue classifier (:mod:`.cues`), then position: a weak cue
   ("Dear readers,", "we need your help", a bare "Telegram" link) is cut only inside a run of strong ones,
   and short non-sentence lines (menus, other headlines, timestamps) only in runs anchored on furniture.
3. ``memory:<publisher>`` -- paragraphs this publisher repeated in enough distinct recent articles
   (:class:`.memory.PublisherMemory`); the article's paragraphs are then observed into the memory.

Contract: ``result.body == pipeline.text.cut_spans(raw, [(s.start, s.end) for s in result.removed])``.
Each span is one whole line plus its trailing newline; ``raw[s.start:s.end] == s.text``. If every line
would go, nothing is cut and ``"all_boilerplate"`` is flagged.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from pipeline.boilerplate import cues as _cues
from pipeline.boilerplate.cues import NAV, NONE, PROSE, STRONG, WEAK
from pipeline.boilerplate.memory import PublisherMemory, article_key_hash, fingerprint
from pipeline.boilerplate.rules import RuleSet, default_rules

__all__ = ["RemovedSpan", "StripResult", "strip", "ALL_BOILERPLATE"]

ALL_BOILERPLATE = "all_boilerplate"

# A run of short non-sentence lines is a menu/link list when it is this long, or this long and touches
# an explicit cue.
_NAV_RUN_ALONE = 8
_NAV_RUN_ANCHORED = 2
# Memory may not take more than this share of an article's prose: beyond it the article is more likely
# a re-publication of a story already seen than a page of furniture.
_MEMORY_PROSE_SHARE = 0.5
_WRAP_NEXT = re.compile(r"^\s*[a-z(,;]")


class RemovedSpan(NamedTuple):
    kind: str
    text: str
    start: int
    end: int
    rule: str

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "start": self.start, "end": self.end, "rule": self.rule}


class StripResult(NamedTuple):
    body: str
    removed: list
    flags: list


class _Line(NamedTuple):
    start: int  # whole line, leading whitespace included
    end: int  # after the trailing newline when there is one
    text: str  # stripped


def _lines(body: str) -> list[_Line]:
    out = []
    pos = 0
    n = len(body)
    while pos < n:
        nl = body.find("\n", pos)
        end = n if nl < 0 else nl + 1
        text = body[pos:end].strip()
        if text:
            out.append(_Line(pos, end, text))
        pos = end
    return out


def _hard_wrapped(lines: Sequence[_Line]) -> bool:
    """Fixed-width wire copy (Reuters-21578, ANPA): sentences run across lines."""
    if len(lines) < 4:
        return False
    cont = sum(1 for a, b in zip(lines, lines[1:]) if not _cues._SENT_END.search(a.text)
               and _WRAP_NEXT.match(b.text))
    return cont >= 2 and cont >= 0.15 * (len(lines) - 1)


def strip(raw_body: str, publisher: str | None = None, *, memory: PublisherMemory | None = None,
          rules: RuleSet | None = None, article_key: str | None = None, event_time_ms: int | None = None,
          observe: bool = True) -> StripResult:
    """Cut boilerplate paragraphs from ``raw_body``.

    Args:
        raw_body: plain text, paragraphs on lines.
        publisher: outlet name; selects rules and names the memory layer.
        memory: this publisher's :class:`PublisherMemory`, consulted and then (``observe``) updated.
        rules: known-publisher rules; None for the packaged defaults, ``RuleSet.empty()`` for none.
        article_key: what makes two articles distinct for the memory (e.g. normalized title).
        event_time_ms: the article's event time (published, else ingested), for the memory horizon.
        observe: add this article's paragraphs to ``memory`` after judging it.

    Returns:
        StripResult(body, removed spans in body order, flags).
    """
    if rules is None:
        rules = default_rules()
    lines = _lines(raw_body)
    n = len(lines)
    verdict: list = [None] * n  # (kind, rule) for lines to cut
    protected = [_cues.credit_line(ln.text) for ln in lines]
    wrapped = _hard_wrapped(lines)
    cue = [_cues.Cue(NONE, None) if protected[i] else _cues.classify(ln.text) for i, ln in enumerate(lines)]
    if wrapped:  # no menus in fixed-width wire copy; keep explicit cues only
        cue = [c if c.strength == STRONG else _cues.Cue(NONE, None) for c in cue]

    # 1. known-publisher rules
    pub_rules = rules.for_publisher(publisher)
    for rule in pub_rules:
        for i, ln in enumerate(lines):
            if protected[i] or not rule.matches(ln.text):
                continue
            span = range(i, n) if rule.scope == "tail" else range(0, i + 1) if rule.scope == "head" else (i,)
            for j in span:
                if not protected[j] and verdict[j] is None:
                    kind = rule.kind if j == i or cue[j].kind is None else cue[j].kind
                    verdict[j] = (kind, f"rules:{rules.version}/{rule.id}")

    # 2. cues: strong lines, then weak lines inside strong runs, then anchored menu runs
    for i in range(n):
        if verdict[i] is None and cue[i].strength == STRONG:
            verdict[i] = (cue[i].kind, f"cue:{cue[i].kind}")

    # Menus and learned furniture are only looked for on pages that show furniture explicitly: a wire
    # story or a dividend table with no cue at all keeps its short lines.
    evidence = any(v is not None for v in verdict)

    # 3. memory
    mem_fps: list[int] = []
    key_hash = article_key_hash(article_key or raw_body[:200])
    if memory is not None:
        mem_fps = [fingerprint(ln.text) for ln in lines]
        mem_hits = [evidence and not wrapped and not protected[i] and memory.is_boilerplate(fp, key_hash)
                    for i, fp in enumerate(mem_fps)]
        textual = [cue[i].strength != STRONG and _cues.word_count(ln.text) >= 7 for i, ln in enumerate(lines)]
        text_total = sum(len(ln.text) for i, ln in enumerate(lines) if textual[i])
        text_hit = sum(len(ln.text) for i, ln in enumerate(lines) if textual[i] and mem_hits[i])
        # A re-published story repeats its sentences; furniture does not make up most of the prose, and
        # sits in the closing block or next to other furniture.
        allow_text = text_hit <= _MEMORY_PROSE_SHARE * text_total
        tail = n
        while tail > 0 and (mem_hits[tail - 1] or verdict[tail - 1] is not None or protected[tail - 1]):
            tail -= 1
        label = f"memory:{publisher or ''}"
        for i in range(n):
            if not mem_hits[i] or verdict[i] is not None:
                continue
            if textual[i] and not (allow_text and (i >= tail or _next_to_cut(i, verdict))):
                continue
            kind = cue[i].kind if cue[i].kind and cue[i].strength != PROSE else "other_boilerplate"
            verdict[i] = (kind, label)

    if evidence:
        _expand_runs(lines, cue, verdict, protected)

    removed = [RemovedSpan(v[0], raw_body[ln.start:ln.end], ln.start, ln.end, v[1])
               for ln, v in zip(lines, verdict) if v is not None]
    flags: list[str] = []
    if removed and len(removed) == n:
        removed, flags = [], [ALL_BOILERPLATE]
    if memory is not None and observe:
        memory.observe([fp for i, fp in enumerate(mem_fps) if not protected[i]], key_hash, event_time_ms)
    if not removed:
        return StripResult(raw_body, [], flags)
    parts = []
    pos = 0
    for s in removed:
        parts.append(raw_body[pos:s.start])
        pos = s.end
    parts.append(raw_body[pos:])
    return StripResult("".join(parts), removed, flags)


def _expand_runs(lines, cue, verdict, protected) -> None:
    n = len(lines)
    # Weak cues join an adjacent cut line (repeat until stable: a run grows through weak lines).
    changed = True
    while changed:
        changed = False
        for i in range(n):
            if verdict[i] is not None or cue[i].strength != WEAK:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < n and verdict[j] is not None and _joins(cue[i].kind, verdict[j][0]):
                    verdict[i] = (cue[i].kind if cue[i].kind != "donation_appeal" else verdict[j][0],
                                  f"cue:{cue[i].kind}")
                    changed = True
                    break
    # Weak and menu lines in runs: a run is a maximal stretch of non-prose, non-protected lines.
    i = 0
    while i < n:
        if not _runnable(i, cue, verdict, protected):
            i += 1
            continue
        j = i
        while j < n and _runnable(j, cue, verdict, protected):
            j += 1
        run = range(i, j)
        loose = [k for k in run if verdict[k] is None]
        anchored = any(verdict[k] is not None for k in run) or _edge_anchor(i, j, verdict)
        if len(loose) and ((anchored and j - i >= _NAV_RUN_ANCHORED + 1) or len(loose) >= _NAV_RUN_ALONE):
            for k in loose:
                kind = cue[k].kind or "other_boilerplate"
                if kind == "donation_appeal":
                    continue  # prose-like weak appeal lines only join via adjacency above
                verdict[k] = (kind, f"cue:{kind}")
        i = j


def _joins(weak_kind: str | None, cut_kind: str) -> bool:
    if weak_kind == "donation_appeal":
        return cut_kind == "donation_appeal"
    return True


def _runnable(i, cue, verdict, protected) -> bool:
    if protected[i]:
        return False
    if verdict[i] is not None:
        return True
    return cue[i].strength in (NAV, WEAK) and cue[i].kind != "donation_appeal"


def _edge_anchor(i, j, verdict) -> bool:
    return (i > 0 and verdict[i - 1] is not None) or (j < len(verdict) and verdict[j] is not None)


def _next_to_cut(i, verdict) -> bool:
    return (i > 0 and verdict[i - 1] is not None) or (i + 1 < len(verdict) and verdict[i + 1] is not None)
