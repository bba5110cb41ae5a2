"""Web pages: the article, not the site.

trafilatura (well kept, measured best of the candidates on the pages in
``tests/data/web-pages``; docs/web-pages.md) finds the main content: navigation, headers,
footers, asides, menus, cookie and newsletter banners, share bars and "related" lists are not
indexed. Its output is read as XML, so headings are sections and each paragraph, list item
and table row is a unit. A byline or dateline, which it leaves out, is found by its usual
markup and made a unit of its own after the headline. Each unit is found again in the page's
source to map it to the file's line. The extractor never fetches anything: it is given the
page's text. When it finds no article (a page of links, a fragment), the visible text by the
older rules is read instead.
"""

from __future__ import annotations

import bisect
import html as html_lib
import io
import re
from typing import Any

from assistant.formats import CELL_SEPARATOR, Reading, TextBuilder, sections_from_heads
from assistant.formats.plain import plain_units

_BYLINE = (".byline, .dateline, .article-byline, .article__byline, .story-byline, "
           "[rel=author], [itemprop=author], address")
"""Where pages put who wrote an article and when: left out by the extractor, kept here as a
unit of its own (questions ask "when was it published?")."""
_DATELINE = (".meta, .article-meta, .post-meta, .entry-meta, .article-date, .date, .published, "
             "[itemprop=datePublished], time")
"""Where pages put an article's date when they name no byline ("Analysis | 22 May 2025"):
taken only when it holds a year, so a comment's "2 hours ago" is not."""
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_OUTSIDE_ARTICLE = {"nav", "footer", "aside", "header"}
_NEVER_SHOWN = ("template, noscript, [hidden], [aria-hidden=true], script, style, svg, "
                "iframe, object")
"""Not shown to a reader (or not text): removed before the extractor reads the page."""


def read_html(html: str) -> Reading:
    from selectolax.lexbor import LexborHTMLParser  # only when a web page is read

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _WS.sub(" ", title_node.text()).strip() if title_node else ""
    for node in tree.css(_NEVER_SHOWN):
        node.decompose()
    b = TextBuilder()
    root = tree.root
    main = _extracted(tree.html or "") if root is not None and _shallow(root) else None
    if main is not None:
        _write(b, main, 1)
    if b.units:
        byline = _byline(tree)
        reading = b.reading(title)
        if byline and byline not in reading.text:
            reading = _with_byline(reading, b, byline)
    else:
        text, heads, fallback_title = rule_based_text(html)
        title = title or fallback_title
        if heads and heads[0][0] > 0:
            heads.insert(0, (0, 0, title))
        sections = sections_from_heads(heads, len(text))
        reading = Reading(text=text, title=title, sections=sections,
                          units=plain_units(text, sections), locations=[(0, 1, 0)])
    if not reading.title:
        reading.title = next((s.title for s in reading.sections), "")
    reading.locations = source_lines(html, reading)
    return reading


_PARSER_DEPTH = 250
"""libxml2, which trafilatura parses with, stops reading a page nested deeper than 256
elements (the rest of the page is lost): such a page is read whole by the rules instead."""


def _shallow(root: Any) -> bool:
    """No element of the page is nested deeper than ``_PARSER_DEPTH``."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _PARSER_DEPTH:
            return False
        child = node.child
        while child is not None:
            if child.tag != "-text":
                stack.append((child, depth + 1))
            child = child.next
    return True


def _extracted(html: str) -> Any:
    """The article as trafilatura's XML tree (its ``<main>``), or None."""
    import trafilatura  # a heavy import: only when a web page is read
    from lxml import etree

    xml = trafilatura.extract(html, output_format="xml", include_tables=True,
                              include_comments=False, include_images=False,
                              include_links=False, include_formatting=False,
                              deduplicate=False, with_metadata=False, fast=False)
    if not xml:
        return None
    root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(resolve_entities=False,
                                                                  no_network=True))
    return root.find("main")


def _text_of(node: Any) -> str:
    """An element's text with ``<lb/>`` as a line break, each line's spaces folded."""
    parts: list[str] = []

    def walk(n: Any) -> None:
        if n.text:
            parts.append(n.text)
        for child in n:
            if child.tag == "lb":
                parts.append("\n")
            elif child.tag not in ("list", "table"):
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(node)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)


def _write(b: TextBuilder, node: Any, depth: int) -> None:
    for child in node:
        tag = child.tag
        if tag == "head":
            rend = str(child.get("rend") or "h2")
            level = int(rend[1]) if len(rend) == 2 and rend[1].isdigit() else 2
            heading = " ".join(_text_of(child).split())
            if heading:
                b.heading(heading, level, 1)
        elif tag == "list":
            for item in child.findall("item"):
                text = _text_of(item)
                if text:
                    b.separate(1)
                    b.write("  " * (depth - 1) + "• ")
                    b.unit(text, 1, kind="item")
                for sub in item.findall("list"):
                    _write(b, [sub], depth + 1)
        elif tag == "table":
            header: list[str] = []
            for row in child.iter("row"):
                cells = [" ".join(_text_of(c).split()) for c in row.findall("cell")]
                text = CELL_SEPARATOR.join(c for c in cells if c)
                if not text:
                    continue
                if all(c.get("role") == "head" for c in row.findall("cell")) and not header:
                    header = cells
                    b.separate(2)
                    b.write(text)
                    continue
                b.separate(1)
                pairs = [f"{h}: {c}" if h else c
                         for h, c in zip(header or [""] * len(cells), cells, strict=False) if c]
                b.unit(text, 1, kind="row", search="; ".join(pairs))
        elif tag == "quote":
            if len(child):
                _write(b, child, depth)
            else:
                _paragraph(b, _text_of(child))
        elif tag == "code":
            text = "".join(child.itertext()).strip("\n")
            if text.strip():
                b.separate(2)
                b.unit(text, 1, kind="code")
        elif tag in ("graphic", "lb"):
            continue
        else:
            _paragraph(b, _text_of(child))


def _paragraph(b: TextBuilder, text: str) -> None:
    if text:
        b.separate(2)
        b.unit(text, 1)


def _byline(tree: Any) -> str:
    return _first_line_of(tree, _BYLINE) or _first_line_of(tree, _DATELINE, _YEAR)


def _first_line_of(tree: Any, selector: str, holding: re.Pattern[str] | None = None) -> str:
    """The text of the first element the selector finds inside the article's part of the
    page (not in a menu, footer or aside), short as a byline is."""
    for node in tree.css(selector):
        parent, outside = node.parent, False
        while parent is not None:
            if (parent.tag in _OUTSIDE_ARTICLE and parent.tag != "header") or \
                    (parent.tag == "header" and parent.css_first("nav") is not None):
                outside = True
                break
            parent = parent.parent
        text = _WS.sub(" ", node.text(deep=True)).strip()
        if not outside and 3 <= len(text) <= 300 and (holding is None or holding.search(text)):
            return text
    return ""


def _with_byline(reading: Reading, b: TextBuilder, byline: str) -> Reading:
    """The reading again with the byline a unit after the headline (else first)."""
    first = reading.sections[0] if reading.sections else None
    at = 0
    if first is not None and first.start == 0 and first.level <= 1:
        at = len(first.title)
    insert = ("\n\n" if at else "") + byline + ("" if at else "\n\n")
    shift = len(insert)
    start = at + (2 if at else 0)
    text = reading.text[:at] + insert + reading.text[at:]
    from assistant.models import Section, Unit

    units = [Unit(start=start, end=start + len(byline), kind="byline")]
    units += [u.model_copy(update={"start": u.start + shift, "end": u.end + shift})
              if u.start >= at else u for u in reading.units]
    sections = [Section(title=s.title, level=s.level,
                        start=s.start + shift if s.start > at or (s.start == at and at) else
                        s.start, end=s.end + shift) for s in reading.sections]
    units.sort(key=lambda u: u.start)
    return Reading(text=text, title=reading.title, sections=sections, units=units,
                   locations=reading.locations)


# --- lines of the source ------------------------------------------------------------------

_SOURCE_TAG = re.compile(r"<!--.*?(?:-->|$)|<(script|style|template|noscript|title)\b.*?"
                         r"(?:</\1\s*>|$)|<[^>]*>", re.S | re.I)


_BODY = re.compile(r"<body\b", re.I)


def _stream(html: str) -> tuple[str, list[int], list[int]]:
    """The page's characters outside tags, entities decoded, runs of space folded to one:
    the stream, and where each source line starts in it (offsets, lines)."""
    out = io.StringIO()
    length = 0
    offs: list[int] = []
    lines: list[int] = []
    body = _BODY.search(html)  # what the <head> holds is never shown
    pos = body.start() if body else 0
    line = 1 + html.count("\n", 0, pos)
    space = True

    def add(piece: str, at_line: int) -> None:
        nonlocal length, space
        folded = " ".join(html_lib.unescape(piece).split())
        if not folded:
            if piece and not space:
                out.write(" ")
                length += 1
                space = True
            return
        lead = piece[:1].isspace() and not space
        if lead:
            out.write(" ")
            length += 1
        if not offs or offs[-1] != length:
            offs.append(length)
            lines.append(at_line)
        else:
            lines[-1] = at_line
        out.write(folded)
        length += len(folded)
        space = piece[-1:].isspace()
        if space:
            out.write(" ")
            length += 1

    for m in _SOURCE_TAG.finditer(html, pos):
        text = html[pos:m.start()]
        for k, piece in enumerate(text.split("\n")):
            add(piece + ("\n" if k < text.count("\n") else ""), line + k)
        line += text.count("\n") + m.group(0).count("\n")
        pos = m.end()
        if not space:
            out.write(" ")
            length += 1
            space = True
    text = html[pos:]
    for k, piece in enumerate(text.split("\n")):
        add(piece, line + k)
    return out.getvalue(), offs, lines


def source_lines(html: str, reading: Reading) -> list[tuple[int, int, int]]:
    """The map of a page's readable text to its source lines: each unit and heading found
    again in the page (in order, from where the last one was found), with a break wherever
    the source moves to a new line inside it."""
    stream, offs, lines = _stream(html)
    spans = sorted([(u.start, u.end) for u in reading.units]
                   + [(s.start, s.start + len(s.title)) for s in reading.sections
                      if reading.text.startswith(s.title, s.start)])
    out: list[tuple[int, int, int]] = [(0, 1, 0)]
    cursor = 0
    for start, end in spans:
        folded = " ".join(reading.text[start:end].split())
        # a row's cells are apart in the page, joined by `` · `` only in the readable text
        cells = " ".join(reading.text[start:end].replace(CELL_SEPARATOR, " ").split())
        at = -1
        for probe in (folded[:60], cells[:60], folded[:20], cells[:20]):
            if probe:
                at = stream.find(probe, cursor)
                if at == -1:
                    at = stream.find(probe)
            if at != -1:
                break
        if at == -1:
            continue
        cursor = at + len(folded[:60])
        k = bisect.bisect_right(offs, at) - 1
        line = lines[k] if k >= 0 else 1
        out.append((start, line, 0))
        for j in range(k + 1, len(offs)):
            if offs[j] >= at + len(folded) or offs[j] - at >= end - start:
                break
            out.append((start + offs[j] - at, lines[j], 0))
    out.sort()
    return [loc for i, loc in enumerate(out) if i + 1 == len(out) or out[i + 1][0] != loc[0]]


_BLOCK_TAGS = {"p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
               "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "td", "th", "blockquote",
               "pre", "br", "hr", "figure", "figcaption", "form", "h1", "h2", "h3", "h4", "h5",
               "h6", "address", "details", "summary"}
_DROP_TAGS = ["script", "style", "noscript", "template", "svg", "head", "iframe", "object"]
_CHROME = ("nav, [role=navigation], [role=search], [role=contentinfo], [aria-hidden=true], "
           "footer")
"""Page furniture, not prose: menus, search boxes, the site footer ("© 2025 Example ·
Privacy · Contact"), what is hidden from screen readers. A footer inside an article or
section ("Filed under: export controls") belongs to it and is kept."""
_CONTENT_TAGS = {"article", "main", "section"}
_WS = re.compile(r"\s+")


def _inside(node: Any, tags: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def rule_based_text(html: str) -> tuple[str, list[tuple[int, int, str]], str]:
    """The page's visible text without its menus and site footer, by rules (the reader's
    fallback when the extractor finds no article, and the "before" of docs/web-pages.md):
    the text, its headings ``(start, level, title)`` and the page's title."""
    from selectolax.lexbor import LexborHTMLParser  # only when a web page is read

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _WS.sub(" ", title_node.text()).strip() if title_node else ""
    for tag in _DROP_TAGS:
        for node in tree.css(tag):
            node.decompose()
    for node in tree.css(_CHROME):
        if node.tag != "footer" or not _inside(node, _CONTENT_TAGS):
            node.decompose()
    root = tree.body or tree.root
    out = io.StringIO()
    heads: list[tuple[int, int, str]] = []
    line: list[str] = []
    length = 0

    def flush() -> None:
        nonlocal length
        s = _WS.sub(" ", "".join(line)).strip()
        line.clear()
        if s:
            out.write(s + "\n")
            length += len(s) + 1

    if root is not None:
        stack = [root]
        while stack:
            node = stack.pop()
            tag = node.tag or ""
            if tag == "-text":
                line.append(node.text_content or "")
                continue
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                flush()
                name = _WS.sub(" ", node.text(deep=True)).strip()
                if name:
                    heads.append((length, int(tag[1]), name))
                    line.append(name)
                    flush()
                continue
            if tag in _BLOCK_TAGS:
                flush()
            children = list(node.iter(include_text=True))
            stack.extend(reversed(children))
        flush()
    text = out.getvalue()
    if not title:
        title = next((h[2] for h in heads), "")
    if heads and heads[0][0] > 0:
        heads.insert(0, (0, 0, title))
    return text, heads, title

