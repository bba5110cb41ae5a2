"""The sanitiser (``assistant.render``) on any text: nothing unsafe survives, JSON keeps its
value, and the palette's markup escaping is read back as the literal text."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from assistant.render import json_safe, one_line, printable

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE = st.text(alphabet=st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\x1b", "\x07", "\x9b", "\x85", "\u202e", "\u2066", "\u2028", "\r", "\n",
                     "\t", "[", "]", "/", "@", "$", "\\", "\x7f"])), max_size=80)


@given(HOSTILE)
def test_printable_leaves_nothing_unsafe_and_keeps_lines(text: str) -> None:
    shown = printable(text)
    assert not UNSAFE.search(shown)
    assert shown.count("\n") == text.count("\n")
    assert printable(shown) == shown
    line = one_line(text)
    assert not UNSAFE.search(line) and "\n" not in line and "\t" not in line


def test_visible_forms() -> None:
    assert printable("a\x1b[201~b\x07\x9b\u202ec\x7f") == "a␛[201~b␇\\u009b\\u202ec␡"


@given(HOSTILE)
def test_json_safe_keeps_the_value(text: str) -> None:
    for serialised in (json.dumps({"quote": text}, ensure_ascii=False),
                       json.dumps([text], ensure_ascii=False, indent=2)):
        safe = json_safe(serialised)
        assert not UNSAFE.search(safe.replace("\n", " "))
        assert json.loads(safe) == json.loads(serialised)


@given(HOSTILE)
def test_palette_markup_is_read_back_literally(text: str) -> None:
    from textual.content import Content

    from assistant.tui.passage import markup_literal

    content = Content.from_markup(markup_literal(text))
    assert content.plain == one_line(text)
    assert not content.spans
