"""Publisher-agnostic cue classifier for web furniture in article bodies.

Each paragraph (a line of the body) gets a :class:`Cue`: the boilerplate kind it looks like and a strength:

* ``STRONG`` -- the paragraph on its own is furniture ("Advertisement", "Sign up for our newsletter",
  "please support us monthly starting from just $2", "Remind me later.").
* ``SOFT`` -- furniture that also turns up inside stories, or is too short to be sure of: a timestamp
  ("Updated 5:44 PM UTC"), a photo credit ("Kim Shiflett/NASA"), a bare "Facebook" share button, a lone
  "By", "Photo" or "Related". Cut in the frame around the story (:mod:`.layout`) and next to other cut
  lines, kept inside the story otherwise.
* ``WEAK`` -- appeal-flavoured but also plausible in a story ("we need your help"): cut only as part of a
  run of strong appeal lines.
* ``NAV`` -- a short non-sentence line (menu item, headline of another article, list item, markdown
  heading): cut only outside the story core, or in a short link list under a "Related:" header.
* ``PROSE`` / ``NONE`` -- a story-like sentence / anything else (table rows, wrapped fragments).

:func:`credit_line` says whether a line is a wire credit ("Reporting by ...", "(AP)", the Reuters-21578
"Reuter" sign-off, AP slugs): those belong to the story and no layer cuts them.

The patterns describe the genre (what appeals, prompts and menus say), not particular sentences.

Speed: most lines of a story contain none of the words the strong patterns need. Each pattern of
:data:`_STRONG_TABLE` lists trigger words it cannot match without; a line's words are intersected with
all trigger words at once (a C-level set operation) and only the triggered patterns are searched. Short
lines are first looked up whole in an exact-phrase table. Everything is compiled once, at import.
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "Cue",
    "STRONG",
    "SOFT",
    "WEAK",
    "NAV",
    "PROSE",
    "NONE",
    "KINDS",
    "classify",
    "classify_unprotected",
    "strong_cue",
    "credit_line",
    "is_prose",
    "sentence_end",
    "word_count",
    "line_key",
]

STRONG, SOFT, WEAK, NAV, PROSE, NONE = 4, 3, 2, 1, 0, -1

KINDS = ("donation_appeal", "newsletter_prompt", "related_links", "share_prompt", "cookie_notice",
         "ad_marker", "gallery_furniture", "author_bio", "other_boilerplate")


class Cue(NamedTuple):
    strength: int
    kind: str | None


_I = re.IGNORECASE

# --- credit lines: story, never cut ----------------------------------------------------------------
_CREDIT_START = re.compile(
    r"\W*(?:(?:reuters?|reuter|\(?ap\)?|\(?afp\)?|\(?reuters\)?)\W*$"
    r"|(?:additional\s+)?(?:reporting|writing|editing|compiled|research|translated|written)\s+by\b"
    r"|_?(?:additional\s+)?(?:reporting|writing|editing|research|photography|graphics|design)(?:\s+and\s+\w+)?"
    r"[\W_]{0,3}:[\W_]{0,3}(?-i:[A-Z])"
    r"|with\s+(?:additional\s+)?reporting\s+(?:by|from)\b"
    r"|(?:by|from)\s+(?-i:[A-Z][\w.'-]+(?:\s+[A-Z][\w.'-]+){0,3})\s*(?:,\s*)?(?:\(?(?:reuters|ap|afp|"
    r"associated press|bloomberg|dpa|anadolu|xinhua|tass)\)?)?(?:\s*[|,·•]?\s*(?:\d{1,2}[:.]\d{2}|"
    r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|updated\b|published\b).{0,60})?\s*$"
    r"|\^?eds?:)"
    r"|(?-i:[A-Z]{1,3})\d{3,5}\b|\s*ap-[a-z]{2}-",
    _I)
_CREDIT_ANY = re.compile(
    r"\b(?:contributed|contributing)\s+(?:to\s+)?(?:this|the)\s+(?:report|story|article)"
    r"|\(\s*(?:editing|reporting|writing)\s+by\b"
    r"|^\W*(?-i:[A-Z])[A-Za-z .'-]{1,60}\breported\s+from\s+(?-i:[A-Z])",
    _I)


# How a credit line can start (reuters, ap, afp, additional, reporting, research, writing, written, with,
# editing, eds, compiled, translated, by, from, photography, graphics, design); slugs ("V4644") have a
# digit among their first characters. A cheap test before the regex.
_CREDIT_INITIALS = frozenset("re ap af ad wr wi ed co tr by fr ph gr de".split())
_LEAD = " \t_*^(-–—•·\"'“”[#"
_DIGITS = frozenset("0123456789")


def credit_line(text: str) -> bool:
    """A wire credit or slug line: part of the story, never cut."""
    head = text.lstrip(_LEAD)[:2].lower()
    if (head in _CREDIT_INITIALS or not _DIGITS.isdisjoint(text[1:6]) or not head.isalnum()) \
            and _CREDIT_START.match(text):
        return True
    low = text.lower()
    return ("contribut" in low or "reported from" in low or ("(" in text and " by" in low)) \
        and bool(_CREDIT_ANY.search(text))


# --- strong single-line cues, by kind -------------------------------------------------------------
_MONEY = r"(?:[$€£]\s?\d+|\d+\s?(?:usd|eur|euros?|dollars|pounds|rubles))"
_PERIOD = r"(?:a|per|each|every|/)\s?(?:month|week|year)|monthly|annually|one-time|one-off|recurring"
_DONAT = "donate donates donated donating donation donations "
_CONTRIB = "contribute contributes contributed contributing contribution contributions contributor contributors "
_SUPPORT = "support supports supported supporting supporter supporters "

# (kind, trigger words, pattern). A pattern is searched only in lines containing one of its trigger words
# (lower case, punctuation split off: see _words); the words are ones the pattern cannot match without.
# Patterns are grouped by kind, in priority order: the first kind with a matching pattern wins.
_STRONG_TABLE: list[tuple[str, str, str]] = [
    ("donation_appeal", "message", r"^\W*a message from\b.{0,60}:\s*$"),
    ("donation_appeal", "dear", r"^\W*dear (readers?|friends?|subscribers?)\b.{0,3}$"),
    ("donation_appeal", "remind", r"\bremind me later\b"),
    ("donation_appeal", "donate donation give support pitch member supporter patron donor join membership gift "
                        "gifts",
     r"^\W*(donate|donate now|donate today|make a donation|give now|give today|support us|"
     r"support (our|independent) (work|journalism|newsroom|reporting)|i'?ll pitch in|pitch in|"
     r"become a (member|supporter|patron|donor)|join(/renew)?\s*(-|–)?\s*(pledge)?|membership|"
     r"(major|planned|corporate|foundation)[/ a-z]*gifts?|ways to give)\W*$"),
    ("donation_appeal", _SUPPORT + _DONAT + _CONTRIB + "chip pitch member",
     r"\b(please|you can|consider|would you|will you)\b.{0,40}\b(support|donat\w+|contribut\w+|"
     r"chip in|pitch in|become a (member|supporter))\b.{0,40}\b(us|our|today|monthly|now)\b"),
    ("donation_appeal", "support donate give fund",
     r"\b(support|donate to|give to|fund)\s+(us|our (work|journalism|newsroom|reporting|mission)|"
     r"independent (journalism|media|news|reporting))\b.{0,80}(" + _MONEY + "|" + _PERIOD + r"|today|now)"),
    ("donation_appeal", _SUPPORT + _DONAT + _CONTRIB + "help gift gifts member members membership",
     _MONEY + r".{0,30}\b(" + _PERIOD + r")\b.{0,80}\b(support|help us|donat|contribut|gift|member)"),
    ("donation_appeal", "support gift " + _DONAT + _CONTRIB + "member members membership",
     r"\b(support|donat\w+|contribut\w+|gift|member\w*)\b.{0,60}" + _MONEY + r"\s?(" + _PERIOD + ")"),
    ("donation_appeal", "reader-funded reader-supported member-funded member-supported funded supported",
     r"\b(reader|member)[- ](funded|supported)\b.{0,80}\b(contribut\w+|donat\w+|support|gift)\b"),
    ("donation_appeal", "survive depend depends",
     r"\bwon'?t survive without (you|your support)\b|\bdepends? on (you|readers like you|your support)\b"),
    ("donation_appeal", "supporter member subscriber donor", r"\balready (a|an) (supporter|member|subscriber|donor)\?"),
    ("donation_appeal", "tax-deductible deductible",
     r"\b(your|every) (donation|gift|contribution)s?\b.{0,60}\btax[- ]deductible\b"
     r"|\btax[- ]deductible (donation|gift|contribution)s? (to us|today)\b"),
    ("donation_appeal", "contribution contributions donation donations gift gifts",
     r"\b(every contribution|your (donation|contribution|gift)s?\b.{0,40}(help|make|keep))"),
    ("donation_appeal", "supporting", r"\bby supporting\b.{0,60}\byou('re| are)\b"),
    ("donation_appeal", "support", r"^\W*support\s+(?-i:(the\s+)?[A-Z][\w&'-]*(\s+[A-Z][\w&'-]*){0,3})\W*(→|»|>)?\s*$"),
    ("donation_appeal", "give donate contribute chip", r"\breaders who (give|donate|contribute|chip in)\b"),
    ("donation_appeal", "journalism", r"\bmake our\b.{0,50}\bjournalism possible\b"),

    ("newsletter_prompt", "subscribe sign newsletter newsletters podcast podcasts join app subscriber subscribed "
                          "email try",
     r"^\W*(subscribe|subscribe now|subscribe today|sign up|sign up now|sign up here|sign up free|"
     r"newsletters?|newsletters? & alerts|podcasts?|join now|get the app|download the app|"
     r"become a subscriber|subscribe to (our )?newsletters?|you'?re subscribed!?|email \*|"
     r"sign up now no thanks|already a subscriber\?.{0,30}|try \d+ days free.{0,40})\W*$"),
    ("newsletter_prompt", "sign subscribe",
     r"\b(sign up|subscribe)\b.{0,80}\b(newsletter|briefing|inbox|email|alerts?|digest)\b"),
    ("newsletter_prompt", "newsletter briefing digest",
     r"\b(newsletter|briefing|digest)\b.{0,120}\b(sign up|subscribe|delivered|in your inbox)\b"),
    ("newsletter_prompt", "inbox", r"\b(in|check|straight to|to) your inbox\b"),
    ("newsletter_prompt", "app qr", r"\bdownload the\b.{0,30}\bapp\b|\bscan the qr code\b"),
    ("newsletter_prompt", "subscribe access",
     r"\bsubscribe (now )?to (keep|continue) reading\b|\bfor full access\b|\bunlimited (digital )?access\b"),
    ("newsletter_prompt", "breaking alerts notifications",
     r"\bsend (you )?(breaking news|news alerts)\b|\bturn on (push )?notifications\b"),
    ("newsletter_prompt", "sign", r"^\W*#*\s*sign up to\b"),
    ("newsletter_prompt", "validation", r"\bthis field is for validation purposes\b"),
    ("newsletter_prompt", "newsletter newsletters",
     r"^(?!\W*(the|a|an|his|her|their|its|this|that)\b)\W*(\w+[ -]){0,3}newsletters?(\s+\w+){0,2}\W*$"),
    ("newsletter_prompt", "signing", r"\bby signing up\b"),
    ("newsletter_prompt", "subscribe sign", r"^\W*(subscribe|sign up)\b[^.,;]{0,40}$"),
    ("newsletter_prompt", "type email e-mail", r"^\W*type your email\b|^\W*(enter )?(your )?e-?mail address\W*$"),
    ("newsletter_prompt", "enter", r"\benter your e-?mail\b"),
    ("newsletter_prompt", "subscribe",
     r"\bsubscribe to (our|the) (magazine|channel|newsletters?|podcast|print edition|updates)\b"),
    ("newsletter_prompt", "sign", r"\bsign up (here |now |today )?(for|to) (a|our|the) (weekly|daily|free|monthly)\b"),
    ("newsletter_prompt", "stories news updates headlines",
     r"\b(our|the latest|the best|top) (stories|news|updates|headlines) (by|via) e-?mail\b"),

    ("share_prompt", "share copy link sharing gift print follow facebook",
     r"^\W*(share|share this( article| story| page)?|share on \w+|copy (the |article )?link|"
     r"link copied!?|thanks for sharing!?|share full article|gift (this )?article|print this( article)?|"
     r"follow us( on social media)?|facebook tweet email( link)?|share (it|this)\W{0,3}|share via)\W*$"),
    ("share_prompt", "share",
     r"^\W*share (this|it|on)\b.{0,60}(facebook|twitter|x|email|whatsapp|telegram|friend|someone|new window)"),
    ("share_prompt", "facebook twitter x linkedin whatsapp telegram email reddit",
     r"^\W*(facebook|twitter|x|linkedin|whatsapp|telegram|email|reddit)\s*(\||·|,)\s*"
     r"(facebook|twitter|x|linkedin|whatsapp|telegram|email|reddit)"),
    ("share_prompt", "follow",
     r"\bfollow\b.{0,40}\bon (telegram|twitter|x|facebook|instagram|whatsapp|bluesky|threads|google news)\b"
     r"(.{0,30})$"),
    ("share_prompt", "share", r"\bshare it with (someone|a friend|friends)\b"),
    ("share_prompt", "opens", r"\bopens in (a )?new window\b"),
    ("share_prompt", "email send", r"^\W*(email|send) (a link|this) to a friend\b"),
    ("share_prompt", "share", r"^\W*share this \w+\W*$"),
    ("share_prompt", "print email share", r"^\W*(print|email|share|save) this (story|article|page|post)\W*$"),
    ("share_prompt", "preferred",
     r"\bas (a |your )?preferred source\b|\bpreferred (source )?on google\b"),
    ("share_prompt", "join", r"^\W*join us on (telegram|facebook|whatsapp|x|twitter|instagram|youtube|viber)\W*$"),

    ("cookie_notice", "cookie cookies",
     r"\bcookies?\b.{0,80}\b(settings|policy|preferences|consent|accept|use|necessary|store|website)\b"),
    ("cookie_notice", "cookie manage accept reject agree apply confirm privacy personal checkbox",
     r"^\W*(cookie settings|cookie policy|manage (consent|cookies|preferences).{0,30}|"
     r"accept( all)?( cookies)?|reject all|agree|i agree|apply cancel|confirm my choices|"
     r"privacy (policy|settings|preferences|center)|do not sell or share my personal information|"
     r"your privacy choices|checkbox label label)\W*$"),
    ("cookie_notice", "gpc privacy personal",
     r"\b(global privacy control|gpc) signal\b|\bpersonal (information|data)\b.{0,60}\b(sold|sell|share|"
     r"shared|targeted|advertising)\b"),
    ("cookie_notice", "agree consent accept",
     r"\bby (clicking|continuing|using|submitting|registering)\b.{0,80}\b(agree|consent|accept)\b"),

    ("ad_marker", "advertisement advertising ad ads sponsored sponsors paid promoted story article continue skip "
                  "view thanks supported feedback",
     r"^\W*(advertisement|advertising|ad|sponsored( content)?|paid (post|content)|promoted( content)?|"
     r"story continues below( this)? (ad|advertisement)|article continues (below|after) (this )?"
     r"(ad|advertisement)|continue reading below|skip advertisement|view all sponsors|"
     r"thanks to our sponsors:?|ad feedback|supported by|tired of too many ads\?|go ad free( now)?)\W*$"),

    ("gallery_furniture", "caption image gallery slideshow",
     r"^\W*(hide caption|show caption|toggle caption|expand image|enlarge (this )?image|"
     r"view gallery|open gallery|slideshow)\W*$"),
    ("gallery_furniture", "photo photos image picture video",
     r"^\W*(photo|photos|image|picture|video)( credit)?\s*:\s*\S.{0,80}$"),
    ("gallery_furniture", "getty afp reuters ap shutterstock epa anadolu sputnik",
     r"^\W*[^.!?]{2,60}(/|\bvia\b)\s*(getty images|afp|reuters|ap|shutterstock|epa|anadolu|sputnik)\b"
     r"[^.!?]{0,30}$"),
    ("gallery_furniture", "staff stringer freelancer pool",
     r"^\W*(?-i:[A-Z])[^.!?]{2,50}\s+-\s+(staff|stringer|freelancer|pool),\s+(?-i:[A-Z]{2,6})\s*$"),
    ("gallery_furniture", "©", r"^\s*©\s*[^.!?]{2,60}$"),
    ("gallery_furniture", "getty shutterstock alamy unsplash istock",
     r"^[^.!?]{2,60}(/|//|\|)\s*(getty images|shutterstock|alamy|unsplash|istock)\b\W*$"),

    ("related_links", "read see related more further recommended most like trending latest top load show "
                      "editors editors' editor's editor’s pick picks also watch listen useful other interesting "
                      "popular miss next keep explore missed stories",
     r"^\W*(read more|read also|see also|related|related( stories| articles| content| coverage| topics)?|"
     r"more (on this|from|stories|coverage|news)|further reading|recommended( for you)?|"
     r"most (read|popular|viewed|shared)( \w+){0,2}|you (may|might) (also )?like|trending( now| stories)?|"
     r"latest( news| stories| articles| headlines)?|top stories|load more|see more|show more|"
     r"what to read next|editors'? picks?|also read|watch:?|listen:?|useful reading|"
     r"other topics you might like|interesting reads|popular (from|in|on)\b.{0,30}|"
     r"more (from|in) \w+( \w+){0,3}|latest (in|from) \w+( \w+){0,3}|don'?t miss|"
     r"read next|keep reading|in other news|more to explore|you may have missed|recommended stories|"
     r"more for you)\W*[:\-–—]?\s*$"),
    ("related_links", "read see related also more watch listen recommended editor's editor’s editors pick",
     r"^\W*(read more|read also|see also|related|also read|more|watch|listen|recommended|editor'?s pick)"
     r"\s*[:|»>\-–—]\s*\S"),
    ("related_links", "[", r"^\W*(\*\s*)?\[[^\]]*\]\(\s*<?https?://"),
    ("related_links", "coverage", r"^\W*follow\b.{0,60}\bcoverage\b.{0,60}(https?://|at\s+\S+\.\w)"),
    ("related_links", "more", r"^\W*more\b.{0,40}:\s*https?://"),
    ("related_links", "read more",
     r"(?-i:Read more)\W{0,3}$|^\W*read more\b|^\W*(?-i:Read more)(?=[A-Z])|^\W*read (more|all)\b[^.!?]{0,60}$"),
    ("related_links", "click tap", r"^\W*(click|tap) here\b"),

    ("author_bio", "reporter correspondent editor writer journalist columnist contributor fellow reporters "
                   "correspondents editors writers journalists columnists contributors fellows",
     r"^(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){1,3})\s+(is|was)\s+(a|an|the)\b.{0,80}\b(reporter|correspondent|"
     r"editor|writer|journalist|columnist|contributor|fellow)s?\b.{0,400}$"),
    ("author_bio", "writing reporting",
     r"^(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){0,3})\b.{0,40}\b(is|was) an?\b.{0,60}\b(writing|reporting) (for|from)\b"),
    ("author_bio", "reached", r"^(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){1,3}) can be reached at\b"),
    ("author_bio", "tips", r"\b(story tips|tips and ideas) .{0,40}\bcan be sent to\b"),
    ("author_bio", "follow", r"\bfollow (him|her|them) on\b.{0,30}\b(twitter|x|bluesky|instagram)\b"),
    ("author_bio", "author authors bio",
     r"^\W*(about the authors?|meet the author|author bio|more from this author|see full bio|"
     r"more by this author|view author)\W*$"),
    ("author_bio", "writes reports",
     r"^\W*_?(?-i:[A-Z][\w.'-]+(\s+[A-Z][\w.'-]+){1,3}) (writes|reports) (for|from|about|on)\b.{0,120}$"),

    ("other_boilerplate", "rights © copyright",
     r"\ball rights reserved\b|^\W*©\s*\d{4}|^\W*copyright\s*(©\s*)?\d{4}"),
    ("other_boilerplate", "skip menu search close sign log account back top home terms contact about "
                          "accessibility site sitemap careers advertise corrections comment comments placeholder "
                          "article listen min minute leave cancel loading write post view filed tagged tags topics "
                          "categories return open submit permission show see invalid browser read",
     r"^\W*(skip to (main )?content|skip to navigation|main menu|menu|search|close|sign in|log in|"
     r"log out|my account|back to top|home|terms of (use|service)|contact us|about us|"
     r"accessibility( statement)?|site map|sitemap|careers|advertise( with us)?|corrections|"
     r"comments?|view comments|placeholder while article actions load|end of article|"
     r"listen to (this )?article|\d+ min(ute)? read|leave a (comment|reply)|cancel reply|"
     r"loading comments\W*|write a comment\W*|post a comment|view story comments|"
     r"(filed under|tagged with|tags|topics|categories)\s*:.{0,60}|return to top of page|"
     r"open search bar|submit search|search this site|site search|open user controls|"
     r"you have permission to edit this article|log in using your account|"
     r"don'?t have an account\?|sign up today|show me more content\b.{0,40}|"
     r"see (the )?original( article| post)?|invalid video url|your browser does not support.{0,40})\W*$"),
    ("other_boilerplate", "trust opens", r"\btrust principles\b|^.{0,60}\bopens new tab\W*$"),
    ("other_boilerplate", "originally appeared",
     r"\boriginally (published|appeared) (on|in|at|by)\b|\bthis (article|story) (first|originally) appeared\b"),
    ("other_boilerplate", "originally", r"^\W*originally published\W*(on|in|at)?\W*$"),
    ("other_boilerplate", "views", r"\bthe views expressed\b.{0,80}\b(do not|don'?t) (necessarily )?reflect\b"),
    ("other_boilerplate", "opinions", r"\bopinions expressed\b.{0,80}\b(solely|do not|don'?t)\b"),
    ("other_boilerplate", "expresses reflects represents",
     r"\b(expresses|reflects|represents) (only )?the (opinions?|views?) of the authors?\b"),
    ("other_boilerplate", "published creative republished",
     r"\bpublished under\b.{0,40}\blicen[cs]e\b|^\W*creative commons\b|\brepublished from\b.{0,60}\blicen[cs]e\b"),
    ("other_boilerplate", "cookies", r"\bwe use cookies\b"),
    ("other_boilerplate", "powered", r"\bpowered by (wordpress|wp|drupal|arc xp)\b"),
    ("other_boilerplate", "auto-published auto-generated",
     r"\bthis (post|story|article) has been auto-published\b|\bauto-generated from a syndicated feed\b"),
    ("other_boilerplate", "code", r"\b(story|article) code\s*:\s*\d+"),
    ("other_boilerplate", "updated", r"^\W*(this|the) (story|article) has been updated\b"),
    ("other_boilerplate", "commission", r"\bwe may earn (a )?commission\b"),
    ("other_boilerplate", "editor's editor’s", r"^\W*editor'?s note\b"),
    ("other_boilerplate", "requested", r"\b(page|content) you requested (does not|doesn't|could not|cannot)\b"),
]
# A kind's patterns describe short lines (buttons, credits, headers): longer lines are not searched.
# Beyond 400 characters only appeals are looked for (a long paragraph is story unless it asks for money).
_MAX_LEN = {"gallery_furniture": 150, "ad_marker": 100, "share_prompt": 200, "related_links": 300,
            "donation_appeal": 1 << 30}


def _alternatives(rx: str) -> list:
    """The top-level ``|`` branches of a pattern (escapes, groups and classes respected)."""
    out, depth, cls, start, i = [], 0, False, 0, 0
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if cls:
            cls = c != "]"
        elif c == "[":
            cls = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(rx[start:i])
            start = i + 1
        i += 1
    out.append(rx[start:])
    return out


def _matcher(rx: str):
    """A compiled branch: ``match`` for a branch anchored at the line start (``search`` would try every
    position, and one unanchored branch in an alternation makes the engine scan with all of them)."""
    if rx.startswith("^"):
        return re.compile(rx[1:], _I).match
    return re.compile(rx, _I).search


# (kind, max line length, branch matchers) per table row
_PATTERNS: tuple = tuple((kind, _MAX_LEN.get(kind, 400), tuple(_matcher(b) for b in _alternatives(rx)))
                         for kind, _, rx in _STRONG_TABLE)
_WORD_PATTERNS: dict[str, tuple[int, ...]] = {}
for _i, (_kind, _words, _) in enumerate(_STRONG_TABLE):
    for _w in _words.split():
        _WORD_PATTERNS[_w] = _WORD_PATTERNS.get(_w, ()) + (_i,)
_TRIGGER_SET = frozenset(_WORD_PATTERNS)
# Punctuation split off words before the lookup (a regex: str.translate is slow on non-ASCII text);
# "©" and "[" are trigger words of their own (_SYMBOLS).
_PUNCT = re.compile(r"[.,:;!?\"“”‘()«»<>|/\\*#_=+~^{}…–—•·\[\]$€£©]")
_SYMBOLS = ("©", "[")


def _words(text: str) -> list:
    """Lower-case words of a line, punctuation split off."""
    return _PUNCT.sub(" ", text.lower()).split()



# Short lines compared whole (see line_key) with a kind's exact vocabulary: site furniture that is
# never a story paragraph on its own, except the _SOFT_EXACT ones.
_EXACT: dict[str, str] = {}
for _kind, _phrases in {
    "share_prompt": "share|share this|share this article|share this story|share on facebook|share on twitter|"
                    "share on x|share on whatsapp|share on linkedin|share on telegram|share on reddit|"
                    "share via email|copy link|copy article link|link copied|gift article|gift outline|"
                    "giftoutline gift article|giftoutline|print|print this article|facebook tweet email link|"
                    "share it|share full article|email this|save article|save|follow us|follow author",
    "other_boilerplate": "skip to main content|skip to content|skip to navigation|main menu|menu|open menu|"
                         "close menu|search|site search|close|close panel|sign in|log in|login|log out|logout|"
                         "my account|dashboard|back to top|return to top|return to top of page|"
                         "terms of use|terms of service|terms and conditions|terms & conditions|contact us|"
                         "about us|accessibility|accessibility statement|site map|sitemap|careers|"
                         "advertise with us|comments|comment|view comments|leave a comment|leave a reply|"
                         "cancel reply|placeholder while article actions load|end of article|"
                         "listen to this article|arrowright|arrow right|right arrow|left arrow|"
                         "right arrow button icon|chevron left icon|chevron right icon|"
                         "tags|tags:|tagged with|filed under|topics|topics:|categories|"
                         "open search bar|submit search|search this site|open user controls|"
                         "loading comments|write a comment|view story comments|"
                         "originally published on|see all topics|view all|see all|view more|"
                         "licensing & reprints|reprints & permissions|privacy policy|privacy|cookie policy|"
                         "do not sell or share my personal information|your privacy choices",
    "newsletter_prompt": "subscribe|subscribe now|subscribe today|sign up|sign up now|sign up here|sign up free|"
                         "newsletter|newsletters|get the app|download the app|become a subscriber|"
                         "type your email|enter your email|email address|continue reading",
    "ad_marker": "advertisement|advertising|ad|sponsored|sponsored content|paid content|promoted|"
                 "skip advertisement|ad feedback|story continues below advertisement|"
                 "article continues below advertisement|continue reading below",
    "related_links": "read more|read also|see also|related|related stories|related articles|related content|"
                     "related coverage|related topics|more on this topic|more on this|more stories|"
                     "further reading|recommended|recommended for you|most read|most popular|most viewed|"
                     "trending|trending now|latest|latest news|latest stories|latest articles|latest headlines|"
                     "top stories|load more|see more|show more|what to read next|editors picks|editor's picks|"
                     "also read|useful reading|other topics you might like|interesting reads|more to explore|"
                     "you may also like|you might also like|read next|don't miss|don’t miss",
    "gallery_furniture": "hide caption|show caption|toggle caption|expand image|enlarge image|view gallery|"
                         "open gallery|slideshow|photos|photo|image|images|video|gallery|credit",
    "author_bio": "about the author|about the authors|meet the author|author bio|see full bio|more by this author",
    "cookie_notice": "accept|accept all|accept cookies|reject all|agree|i agree|manage cookies|manage preferences|"
                     "cookie settings|confirm my choices",
    "donation_appeal": "donate|donate now|donate today|make a donation|give now|support us|i'll pitch in|"
                       "i’ll pitch in|pitch in|ways to give|become a member|become a supporter",
}.items():
    for _p in _phrases.split("|"):
        _EXACT[_p] = _kind
# Lines that are furniture on a page but also plausible as a one-word story subheading or an inline
# link: soft (cut around the story, kept inside it).
_SOFT_EXACT = frozenset(
    "photo|photos|image|images|video|gallery|credit|latest|trending|recommended|related|print|save|"
    "topics|tags|categories|comment|comments|privacy".split("|"))
_SOCIAL = frozenset(
    "facebook twitter x linkedin whatsapp telegram email e-mail reddit bluesky threads instagram youtube tiktok "
    "pinterest flipboard mastodon sms print save gift follow comment share rss tumblr nextdoor post copy "
    "messenger vkontakte vk odnoklassniki viber line weibo wechat snapchat".split())

_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_END_CHARS = frozenset(".!?…")
_CLOSERS = "\"'”’)]*_ "
_NUMERIC = re.compile(r"\d")
_ALPHA = re.compile(r"[^\W\d_]")
_DATE_TIME = re.compile(
    r"^\W*((published|updated|posted|last updated|modified)\s*:?\s*)?"
    r"((mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?"
    r"(\d{1,2}[:.]\d{2}(\s?[ap]\.?m\.?)?(\s?[A-Z]{2,4}([+-]\d{1,2}(:\d{2})?)?)?|(today|yesterday) at\b.{0,25}|"
    r"(\d{1,2}\s+)?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(\s+\d{1,2})?,?\s+\d{4}"
    r"(,?\s*(at\s+)?\d{1,2}[:.]\d{2}.*)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(,?\s+\d{1,2}[:.]\d{2}.*)?|"
    r"\d{4}-\d{2}-\d{2}(t[\d:+.-]+)?|updated\b.{0,40}|published\b.{0,40}|\d+ (minutes?|mins?|hours?|hrs?|days?) ago|"
    r"\d+ min(ute)?s?( read)?)"
    r"\W*$",
    _I)
_BULLETS = frozenset(("* ", "- ", "• ", "· ", "+ "))
_FULL_STOP = frozenset(c + "." for c in "abcdefghijklmnopqrstuvwxyz0123456789)\"'”’%")
_MASHED = re.compile(r"[a-z][A-Z]")
_GALLERY_COUNT = re.compile(r"^\W*(item \d+ of \d+|\d+\s*of\s*\d+|of \d+)\W*$", _I)
_DATE_WORDS = frozenset("today yesterday updated published posted modified last mon monday tue tuesday wed "
                        "wednesday thu thursday fri friday sat saturday sun sunday".split())
# "Kim Shiflett/NASA", "UNICEF/Ashley Gilbertson": a photo credit alone on a line.
_PHOTO_CREDIT = re.compile(r"^(?-i:[A-Z])[\w.'&-]*(\s+[\w.'&-]+){0,3}\s?/\s?(?-i:[A-Z])[\w.'&-]*(\s+[\w.'&-]+){0,3}$")
_BY_WORDS = frozenset(("by", "written", "words", "story"))
_BYLINE = re.compile(r"^\W*(by|written by|words by|story by)\W*$", _I)


def line_key(text: str) -> str:
    """The comparison form of a short line: lower case, outer punctuation off, spaces collapsed."""
    return " ".join(_words(text))


def sentence_end(text: str) -> bool:
    """Ends like a sentence: terminal punctuation, possibly inside closing quotes or brackets."""
    t = text.rstrip(_CLOSERS)
    return bool(t) and t[-1] in _END_CHARS


def word_count(text: str) -> int:
    return len(text.split())


def is_prose(text: str) -> bool:
    """A story-like sentence: long enough and ending like a sentence (or very long)."""
    words = len(text.split())
    if words >= 30:
        return True
    return words >= 7 and sentence_end(text)


def _strong(text: str, toks, gated: bool = True) -> str | None:
    """The kind of the first pattern (in table order) matching the line, among those its words trigger."""
    if gated:
        hits = _TRIGGER_SET.intersection(toks)
        for sym in _SYMBOLS:
            if sym in text:
                hits = hits | {sym}
        if not hits:
            return None
        idx: set = set()
        for h in hits:
            idx.update(_WORD_PATTERNS[h])
        order = sorted(idx)
    else:
        order = range(len(_PATTERNS))
    if text[:1] in "\"“'‘«":  # a quotation: someone speaking in the story
        return None
    bare = _QUOTED.sub(" ", text) if ("\"" in text or "“" in text) else text
    bare = bare.replace("’", "'")
    n = len(text)
    for i in order:
        kind, max_len, branches = _PATTERNS[i]
        if n <= max_len:
            for branch in branches:
                if branch(bare):
                    return kind
    return None


def strong_cue(text: str) -> Cue | None:
    """The cue of a line when it is explicit furniture on its own (``STRONG``), else None.

    The cheap subset of :func:`classify` used for hard-wrapped wire copy, where only explicit cues count.
    """
    toks = _words(text)
    if len(toks) <= 8:
        key = " ".join(toks)
        kind = _EXACT.get(key)
        if kind is not None and key not in _SOFT_EXACT:
            return Cue(STRONG, kind)
        if _GALLERY_COUNT.match(text):
            return Cue(STRONG, "gallery_furniture")
    kind = _strong(text, toks)
    return None if kind is None else Cue(STRONG, kind)


def classify(text: str) -> Cue:
    """The cue of one paragraph (stripped line)."""
    if text.startswith("^") or credit_line(text):
        return Cue(NONE, None)
    return classify_unprotected(text)


def classify_unprotected(text: str) -> Cue:
    """:func:`classify` for a line already known not to be a credit line."""
    toks = _words(text)
    nw = len(text.split())
    c0 = text[0]
    if c0.islower() and nw <= 3:  # the tail of a sentence broken across lines
        return Cue(NONE, None)
    digit = _NUMERIC.search(text) is not None
    if nw <= 8:
        key = " ".join(toks)
        kind = _EXACT.get(key)
        if kind is not None:  # a label with a colon ("Related:", "Photo:") is explicit
            return Cue(SOFT if key in _SOFT_EXACT and not text.endswith(":") else STRONG, kind)
        if toks and _SOCIAL.issuperset(toks):
            return Cue(SOFT, "share_prompt")
        if (digit or (toks and toks[0] in _DATE_WORDS)) and _DATE_TIME.match(text):
            return Cue(SOFT, "other_boilerplate")
        if digit and _GALLERY_COUNT.match(text):
            return Cue(STRONG, "gallery_furniture")
        if toks and toks[0] in _BY_WORDS and _BYLINE.match(text):
            return Cue(SOFT, "other_boilerplate")
        if c0 == "@" and nw == 1:  # a social-media handle
            return Cue(SOFT, "share_prompt")
        if "/" in text and _PHOTO_CREDIT.match(text):
            return Cue(SOFT, "gallery_furniture")
    kind = _strong(text, toks)
    if kind is not None:
        return Cue(STRONG, kind)
    if text[:2] in _BULLETS and nw < 30 and not (nw >= 12 and text.rstrip(_CLOSERS)[-2:] in _FULL_STOP):
        return Cue(NAV, "related_links")  # a list item (a link list), unless a sentence (key points)
    if c0 == "#":  # a (markdown) heading: the headline, a subheading, another story's title
        return Cue(NAV, "related_links" if nw >= 4 else "other_boilerplate")
    ends = sentence_end(text)
    if nw >= 7 and not ends and len(_MASHED.findall(text)) >= 3:  # link texts run together: "NewsWorld NewsSport"
        return Cue(NAV, "other_boilerplate")
    if nw >= 30 or (nw >= 7 and ends):
        if c0 not in "\"“'‘«" and _weak_appeal(toks, text):
            return Cue(WEAK, "donation_appeal")
        return Cue(PROSE, None)
    if nw == 0:
        return Cue(NONE, None)
    if digit:  # tables, figures: story data, not menus
        if len(_NUMERIC.findall(text)) > len(_ALPHA.findall(text)):
            return Cue(NONE, None)
    elif _ALPHA.search(text) is None:  # separators, symbols
        return Cue(NONE, None)
    return Cue(NAV, "related_links" if nw >= 4 else "other_boilerplate")


# Words that hint at an appeal but also occur in news: such a sentence is cut only next to strong appeal
# lines (see strip).
_WEAK_APPEAL = re.compile(
    r"\b(we|our|us)\b|\b(support|donat\w+|contribut\w+|independent|journalis\w+|readers?|thank you|your help)\b",
    _I)
_WEAK_WORDS = frozenset("we our us support independent reader readers thank help".split())


def _weak_appeal(toks: list, text: str) -> bool:
    if _WEAK_WORDS.isdisjoint(toks):
        low = text.lower()
        if "donat" not in low and "contribut" not in low and "journalis" not in low:
            return False
    bare = _QUOTED.sub(" ", text) if ("\"" in text or "“" in text) else text
    return bool(_WEAK_APPEAL.search(bare))
