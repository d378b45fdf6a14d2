"""HTML to plain text (paragraphs on lines) for the boilerplate stage.

Main-content extraction is trafilatura's, chosen by measurement on our data (see the commit that added
this module): on gold articles' paragraphs wrapped in HTML with navigation, footer and appeal furniture,
trafilatura kept 99.3 % of story characters and 1.3 % of furniture characters, jusText 94.4 % and 19.0 %.

Safety: the document is parsed by *our* lxml parser -- HTML mode (no DTD processing, so no entity
expansion), ``no_network=True``, comments and processing instructions dropped, ``huge_tree=False`` -- after
any DOCTYPE with an internal subset is removed; ``<script>``, ``<style>`` and friends are removed before
extraction; nothing is fetched or executed. Inputs beyond :data:`MAX_HTML_CHARS` are truncated first, so a
20 MB page costs a bounded, small amount of time.

When trafilatura finds no main content (short fragments such as a wire item's ``<p>`` body) the text of the
block elements is used instead.
"""

from __future__ import annotations

import logging
import re

import lxml.html
from lxml import etree

__all__ = ["html_to_text", "MAX_HTML_CHARS"]

_LOGGER = logging.getLogger(__name__)

MAX_HTML_CHARS = 1_000_000
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_DROP = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math", "form",
         "button", "input", "select", "textarea")
_BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "td", "th", "dd", "dt",
           "section", "article", "header", "footer", "br", "tr", "figcaption", "caption"}
_WS = re.compile(r"[ \t\r\f\v\u00a0]+")


def _parser() -> lxml.html.HTMLParser:
    return lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, huge_tree=False,
                                recover=True, default_doctype=False)


def _parse(html: str):
    html = _XML_DECL.sub("", html[:MAX_HTML_CHARS])
    html = _DOCTYPE.sub("", html)
    if not html.strip():
        return None
    try:
        root = lxml.html.document_fromstring(html, parser=_parser())
    except (etree.ParserError, ValueError) as exc:
        _LOGGER.debug("unparseable HTML (%s)", exc)
        return None
    for el in root.iter(*_DROP):
        el.drop_tree() if el.getparent() is not None else None
    # iter() above is lazy over a mutating tree: sweep again until none remain.
    for el in list(root.iter(*_DROP)):
        if el.getparent() is not None:
            el.drop_tree()
    return root


def _block_text(root) -> str:
    parts: list[str] = []

    def walk(el):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _BLOCKS:
            parts.append("\n")
        if el.text and tag not in _DROP:
            parts.append(el.text)
        for child in el:
            walk(child)
        if tag in _BLOCKS:
            parts.append("\n")
        if el.tail:
            parts.append(el.tail)

    walk(root)
    return "".join(parts)


def _tidy(text: str) -> str:
    lines = (_WS.sub(" ", ln).strip() for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln)


def html_to_text(html: str) -> str:
    """The main text of an HTML page or fragment, one paragraph per line (no blank lines)."""
    if not html or not html.strip():
        return ""
    root = _parse(html)
    if root is None:
        return ""
    import trafilatura  # deferred: a heavy import, only needed for HTML input

    text = None
    try:
        text = trafilatura.extract(root, include_comments=False, include_tables=False, include_images=False,
                                   include_links=False, with_metadata=False, deduplicate=False)
    except Exception as exc:  # noqa: BLE001 - the fallback below still gives the text
        _LOGGER.debug("trafilatura failed (%s: %s); using block text", type(exc).__name__, exc)
    if not text or not text.strip():
        text = _block_text(root)
    return _tidy(text)
