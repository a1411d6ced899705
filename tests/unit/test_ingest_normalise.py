"""Normalisation, identity and language detection: pure functions, no I/O."""

from __future__ import annotations

import pytest

from services.ingest import language
from services.ingest.identity import report_id
from services.ingest.normalise import canonical_url, clean_text, clean_title, strip_html


def test_html_is_stripped_with_blocks_on_their_own_lines() -> None:
    html = (
        "<div><h1>Osh</h1><p>Homes <b>burned</b> &amp; looted.</p>"
        "<!-- note --><style>p{}</style><script>evil()</script><ul><li>one</li><li>two</li>"
        "</ul></div>"
    )
    assert clean_text(html) == "Osh\nHomes burned & looted.\none\ntwo"


def test_plain_text_with_angle_brackets_is_left_alone() -> None:
    assert strip_html("casualties < 10, displaced > 100") == "casualties < 10, displaced > 100"


def test_whitespace_is_folded_keeping_paragraphs() -> None:
    text = "  First\tline   here \r\n\r\n\r\n\r\nSecond \u00a0 para  \n"
    assert clean_text(text) == "First line here\n\nSecond para"


def test_unicode_is_nfc() -> None:
    assert clean_text("Cafe\u0301") == "Caf\u00e9"
    assert clean_title("  Cafe\u0301 \n <i>news</i> ") == "Caf\u00e9 news"
    assert clean_title(" <br> ") is None


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.ORG:443/a?utm_source=x&b=2&a=1#frag", "https://example.org/a?a=1&b=2"),
        ("http://example.org", "http://example.org/"),
        ("http://user:secret@example.org:8080/p?fbclid=1", "http://example.org:8080/p"),
        ("https://b\u00fccher.example/x y", "https://xn--bcher-kva.example/x%20y"),
    ],
)
def test_urls_are_canonical(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_ids_come_from_external_id_or_content() -> None:
    assert report_id("f", "42", "t", "a") == report_id("f", "42", "other", "b")
    assert report_id("f", "42", None, "a") != report_id("g", "42", None, "a")
    assert report_id("f", None, "T", "a  b\nc") == report_id("f", None, " T ", "a b c")
    assert report_id("f", None, "T", "a") != report_id("f", None, "T", "b")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Government forces shelled the town overnight, killing twelve civilians.", "en"),
        ("Les forces gouvernementales ont bombardé la ville pendant la nuit.", "fr"),
        ("Правительственные войска обстреляли город ночью, погибли мирные жители.", "ru"),
        ("قصفت القوات الحكومية المدينة ليلا مما أسفر عن مقتل مدنيين", "ar"),
        ("ok", None),
    ],
)
def test_language_is_detected_or_left_unknown(text: str, code: str | None) -> None:
    assert language.detect(text) == code
