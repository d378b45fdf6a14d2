"""Publisher-agnostic cue classifier for web furniture in article bodies.

Each paragraph (a line of the body) gets a :class:`Cue`: the boilerplate kind it looks like and a strength:

* ``STRONG`` -- the paragraph on its own is furniture ("Advertisement", "Sign up for our newsletter",
  "please support us monthly starting from just $2", "Remind me later.").
* ``WEAK`` -- furniture-flavoured but also plausible in a story ("Dear readers," alone is strong, but
  "we need your help" or a bare "Telegram" link line is weak): cut only as part of a run of strong ones.
* ``NAV`` -- a short non-sentence line (menu item, headline of another article, timestamp): cut only
  inside a run of several such lines next to other furniture.
* ``PROSE`` / ``NONE`` -- a story-like sentence, never cut by position alone.

:func:`credit_line` says whether a line is a wire credit ("Reporting by ...", "(AP)", the Reuters-21578
"Reuter" sign-off, AP slugs): those belong to the story and no layer cuts them.

The patterns describe the genre (what appeals, prompts and menus say), not particular sentences.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "Cue",
    "STRONG",
    "WEAK",
    "NAV",
    "PROSE",
    "NONE",
    "KINDS",
    "classify",
    "credit_line",
    "is_prose",
]

STRONG, WEAK, NAV, PROSE, NONE = 3, 2, 1, 0, -1

KINDS = ("donation_appeal", "newsletter_prompt", "related_links", "share_prompt", "cookie_notice",
         "ad_marker", "gallery_furniture", "author_bio", "other_boilerplate")


class Cue(NamedTuple):
    strength: int
    kind: str | None


_I = re.IGNORECASE

# --- credit lines: story, never cut ----------------------------------------------------------------
_CREDIT = re.compile(
    r"^\W*(reuters?|reuter|\(?ap\)?|\(?afp\)?|\(?reuters\)?)\W*$"
    r"|^\W*(additional\s+)?(reporting|writing|editing|compiled|research|translated|written)\s+by\b"
    r"|\b(contributed|contributing)\s+(to\s+)?(this|the)\s+(report|story|article)"
    r"|^\W*with\s+(additional\s+)?reporting\s+(by|from)\b"
    r"|^\W*(by|from)\s+(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){0,3})\s*(,\s*)?(\(?(reuters|ap|afp|associated press|"
    r"bloomberg|dpa|anadolu|xinhua|tass)\)?)?\s*$"
    r"|^\W*\^?eds?:"
    r"|^(?-i:[A-Z]{1,3})\d{3,5}\b|^\s*ap-[a-z]{2}-"
    r"|\(\s*(editing|reporting|writing)\s+by\b"
    r"|^\W*(?-i:[A-Z])[A-Za-z .'-]{1,60}\breported\s+from\s+(?-i:[A-Z])",
    _I)


def credit_line(text: str) -> bool:
    """A wire credit or slug line: part of the story, never cut."""
    return bool(_CREDIT.search(text))


# --- strong single-line cues, by kind -------------------------------------------------------------
def _rx(*parts: str) -> re.Pattern:
    return re.compile("|".join(parts), _I)


_MONEY = r"(?:[$€£]\s?\d+|\d+\s?(?:usd|eur|euros?|dollars|pounds|rubles))"
_PERIOD = r"(?:a|per|each|every|/)\s?(?:month|week|year)|monthly|annually|one-time|one-off|recurring"

_STRONG: list[tuple[str, re.Pattern]] = [
    ("donation_appeal", _rx(
        r"^\W*a message from\b.{0,60}:\s*$",
        r"^\W*dear (readers?|friends?|subscribers?)\b.{0,3}$",
        r"\bremind me later\b",
        r"^\W*(donate|donate now|donate today|make a donation|give now|give today|support us|"
        r"support (our|independent) (work|journalism|newsroom|reporting)|i'?ll pitch in|pitch in|"
        r"become a (member|supporter|patron|donor)|join(/renew)?\s*(-|–)?\s*(pledge)?|membership|"
        r"(major|planned|corporate|foundation)[/ a-z]*gifts?|ways to give)\W*$",
        r"\b(please|you can|consider|would you|will you)\b.{0,40}\b(support|donat\w+|contribut\w+|"
        r"chip in|pitch in|become a (member|supporter))\b.{0,40}\b(us|our|today|monthly|now)\b",
        r"\b(support|donate to|give to|fund)\s+(us|our (work|journalism|newsroom|reporting|mission)|"
        r"independent (journalism|media|news|reporting))\b.{0,80}(" + _MONEY + "|" + _PERIOD + r"|today|now)",
        _MONEY + r".{0,30}\b(" + _PERIOD + r")\b.{0,80}\b(support|help|keep|donat|contribut|gift|member)",
        r"\b(support|donat\w+|contribut\w+|gift|member\w*)\b.{0,60}" + _MONEY + r"\s?(" + _PERIOD + ")",
        r"\b(reader|member)[- ](funded|supported)\b.{0,80}\b(contribut\w+|donat\w+|support|gift)\b",
        r"\bwon'?t survive without (you|your support)\b|\bdepends? on (you|readers like you|your support)\b",
        r"\balready (a|an) (supporter|member|subscriber|donor)\?",
        r"\b(tax[- ]deductible|every contribution|your (donation|contribution|gift)s?\b.{0,40}(help|make|keep))",
        r"\bby supporting\b.{0,60}\byou('re| are)\b",
        r"^\W*support\s+(?-i:(the\s+)?[A-Z][\w&'-]*(\s+[A-Z][\w&'-]*){0,3})\W*(→|»|>)?\s*$",
    )),
    ("newsletter_prompt", _rx(
        r"^\W*(subscribe|subscribe now|subscribe today|sign up|sign up now|sign up here|sign up free|"
        r"newsletters?|newsletters? & alerts|podcasts?|join now|get the app|download the app|"
        r"become a subscriber|subscribe to (our )?newsletters?|you'?re subscribed!?|email \*|"
        r"sign up now no thanks|already a subscriber\?.{0,30}|try \d+ days free.{0,40})\W*$",
        r"\b(sign up|subscribe)\b.{0,80}\b(newsletter|briefing|inbox|email|alerts?|digest)\b",
        r"\b(newsletter|briefing|digest)\b.{0,120}\b(sign up|subscribe|delivered|in your inbox)\b",
        r"\bin your inbox\b|\bcheck your inbox\b|\bstraight to your inbox\b",
        r"\bdownload the\b.{0,30}\bapp\b|\bscan the qr code\b",
        r"\bsubscribe (now )?to (keep|continue) reading\b|\bfor full access\b|\bunlimited (digital )?access\b",
        r"\bsend (you )?(breaking news|news alerts)\b|\bturn on (push )?notifications\b",
        r"^\W*#*\s*sign up to\b",
        r"\bthis field is for validation purposes\b",
    )),
    ("share_prompt", _rx(
        r"^\W*(share|share this( article| story)?|share on \w+|copy (the |article )?link|"
        r"link copied!?|thanks for sharing!?|share full article|gift (this )?article|print this( article)?|"
        r"follow us( on social media)?|facebook tweet email( link)?)\W*$",
        r"^\W*share (this|it)\b.{0,60}(facebook|twitter|x|email|whatsapp|telegram|friend|someone)",
        r"^\W*(facebook|twitter|x|linkedin|whatsapp|telegram|email|reddit)\s*(\||·|,)\s*"
        r"(facebook|twitter|x|linkedin|whatsapp|telegram|email|reddit)",
        r"\bfollow\b.{0,40}\bon (telegram|twitter|x|facebook|instagram|whatsapp|bluesky|threads|google news)\b"
        r"(.{0,30})$",
        r"\bshare it with (someone|a friend|friends)\b",
    )),
    ("cookie_notice", _rx(
        r"\bcookies?\b.{0,80}\b(settings|policy|preferences|consent|accept|use|necessary|store|website)\b",
        r"^\W*(cookie settings|cookie policy|manage (consent|cookies|preferences).{0,30}|"
        r"accept( all)?( cookies)?|reject all|agree|i agree|apply cancel|confirm my choices|"
        r"privacy (policy|settings|preferences|center)|do not sell or share my personal information|"
        r"your privacy choices|checkbox label label)\W*$",
        r"\b(global privacy control|gpc) signal\b|\bpersonal (information|data)\b.{0,60}\b(sold|sell|share|"
        r"shared|targeted|advertising)\b",
        r"\bby (clicking|continuing|using)\b.{0,60}\b(agree|consent|accept)\b",
    )),
    ("ad_marker", _rx(
        r"^\W*(advertisement|advertising|ad|sponsored( content)?|paid (post|content)|promoted( content)?|"
        r"story continues below( this)? (ad|advertisement)|article continues (below|after) (this )?"
        r"(ad|advertisement)|continue reading below|skip advertisement|view all sponsors|"
        r"thanks to our sponsors:?|ad feedback|supported by)\W*$",
    )),
    ("gallery_furniture", _rx(
        r"^\W*(hide caption|show caption|toggle caption|expand image|enlarge (this )?image|image|images|"
        r"photo|photos|video|gallery|view gallery|credit\.{0,3}|open gallery|slideshow|"
        r"\d+\s*(/|of)\s*\d+|item \d+ of \d+)\W*$",
        r"^\W*(photo|photos|image|picture|video)( credit)?\s*:\s*\S.{0,80}$",
        r"^\W*[^.!?]{2,60}(/|\bvia\b)\s*(getty images|afp|reuters|ap|shutterstock|epa|anadolu|sputnik)\b"
        r"[^.!?]{0,30}$",
        r"^\W*(?-i:[A-Z])[^.!?]{2,50}\s+-\s+(staff|stringer|freelancer|pool),\s+(?-i:[A-Z]{2,6})\s*$",
        r"^\s*©\s*[^.!?]{2,60}$",
    )),
    ("related_links", _rx(
        r"^\W*(read more|read also|see also|related|related( stories| articles| content| coverage)?|"
        r"more (on this|from|stories|coverage|news)|further reading|recommended( for you)?|most (read|popular)|"
        r"you (may|might) (also )?like|trending( now)?|latest( news| stories)?|top stories|"
        r"load more|see more|show more|what to read next|editors'? picks?|also read|watch:?|"
        r"listen:?)\W*[:\-–—]?\s*$",
        r"^\W*(read more|read also|see also|related|also read|more|watch|listen|recommended|editor'?s pick)"
        r"\s*[:|»>\-–—]\s*\S",
        r"^\W*(\*\s*)?\[[^\]]*\]\(\s*<?https?://",
        r"^\W*follow\b.{0,60}\bcoverage\b.{0,60}(https?://|at\s+\S+\.\w)",
        r"^\W*more\b.{0,40}:\s*https?://",
    )),
    ("author_bio", _rx(
        r"^(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){1,3})\s+(is|was)\s+(a|an|the)\b.{0,80}\b(reporter|correspondent|"
        r"editor|writer|journalist|columnist|contributor|producer|fellow|professor|analyst)\b.{0,200}$",
        r"\b(story tips|tips and ideas) .{0,40}\bcan be sent to\b",
        r"\bfollow (him|her|them) on\b.{0,30}\b(twitter|x|bluesky|instagram)\b",
        r"^\W*(about the author|meet the author|author bio|more from this author)\W*$",
    )),
    ("other_boilerplate", _rx(
        r"\ball rights reserved\b|^\W*©\s*\d{4}|^\W*copyright\s*(©\s*)?\d{4}",
        r"^\W*(skip to (main )?content|skip to navigation|main menu|menu|search|close|sign in|log in|"
        r"log out|my account|back to top|home|terms of (use|service)|contact us|about us|"
        r"accessibility( statement)?|site map|sitemap|careers|advertise( with us)?|corrections|"
        r"comments?|view comments|placeholder while article actions load|end of article|"
        r"listen to (this )?article|\d+ min(ute)? read)\W*$",
        r"\btrust principles\b|^.{0,60}\bopens new tab\W*$",
        r"\boriginally (published|appeared) (on|in|at|by)\b|\bthis (article|story) (first|originally) appeared\b",
        r"\bthe views expressed\b.{0,80}\b(do not|don'?t) (necessarily )?reflect\b",
        r"\bpublished under\b.{0,40}\blicen[cs]e\b|^\W*creative commons\b",
        r"\bwe use cookies\b",
    )),
]

# Words that hint at an appeal but also occur in news; count only inside a run of strong cues.
_WEAK_APPEAL = _rx(
    r"\b(we|our|us)\b",
    r"\b(support|donat\w+|contribut\w+|independent|journalis\w+|readers?|thank you|your help)\b",
)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_SHORT_SOCIAL = re.compile(
    r"^\W*(facebook|twitter|x|linkedin|whatsapp|telegram|email|e-mail|reddit|bluesky|threads|instagram|"
    r"youtube|tiktok|pinterest|flipboard|mastodon|print|save|gift|follow|copy link|comment|share|rss)\W*$", _I)

_SENT_END = re.compile(r"[.!?…][\"'”’)\]]*\s*$|[\"”’]\s*$")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_NUMERIC = re.compile(r"\d")
_DATE_TIME = re.compile(
    r"^\W*(\d{1,2}[:.]\d{2}(\s?[ap]\.?m\.?)?(\s?[A-Z]{2,4})?|(today|yesterday) at|"
    r"(\d{1,2}\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(\s+\d{1,2})?,?\s+\d{4}"
    r"(,?\s*\d{1,2}[:.]\d{2}.*)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(\s+\d{1,2}[:.]\d{2})?|updated\b.{0,30})\W*$",
    _I)


def is_prose(text: str) -> bool:
    """A story-like sentence: long enough and ending like a sentence (or very long)."""
    words = len(_WORD.findall(text))
    if words >= 30:
        return True
    return words >= 7 and bool(_SENT_END.search(text))


def classify(text: str) -> Cue:
    """The cue of one paragraph (stripped line)."""
    if credit_line(text) or text.startswith("^"):
        return Cue(NONE, None)
    if text[0].islower() and len(_WORD.findall(text)) <= 3:  # the tail of a wrapped sentence
        return Cue(NONE, None)
    quoted = text[:1] in "\"“'‘«"
    bare = _QUOTED.sub(" ", text)
    if not quoted:
        # Long paragraphs are story unless an unmistakable appeal phrase sits in them.
        for kind, rx in _STRONG if len(text) <= 400 else _STRONG[:1]:
            if rx.search(bare):
                return Cue(STRONG, kind)
    if _SHORT_SOCIAL.match(text):
        return Cue(WEAK, "share_prompt")
    if is_prose(text):
        if not quoted and _WEAK_APPEAL.search(bare):
            return Cue(WEAK, "donation_appeal")
        return Cue(PROSE, None)
    if _DATE_TIME.match(text):
        return Cue(NAV, "related_links")
    words = len(_WORD.findall(text))
    digits = len(_NUMERIC.findall(text))
    if words == 0 or digits > words:  # tables, figures: story data, not menus
        return Cue(NONE, None)
    if words <= 16:
        return Cue(NAV, "related_links" if words >= 4 else "other_boilerplate")
    return Cue(NONE, None)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))
