"""Unit tests of the layout layer (story core, header, trailer, frame) and of the cue vocabulary it relies on.

Every text here is written for the tests: an invented harbour story framed by the kinds of furniture
scraped pages carry. Corpus text is only read at test time (the trigger-index check).
"""

from __future__ import annotations

import pytest

from pipeline.boilerplate import PublisherMemory, RuleSet, strip
from pipeline.boilerplate import cues
from pipeline.boilerplate.cues import NAV, PROSE, SOFT, STRONG, classify
from pipeline.corpus import read_jsonl
from pipeline.text import cut_spans

NO_RULES = RuleSet.empty()

TITLE = "Harbour authority approves second container terminal"
MENU = ["Skip to main content", "Home", "World", "Politics", "Business", "Sport", "Opinion", "Newsletters",
        "Sign in"]
HEADER = [TITLE, "By Jane Doe", "March 3, 2026 at 9:15 a.m. EST", "Facebook", "Twitter", "Copy link"]
STORY = [
    "RIVERTON (Reuters) - The city's harbour authority approved a second container terminal on Tuesday, "
    "ending two years of hearings over dredging, lorry traffic and noise.",
    "The board voted 7-2 in favour after the operator agreed to pay for a new rail spur, officials said.",
    "What happens next",
    "Construction is expected to begin in the autumn and take three years, the authority said in a statement.",
    "Residents who opposed the plan said they would consider an appeal to the regional court.",
]
CREDIT = "Reporting by Jane Doe; Editing by John Roe"
RELATED = ["Related coverage", "Port strike ends after pay deal reached overnight",
           "Council delays vote on bridge tolls again", "Ferry operator adds winter sailings to the islands"]
FOOTER = ["© 2026 Riverton Courier. All rights reserved.", "Terms of Use", "Privacy Policy"]


def _page(*parts) -> str:
    return "".join(line + "\n" for part in parts for line in part)


def _kept(raw, res) -> list:
    assert res.body == cut_spans(raw, [(s.start, s.end) for s in res.removed])
    for s in res.removed:
        assert raw[s.start:s.end] == s.text and (s.start == 0 or raw[s.start - 1] == "\n")
        assert s.rule.split(":")[0] in ("cue", "memory", "rules")
    return [ln for ln in res.body.split("\n") if ln.strip()]


# --- the frame around the story -------------------------------------------------------------------

@pytest.mark.parametrize("title", [TITLE, None])
def test_scraped_page_keeps_story_headline_byline_credit(title):
    raw = _page(MENU, HEADER, STORY, [CREDIT], RELATED, FOOTER)
    kept = _kept(raw, strip(raw, "Riverton Courier", rules=NO_RULES, title=title))
    assert kept == [TITLE, "By Jane Doe"] + STORY + [CREDIT]


def test_frame_kinds_are_named():
    raw = _page(MENU, HEADER, STORY, [CREDIT], RELATED, FOOTER)
    res = strip(raw, "Riverton Courier", rules=NO_RULES, title=TITLE)
    kinds = {s.text.strip(): s.kind for s in res.removed}
    assert kinds["Related coverage"] == "related_links"
    assert kinds["Port strike ends after pay deal reached overnight"] == "related_links"
    assert kinds["Politics"] == "other_boilerplate"
    assert kinds["Twitter"] == "share_prompt"
    assert kinds["© 2026 Riverton Courier. All rights reserved."] == "other_boilerplate"


def test_title_far_from_story_is_found_and_kept():
    """Headline, then a gallery of captions and share rows, then the story: the title marks the head."""
    gallery = []
    for k in range(6):
        gallery += [f"Workers inspect the quay wall at dawn, picture {k}", "PHOTOGRAPHER NAME", "Facebook",
                    "Twitter"]
    raw = _page(MENU, [TITLE], gallery, STORY, RELATED)
    with_title = _kept(raw, strip(raw, "X", rules=NO_RULES, title=TITLE))
    assert TITLE in with_title and "Home" not in with_title
    without = _kept(raw, strip(raw, "X", rules=NO_RULES))
    assert TITLE not in without  # nothing marks it among the title-like gallery lines


def test_wire_story_without_furniture_is_untouched():
    """No explicit cue on the page: short lines are story data (results, tables), not menus."""
    raw = _page(["LONDON, March 3 (Reuters) - Results of English Premier League matches on Tuesday:",
                 "Arsenal 2 Chelsea 1", "Everton 0 Leeds 0", "Fulham 3 Burnley 2", "Standings to follow"])
    assert strip(raw, "Reuters", rules=NO_RULES).body == raw


def test_key_points_subheading_and_tail_after_prompt_stay():
    raw = _page(["Advertisement",
                 "* Talks to resume next week in Geneva",
                 "* Both sides agree to a prisoner exchange",
                 "GENEVA (Reuters) - Negotiators from both countries ended a second round of talks on Thursday "
                 "with an agreement to exchange prisoners but no deal on the border.",
                 "Key issues",
                 "The main dispute is over a strip of farmland that both governments claim, diplomats said.",
                 "Sign up for our morning briefing newsletter.",
                 "The talks are set to resume on Monday."])
    kept = _kept(raw, strip(raw, "X", rules=NO_RULES))
    assert kept[:2] == ["* Talks to resume next week in Geneva", "* Both sides agree to a prisoner exchange"]
    assert "Key issues" in kept and kept[-1] == "The talks are set to resume on Monday."
    assert "Advertisement" not in kept and not any("newsletter" in k for k in kept)


def test_link_list_after_story_goes_prose_teasers_included():
    teasers = ["Useful reading:",
               "The port authority said last year that it would review its dredging plans.",
               "Ferry operators have warned that winter storms are getting harder to predict."]
    raw = _page(["Advertisement"], STORY, teasers)
    kept = _kept(raw, strip(raw, "X", rules=NO_RULES))
    assert kept == STORY


def test_inline_link_fragments_join_their_sentence():
    """Text broken around inline links: story fragments stay together, a "Click here" sentence goes."""
    raw = _page(["Advertisement"], STORY[:2],
                ["The minister", "said", "the terminal would be the largest on the coast when it opens."],
                ["Click", "here", "to see our interactive map of the harbour."], STORY[3:])
    kept = _kept(raw, strip(raw, "X", rules=NO_RULES))
    assert "The minister" in kept and "said" in kept
    assert "Click" not in kept and "to see our interactive map of the harbour." not in kept


def test_subheadings_inside_story_stay():
    subheads = ["Costs and funding", "Opposition from residents", "What comes next for the port"]
    body = [STORY[0], subheads[0], STORY[1], subheads[1], STORY[3], subheads[2], STORY[4]]
    raw = _page(["Advertisement"], body, ["Most popular"], RELATED[1:])
    assert _kept(raw, strip(raw, "X", rules=NO_RULES)) == body


def test_no_story_at_all_never_empties():
    raw = _page(["Skip to main content", "Menu", "Sign in", "Subscribe"])
    res = strip(raw, "X", rules=NO_RULES)
    assert res.body == raw and res.flags == ["all_boilerplate"]


# --- hard-wrapped copy ----------------------------------------------------------------------------

def test_wrapped_copy_is_read_by_sentence():
    """A wrapped line that looks like furniture on its own ("more - ...") is part of a sentence."""
    line = "more - including two in the capital - could follow"
    assert classify(line).strength == STRONG  # on its own it reads as a link-list line
    raw = ("The bank said 14 of its branches would close this year, and\n"
           f"{line}\n"
           "later if trading does not improve, a spokesman said.\n"
           "    Shareholders of record on March 1 will be able to\n"
           "subscribe to new shares at 120 pence each until the end of\n"
           "April, the bank said.\n"
           " Reuter\n")
    assert strip(raw, "Reuters", rules=NO_RULES).body == raw


def test_wrapped_copy_still_loses_explicit_furniture():
    raw = ("The bank said 14 of its branches would close this year, and\n"
           "others could follow later if trading does not improve, a\n"
           "spokesman said on Friday.\n"
           "Advertisement\n"
           "    The bank employs about 3,000 people in the region and has\n"
           "said it will offer voluntary redundancy first.\n")
    res = strip(raw, "X", rules=NO_RULES)
    assert [s.text for s in res.removed] == ["Advertisement\n"]


# --- memory and the headline ------------------------------------------------------------------------

def test_memory_spares_the_headline_and_repeated_story_sentences():
    other = "Ferry operator adds winter sailings to the islands"
    closing = "The figures could not be independently verified."
    mem = PublisherMemory(min_articles=2)
    first = _page(["Advertisement"], STORY, [closing], ["More stories", TITLE, other])
    strip(first, "Courier", memory=mem, rules=NO_RULES, article_key="first", title=other, event_time_ms=1)
    second = _page(["Advertisement", TITLE, "By Jane Doe"],
                   ["The authority also raised mooring fees by 4% for next year, its annual report showed.",
                    "Fishing boats will be exempt from the increase until 2028, the report said."],
                   [closing])
    res = strip(second, "Courier", memory=mem, rules=NO_RULES, article_key="second", title=TITLE,
                event_time_ms=2)
    kept = _kept(second, res)
    assert TITLE in kept and closing in kept
    assert not any(s.rule.startswith("memory:") for s in res.removed)


# --- cue vocabulary ---------------------------------------------------------------------------------

@pytest.mark.parametrize("line, strength, kind", [
    ("Read moreHarbour strike ends after pay deal", STRONG, "related_links"),
    ("Add Riverton Courier as your preferred source on Google", STRONG, "share_prompt"),
    ("Make us preferred on Google", STRONG, "share_prompt"),
    ("You’re Subscribed!", STRONG, "newsletter_prompt"),
    ("Subscriber-only newsletter", STRONG, "newsletter_prompt"),
    ("By signing up, you agree to receive our emails.", STRONG, "newsletter_prompt"),
    ("Jane Doe can be reached at jane@example.com.", STRONG, "author_bio"),
    ("Jane Doe is a reporter and the head of the city desk at the Courier.", STRONG, "author_bio"),
    ("The views expressed here do not necessarily reflect those of the Courier.", STRONG, "other_boilerplate"),
    ("Disclosures: This article expresses the opinions of the author.", STRONG, "other_boilerplate"),
    ("Print this Story", STRONG, "share_prompt"),
    ("Kim Doe/Harbour Authority", SOFT, "gallery_furniture"),
    ("@rivertoncourier", SOFT, "share_prompt"),
    ("Yesterday at 7:00 a.m. EST", SOFT, "other_boilerplate"),
    ("4 min read", SOFT, "other_boilerplate"),
    ("## Ferry operator adds winter sailings", NAV, "related_links"),
    ("* Port strike ends after pay deal reached overnight", NAV, "related_links"),
    ("HomeWorldPoliticsBusinessSportOpinionCultureTravel Weather", NAV, "other_boilerplate"),
])
def test_furniture_vocabulary(line, strength, kind):
    assert classify(line) == cues.Cue(strength, kind)


@pytest.mark.parametrize("line", [
    "The financial newsletter, which is read by most fund managers, said the bank would raise its dividend.",
    "He said he wanted children to read more.",
    "Tags were fitted to the seals before they were released.",
    "Canada Metal is a Toronto-based producer of lead alloys and batteries.",
    "Donations to the harbour fund are tax-deductible, the charity said.",
    "The broadcaster refused to pay £25 million a year to keep the rights.",
    "Shareholders may subscribe to new shares at 120 pence each.",
    "More than 40 people were rescued from the ferry, the coastguard said.",
])
def test_story_lookalikes_are_not_strong(line):
    assert classify(line).strength in (PROSE, NAV, cues.WEAK)


def test_trigger_index_misses_nothing(shared, synthetic_dev):
    """The trigger-word prefilter only skips patterns that could not match: gated == ungated search."""
    lines = {"Read moreHarbour strike ends", "© Riverton Courier", "[](https://example.com/x)"}
    for g in read_jsonl(shared / "gold" / "boilerplate_dev.jsonl"):
        lines.update(p["text"].strip() for p in g["paragraphs"])
    for art in synthetic_dev:
        lines.update(ln.strip() for ln in art["body"].split("\n"))
    checked = 0
    for line in filter(None, lines):
        toks = cues._words(line)
        assert cues._strong(line, toks) == cues._strong(line, toks, gated=False), line
        checked += 1
    assert checked > 5000


def test_related_box_inside_story_does_not_end_it():
    """A "Related:" box with one link, then four more story paragraphs: the story goes on after it."""
    body = [STORY[0], STORY[1], "Related:", "Port strike ends after pay deal reached overnight", STORY[3], STORY[4],
            "The operator said the first ships could dock at the new terminal in 2029.",
            "The regional government has promised to widen the access road before then."]
    raw = _page(["Advertisement"], body)
    kept = _kept(raw, strip(raw, "X", rules=NO_RULES))
    assert kept == [STORY[0], STORY[1]] + body[4:]


def test_author_bio_ends_the_story():
    raw = _page(["Advertisement"], STORY,
                ["Jane Doe is a reporter for the Riverton Courier covering transport.",
                 "Get the Courier's morning briefing with the day's top stories from the coast.", "Arrives daily"])
    assert _kept(raw, strip(raw, "X", rules=NO_RULES)) == STORY


def test_key_point_sentences_after_story_stay_headline_bullets_go():
    """Bullets that are sentences are the story's key points; bullets that are headlines are links."""
    points = ["* The harbour authority approved the terminal by seven votes to two on Tuesday evening.",
              "* The operator will pay for a new rail spur to take lorries off the coast road."]
    links = ["* Port strike ends after pay deal reached overnight",
             "* Council delays vote on bridge tolls again",
             "* Ferry operator adds winter sailings to the islands"]
    raw = _page(["Advertisement"], STORY, points, links, ["The page you requested does not exist."])
    kept = _kept(raw, strip(raw, "X", rules=NO_RULES))
    # one unmarked line after the story is given the benefit of the doubt (a closing line, a sign-off)
    assert kept == STORY + points + links[:1]


@pytest.mark.parametrize("line", ["(AP)", "Reuter", "By Jane Doe", "BY JANE DOE, Reuters", "V4644 AP-Top-Headlines",
                                  "ap-wf-02-10-16 0423GMT", "^Eds: Adds quotes", "_Additional reporting:_ Sam Roe",
                                  "by Jane Doe 10:41 AM March 3, 2026", "Jane Doe contributed to this report.",
                                  "Design and development: Sam Roe"])
def test_credit_lines_survive_the_cheap_prefilter(line):
    assert cues.credit_line(line)
    assert cues._CREDIT_START.match(line) or cues._CREDIT_ANY.search(line)
