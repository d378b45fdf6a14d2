"""Strip furniture from an article body: the pure core of the boilerplate stage.

Layers, in order of authority (every one skips wire credit lines, which belong to the story):

1. ``rules:<version>/<id>`` -- known-publisher rules from a versioned data file (:mod:`.rules`).
2. ``cue:<kind>`` -- the publisher-agnostic cue classifier (:mod:`.cues`): lines that are furniture on
   their own ("Advertisement", "Sign up for our newsletter", an appeal).
3. ``memory:<publisher>`` -- paragraphs this publisher repeated in enough distinct recent articles
   (:class:`.memory.PublisherMemory`); the article's paragraphs are then observed into the memory.
4. ``cue:<kind>`` again, by position (:mod:`.layout`): the story core is found, and the menus, link
   lists and footers framing it are cut; inside the core a weak appeal line goes only next to strong
   appeal lines, share buttons next to a share prompt, and link lines after a "Related:" header.

Layers 3 and 4 only act on pages that show explicit furniture (a rule or a strong cue), and never on
hard-wrapped wire copy: a wire story or a dividend table with no cue keeps its short lines. In wrapped
copy a line is not a paragraph, so cues are read on the wrapped sentences and the memory neither learns
nor matches its lines. The article's ``title``, when given, marks the headline: the frame keeps the body
line restating it and the memory never cuts it.

Contract: ``result.body == pipeline.text.cut_spans(raw, [(s.start, s.end) for s in result.removed])``.
Each span is one whole line plus its trailing newline; ``raw[s.start:s.end] == s.text``. If every line
would go, nothing is cut and ``"all_boilerplate"`` is flagged.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Sequence

from pipeline.boilerplate import cues as _cues
from pipeline.boilerplate import layout as _layout
from pipeline.boilerplate.cues import NAV, NONE, PROSE, SOFT, STRONG, WEAK
from pipeline.boilerplate.memory import PublisherMemory, article_key_hash, fingerprint
from pipeline.boilerplate.rules import RuleSet, default_rules

__all__ = ["RemovedSpan", "StripResult", "strip", "ALL_BOILERPLATE"]

ALL_BOILERPLATE = "all_boilerplate"

# Memory may not take more than this share of an article's prose: beyond it the article is more likely
# a re-publication of a story already seen than a page of furniture.
_MEMORY_PROSE_SHARE = 0.5
# Inside the story core, at most this many short lines after a link-list header ("Related:") are links.
_LINK_LIST_MAX = 6
_WRAP_NEXT = re.compile(r"^\s*[a-z(,;]")
_WRAP_MIN, _WRAP_WIDTH = 40, 100  # a wrapped line is at least / at most this wide
_WRAP_UNIT_LINES = 12  # a wrapped sentence spans at most this many lines
_TITLE_MIN = 8  # shorter titles ("News") say nothing about the body
_NONE_CUE = _cues.Cue(NONE, None)


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


def _lines(body: str) -> list:
    """``(start, end, text)`` of each non-empty line: ``start`` includes leading whitespace, ``end`` is
    after the trailing newline when there is one, ``text`` is stripped."""
    out = []
    pos = 0
    n = len(body)
    for seg in body.split("\n"):
        end = pos + len(seg) + 1
        text = seg.strip()
        if text:
            out.append((pos, end if end <= n else n, text))
        pos = end
    return out


def _hard_wrapped(texts: Sequence[str], ends: Sequence[bool]) -> bool:
    """Fixed-width wire copy (Reuters-21578, ANPA): sentences run across lines of similar width.

    Scraped pages also break sentences, around inline links ("... prices" / "fallen" / "sharply"),
    but their fragments are short and their paragraphs long.
    """
    n = len(texts)
    if n < 4:
        return False
    if sum(1 for t in texts if len(t) > _WRAP_WIDTH) > 0.2 * n:
        return False
    cont = sum(1 for i in range(n - 1)
               if not ends[i] and len(texts[i]) >= _WRAP_MIN and _WRAP_NEXT.match(texts[i + 1]))
    return cont >= 2 and cont >= 0.15 * (n - 1)


def _wrapped_units(texts: Sequence[str], ends: Sequence[bool], protected: Sequence[bool]):
    """``(first, last)`` line ranges of the sentences of hard-wrapped copy (credit lines alone)."""
    n = len(texts)
    i = 0
    while i < n:
        j = i
        if not protected[i] and texts[i][0] != "^":
            while (j + 1 < n and j - i < _WRAP_UNIT_LINES and not protected[j + 1] and texts[j + 1][0] != "^"
                   and not ends[j]
                   and (len(texts[j]) >= _WRAP_MIN or _WRAP_NEXT.match(texts[j + 1]))):
                j += 1
            yield i, j
        i = j + 1


def _title_key(title: str | None) -> str | None:
    tk = _cues.line_key(title) if title else ""
    return tk if len(tk) >= _TITLE_MIN else None


def _restates(text: str, tk: str) -> bool:
    """The line is the article's title (or the title with the site name appended, or cut short)."""
    lk = _cues.line_key(text)
    return lk == tk or (len(lk) >= 20 and (tk.startswith(lk) or lk.startswith(tk)))


def _title_block(blks: Sequence, tk: str | None, before: int) -> int | None:
    """The last block before ``before`` that restates the article's title (the headline), if any."""
    if tk is None:
        return None
    for j in range(before - 1, max(-1, before - 1 - _layout.TITLE_REACH), -1):
        if _restates(blks[j].text, tk):
            return j
    return None


def strip(raw_body: str, publisher: str | None = None, *, memory: PublisherMemory | None = None,
          rules: RuleSet | None = None, article_key: str | None = None, event_time_ms: int | None = None,
          observe: bool = True, title: str | None = None) -> StripResult:
    """Cut boilerplate paragraphs from ``raw_body``.

    Args:
        raw_body: plain text, paragraphs on lines.
        publisher: outlet name; selects rules and names the memory layer.
        memory: this publisher's :class:`PublisherMemory`, consulted and then (``observe``) updated.
        rules: known-publisher rules; None for the packaged defaults, ``RuleSet.empty()`` for none.
        article_key: what makes two articles distinct for the memory (e.g. normalized title).
        event_time_ms: the article's event time (published, else ingested), for the memory horizon.
        observe: add this article's paragraphs to ``memory`` after judging it.
        title: the article's headline, if known: the body line restating it is kept as the story's head.

    Returns:
        StripResult(body, removed spans in body order, flags).
    """
    if rules is None:
        rules = default_rules()
    lines = _lines(raw_body)
    n = len(lines)
    texts = [ln[2] for ln in lines]
    verdict: list = [None] * n  # (kind, rule) for lines to cut
    protected = [_cues.credit_line(t) for t in texts]
    ends = [_cues.sentence_end(t) for t in texts]
    wrapped = _hard_wrapped(texts, ends)
    classify = _cues.classify_unprotected
    if wrapped:  # a line is not a paragraph: classify the wrapped sentences, keep explicit cues only
        cue = [_NONE_CUE] * n
        for i, j in _wrapped_units(texts, ends, protected):
            c = _cues.strong_cue(texts[i] if i == j else " ".join(texts[i:j + 1]))
            if c is not None:
                cue[i:j + 1] = [c] * (j + 1 - i)
    else:
        cue = [_NONE_CUE if protected[i] or t[0] == "^" else classify(t) for i, t in enumerate(texts)]

    # 1. known-publisher rules
    pub_rules = rules.for_publisher(publisher)
    for rule in pub_rules:
        for i, t in enumerate(texts):
            if protected[i] or not rule.matches(t):
                continue
            span = range(i, n) if rule.scope == "tail" else range(0, i + 1) if rule.scope == "head" else (i,)
            for j in span:
                if not protected[j] and verdict[j] is None:
                    kind = rule.kind if j == i or cue[j].kind is None else cue[j].kind
                    verdict[j] = (kind, f"rules:{rules.version}/{rule.id}")

    # 2. strong cues
    for i in range(n):
        if verdict[i] is None and cue[i].strength == STRONG:
            verdict[i] = (cue[i].kind, f"cue:{cue[i].kind}")

    # Menus and learned furniture are only looked for on pages that show furniture explicitly.
    evidence = not wrapped and any(v is not None for v in verdict)
    tk = _title_key(title)

    # 3. memory
    mem_fps: list[int] = []
    key_hash = article_key_hash(article_key or raw_body[:200])
    if memory is not None and not wrapped:  # wrapped lines are not paragraphs: nothing to learn or match
        mem_fps = [fingerprint(t) for t in texts]
        if evidence:
            exempt = [protected[i] or (tk is not None and _restates(t, tk)) for i, t in enumerate(texts)]
            _memory_cuts(texts, cue, verdict, exempt, memory, mem_fps, key_hash, f"memory:{publisher or ''}")

    # 4. position: the frame around the story core, then runs inside it
    if evidence:
        # lines broken around inline links are one block; a block that reads as furniture is cut whole
        blks = _layout.blocks(texts, cue, verdict, protected)
        for b in blks:
            if b.cut is not None and b.first < b.last:
                for k in range(b.first, b.last + 1):
                    verdict[k] = (b.cut, f"cue:{b.cut}")
        core = _layout.find_core(blks)
        if core is not None:
            for j, kind in _layout.frame_cuts(blks, core, _title_block(blks, tk, core.start)):
                for k in range(blks[j].first, blks[j].last + 1):
                    verdict[k] = (kind, f"cue:{kind}")
        _expand_runs(texts, cue, verdict, protected)

    removed = [RemovedSpan(v[0], raw_body[ln[0]:ln[1]], ln[0], ln[1], v[1])
               for ln, v in zip(lines, verdict) if v is not None]
    flags: list[str] = []
    if removed and len(removed) == n:
        removed, flags = [], [ALL_BOILERPLATE]
    if mem_fps and observe:
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


def _memory_cuts(texts, cue, verdict, protected, memory, mem_fps, key_hash, label) -> None:
    n = len(texts)
    mem_hits = [not protected[i] and memory.is_boilerplate(fp, key_hash) for i, fp in enumerate(mem_fps)]
    if not any(mem_hits):
        return
    textual = [cue[i].strength != STRONG and _cues.word_count(t) >= 7 for i, t in enumerate(texts)]
    text_total = sum(len(t) for i, t in enumerate(texts) if textual[i])
    text_hit = sum(len(t) for i, t in enumerate(texts) if textual[i] and mem_hits[i])
    # A re-published story repeats its sentences; furniture does not make up most of the prose, and
    # sits in the closing block or next to other furniture.
    allow_text = text_hit <= _MEMORY_PROSE_SHARE * text_total
    tail = n
    while tail > 0 and (mem_hits[tail - 1] or verdict[tail - 1] is not None or protected[tail - 1]):
        tail -= 1
    for i in range(n):
        if not mem_hits[i] or verdict[i] is not None:
            continue
        if textual[i] and (cue[i].strength == PROSE
                           or not (allow_text and (i >= tail or _next_to_cut(i, verdict)))):
            continue  # a repeated story sentence ("The figures could not be verified.") is not furniture
        kind = cue[i].kind if cue[i].kind and cue[i].strength != PROSE else "other_boilerplate"
        verdict[i] = (kind, label)


def _expand_runs(texts, cue, verdict, protected) -> None:
    """Inside the core: weak appeal lines next to strong appeal lines, share buttons next to a share
    prompt, and the short lines of a link list under a link-list header."""
    n = len(texts)
    changed = True
    while changed:
        changed = False
        for i in range(n):
            if verdict[i] is not None or protected[i]:
                continue
            c = cue[i]
            if c.strength == WEAK:
                want = ("donation_appeal",)
            elif c.strength == SOFT:
                want = None  # any furniture
            else:
                continue
            for j in (i - 1, i + 1):
                if 0 <= j < n and verdict[j] is not None and (want is None or verdict[j][0] in want):
                    kind = verdict[j][0] if c.strength == WEAK else c.kind
                    verdict[i] = (kind, f"cue:{kind}")
                    changed = True
                    break
    # link lists: "Related:" / "Read more:" then short title lines up to the next prose paragraph
    for i in range(n):
        v = verdict[i]
        if v is None or v[0] != "related_links" or cue[i].strength != STRONG or not v[1].startswith("cue:"):
            continue
        if _cues.word_count(texts[i]) > 4:
            continue  # a link line itself ("Read more: <headline>"), not a header
        run = []
        for j in range(i + 1, min(n, i + 1 + _LINK_LIST_MAX + 1)):
            if verdict[j] is not None or protected[j] or cue[j].strength != NAV:
                break
            run.append(j)
        if 0 < len(run) <= _LINK_LIST_MAX:
            for j in run:
                verdict[j] = ("related_links", "cue:related_links")


def _next_to_cut(i, verdict) -> bool:
    return (i > 0 and verdict[i - 1] is not None) or (i + 1 < len(verdict) and verdict[i + 1] is not None)
