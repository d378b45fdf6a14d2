"""Page layout: where the story sits in a scraped page, and which lines around it are page furniture.

A scraped article body is a story framed by furniture: menus, other headlines, newsletter boxes and
footers before and after it. Menus and link lists say little about themselves line by line ("Politics",
"Trump hints at Cuba takeover"), but they sit outside the story. This module finds the story and cuts
what frames it:

1. **Blocks.** Lines that continue a sentence (the next line starts in lower case after a line with no
   terminal punctuation: text broken around inline links) are joined into one block.
2. **Core.** Each block gets a score: prose sentences count their length; blocks already cut as explicit
   furniture and short non-sentence lines count against. The story core is the contiguous stretch of
   blocks with the highest total (a maximum-sum segment), so a subheading, an ad marker or a short
   related-links box inside the story is bridged, while a menu of forty lines is not.
3. **Header and trailer.** Walking outward from the core, what typically frames a story is kept: the
   headline (the line restating the article's title when there is one within reach, else at most
   :data:`HEADER_LINES` title-like lines), a standfirst, bylines and credits; timestamps, share buttons
   and photo credits are cut on the way. Without a title the walk stops at the first *hard* furniture
   line (a menu, a newsletter box, a link-list header, a copyright line). After the core it stops there
   too, or after :data:`TRAILER_LINES` unmarked lines.
4. **Frame.** Everything beyond the stop is furniture and cut, prose included (teasers of other
   stories, the outlet's self-description), except wire credit lines.

Lines inside the core are left to the cue layer: a short line between story paragraphs is a subheading
unless it carries explicit furniture vocabulary.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from pipeline.boilerplate import cues as _cues
from pipeline.boilerplate.cues import NAV, NONE, PROSE, SOFT, STRONG, WEAK, Cue

__all__ = ["Block", "Core", "blocks", "find_core", "frame_cuts", "HARD_KINDS", "HEADER_LINES", "TRAILER_LINES",
           "TITLE_REACH"]

# Explicit furniture that does not sit between a headline and its story: the walk out of the core
# stops there. Share buttons, ad markers, photo credits and timestamps do sit there and are only cut.
HARD_KINDS = frozenset({"other_boilerplate", "related_links", "newsletter_prompt", "donation_appeal",
                        "cookie_notice", "author_bio"})

# Core scoring, in characters of prose.
_CUT_PENALTY = 20  # a line already cut as furniture, plus an eighth of its length
_NAV_PENALTY = 20  # a short non-sentence line, plus a quarter of its length
_SOFT_PENALTY = 20
# A link-list header (at most this many words) or an author bio this close to the end of the core ends it.
_LIST_TAIL = 5
_HEADER_WORDS = 6
# Joined fragments of at least this many words are running text.
_FRAGMENT_PROSE_WORDS = 8

# Header: title-like blocks (headline, standfirst, kicker) kept before the core when the article's
# title is not found; how many blocks before the core the title may be.
HEADER_LINES = 2
TITLE_REACH = 40
# Trailer: unmarked blocks kept after the core before a link list is assumed.
TRAILER_LINES = 1


class Block(NamedTuple):
    first: int  # first line index
    last: int  # last line index (inclusive)
    text: str  # the lines joined with spaces
    cue: Cue
    cut: str | None  # kind, when another layer already cut (the single line of) this block
    protected: bool


class Core(NamedTuple):
    start: int  # first block index of the story core
    end: int  # last block index (inclusive)
    score: int


def blocks(texts: Sequence[str], cues: Sequence[Cue], verdict: Sequence, protected: Sequence[bool]) -> list:
    """Lines grouped into blocks: a line that continues the previous line's sentence joins its block.

    A joined block is classified again as a whole; when it is explicit furniture ("Click" / "here" /
    "to see our interactive map") its ``cut`` is set and the caller cuts its lines.
    """
    out: list[Block] = []
    n = len(texts)
    i = 0
    while i < n:
        j = i
        if verdict[i] is None and not protected[i]:
            while (j + 1 < n and verdict[j + 1] is None and not protected[j + 1]
                   and _continues(texts[j], texts[j + 1])):
                j += 1
        if j == i:
            v = verdict[i]
            out.append(Block(i, i, texts[i], cues[i], None if v is None else v[0], protected[i]))
        else:
            text = " ".join(texts[i:j + 1])
            cue = _cues.classify_unprotected(text)
            if cue.strength in (NAV, NONE) and len(text.split()) >= _FRAGMENT_PROSE_WORDS:
                cue = Cue(PROSE, None)
            out.append(Block(i, j, text, cue, cue.kind if cue.strength == STRONG else None, False))
        i = j + 1
    return out


def _continues(a: str, b: str) -> bool:
    c = b[0]
    return (c.islower() or c in ",;:)") and not _cues.sentence_end(a)


def find_core(blks: Sequence[Block]) -> Core | None:
    """The maximum-score contiguous run of blocks; None when no block scores positive.

    A link-list header ("Useful reading:", "More stories") or an author bio among the last blocks of that
    run ends the story: what follows is teasers of other stories or the outlet's prompts, however
    sentence-like.
    """
    best = Core(0, -1, 0)
    run_start, run = 0, 0
    for i, b in enumerate(blks):
        s = _score(b)
        if run <= 0:
            run_start, run = i, s
        else:
            run += s
        if run > best.score:
            best = Core(run_start, i, run)
    if best.end < 0:
        return None
    for j in range(best.end, max(best.start, best.end - _LIST_TAIL), -1):
        if _list_header(blks[j]):
            return Core(best.start, j - 1, best.score)
    return best


def _list_header(b: Block) -> bool:
    """A link-list header or an author bio: what follows it is not the story any more."""
    if b.cue.strength != STRONG:
        return False
    return (b.cut == "related_links" and len(b.text.split()) <= _HEADER_WORDS) or b.cut == "author_bio"


def _score(b: Block) -> int:
    if b.protected:
        return 0
    if b.cut is not None:
        return -(_CUT_PENALTY + len(b.text) // 8)
    st = b.cue.strength
    if st == PROSE:
        return len(b.text)
    if st == WEAK:
        return len(b.text) // 2
    if st == NAV:
        return -(_NAV_PENALTY + len(b.text) // 4)
    if st == SOFT:
        return -_SOFT_PENALTY
    return 0


def _hard(b: Block) -> bool:
    """Furniture that does not sit between a headline and its story."""
    if b.cut is not None:
        return b.cut in HARD_KINDS and b.cue.strength != SOFT
    return b.cue.strength == STRONG and b.cue.kind in HARD_KINDS


def _frame_kind(b: Block) -> str:
    c = b.cue
    if c.kind is not None and c.strength in (STRONG, SOFT):
        return c.kind
    return "related_links" if c.strength in (NAV, PROSE, WEAK) and len(b.text.split()) >= 4 \
        else "other_boilerplate"


def _short(b: Block) -> bool:
    """A menu word or section label ("News", "Opinion"): cut on the way out of the core."""
    return b.cue.strength == NAV and len(b.text.split()) <= 2


def frame_cuts(blks: Sequence[Block], core: Core, title_block: int | None) -> list:
    """Blocks outside the story core to cut, as ``[(block index, kind)]``.

    Blocks other layers already cut are not returned again. ``title_block`` is the index of the block
    restating the article's title, if any, before the core.
    """
    n = len(blks)
    out: list = []
    if title_block is not None and not (core.start - TITLE_REACH <= title_block < core.start):
        title_block = None

    # header: walk back from the core
    stop = -1
    kept = 0
    for j in range(core.start - 1, -1, -1):
        b = blks[j]
        if b.protected:
            continue
        if j == title_block:
            stop = j - 1
            break
        if b.cut is not None:
            if title_block is None and _hard(b):
                stop = j
                break
            continue
        st = b.cue.strength
        if st == STRONG or st == SOFT:
            out.append((j, _frame_kind(b)))
            if title_block is None and _hard(b):
                stop = j - 1
                break
            continue
        if title_block is not None or st == NONE:
            continue  # between the headline and the story: standfirst, byline, caption
        if _short(b):
            out.append((j, _frame_kind(b)))
            continue
        kept += 1
        if kept > HEADER_LINES:
            stop = j
            break
    for j in range(stop, -1, -1):
        b = blks[j]
        if not b.protected and b.cut is None and j != title_block:
            out.append((j, _frame_kind(b)))

    # trailer: walk forward from the core
    stop = n
    kept = 0
    for j in range(core.end + 1, n):
        b = blks[j]
        if b.protected:
            continue
        if b.cut is not None:
            if _hard(b):
                stop = j
                break
            continue
        st = b.cue.strength
        if st == STRONG or st == SOFT:
            out.append((j, _frame_kind(b)))
            if _hard(b):
                stop = j + 1
                break
            continue
        if st == NONE:
            continue
        kept += 1
        if kept > TRAILER_LINES:
            stop = j
            break
    for j in range(stop, n):
        b = blks[j]
        if not b.protected and b.cut is None:
            out.append((j, _frame_kind(b)))
    return out
