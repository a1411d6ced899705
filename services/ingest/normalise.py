"""Report text as classify should see it: NFC, no markup, folded whitespace, canonical URLs.

Feeds send HTML fragments, entities, stray tabs and tracking-laden links; normalising here
makes the content hash (and so deduplication) insensitive to those differences.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

_DROPPED_TAGS = "script, style, noscript, template, head, iframe, object, svg"
_BLOCK_TAGS = (
    "p, div, br, li, ul, ol, h1, h2, h3, h4, h5, h6, tr, blockquote, pre, section, article,"
    " header, footer, table, hr, dd, dt, figcaption"
)
_MARKUP = re.compile(r"<[A-Za-z!/?]|&(#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|_hsenc|_hsmi)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def strip_html(text: str) -> str:
    """Text content of an HTML fragment, block elements on their own lines.

    A real parser (lexbor) rather than regexes: comments, CDATA, entities and broken tags
    are handled as browsers do. Plain text without tags or entities is returned unparsed.
    """
    if ("<" not in text and "&" not in text) or not _MARKUP.search(text):
        return text  # the substring tests are C loops; the regex is ten times slower
    tree = LexborHTMLParser(text)
    for node in tree.css(_DROPPED_TAGS):
        node.decompose()
    for node in tree.css(_BLOCK_TAGS):
        node.insert_after("\n")
    root = tree.body or tree.root
    return root.text(deep=True) if root is not None else ""


def fold_text(text: str) -> str:
    """Runs of whitespace become one space, lines are trimmed, at most one blank line
    between paragraphs, none at either end."""
    lines: list[str] = []
    blank = False
    for line in text.splitlines():
        folded = " ".join(line.split())
        if not folded:
            blank = True
            continue
        if blank and lines:
            lines.append("")
        lines.append(folded)
        blank = False
    return "\n".join(lines)


def fold_line(text: str) -> str:
    """All whitespace, newlines included, folded to single spaces (titles)."""
    return " ".join(text.split())


def clean_text(text: str) -> str:
    """NFC after stripping, so characters spelt as entities are composed too."""
    return fold_text(unicodedata.normalize("NFC", strip_html(text)))


def clean_title(title: str | None) -> str | None:
    if title is None:
        return None
    return fold_line(unicodedata.normalize("NFC", strip_html(title))) or None


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no credentials, no default port, no fragment, no tracking
    parameters, remaining query parameters sorted, an empty path as ``/``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii") if host and not host.isascii() else host
    if ":" in host:
        host = f"[{host}]"
    netloc = host  # credentials in a link are dropped: they must not travel on
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{parts.port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING.match(k.lower())
    )
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))
