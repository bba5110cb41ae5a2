"""The side panel: the index's status (model, chunks, built at, stale or not, files changed
since while the chat is open) and its documents; choosing a document opens it, ``o`` on
one restricts the questions to it (again: all documents), space marks it as one of the
documents asked (again: unmarks it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.tui.messages import RestrictionRequested, SourceRequested
from assistant.tui.passage import literal

if TYPE_CHECKING:
    from assistant.models import IndexStatus


TITLE_CHARS = 56
"""Two lines of the panel: enough to tell documents apart."""


FOLDER = "/"
"""The start of a folder row's option id (a document's id, relative, never starts so)."""


def folders_of(doc_ids: list[str]) -> dict[str, frozenset[str]]:
    """Every sub-folder of the corpus holding documents, in order, with the documents in
    it (and in its sub-folders)."""
    out: dict[str, set[str]] = {}
    for d in doc_ids:
        parts = d.split("/")[:-1]
        for n in range(1, len(parts) + 1):
            out.setdefault("/".join(parts[:n]), set()).add(d)
    return {f: frozenset(out[f]) for f in sorted(out)}


def short_path(path: str, width: int = 24) -> str:
    """A path that fits the panel: its end, which tells folders apart."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


def status_text(status: IndexStatus | None, note: str | None = None,
                changed: list[str] | None = None,
                scope: frozenset[str] | None = None) -> Text:
    """The index block: every value literal (paths and names come from the user).
    ``changed``: corpus files changed since the index was opened (the chat watches);
    ``scope``: the documents questions are restricted to."""
    text = Text()

    def row(label: str, value: str, style: str = "") -> None:
        if text:
            text.append("\n")
        text.append(f"{label:<8}", style="dim")
        text.append(literal(value, style))

    if status is None:  # the app's own words: no need to load the literal rendering yet
        return Text.assemble(("state   ", "dim"), (note or "opening…", "italic"))
    row("index", short_path(status.index_dir))
    row("corpus", short_path(status.corpus_dir))
    if not status.exists:
        row("state", "not built", "bold")
    else:
        row("model", (status.model or "?").replace("sentence-transformers/", "").split(" (")[0])
        row("chunks", f"{status.chunk_count:,} · {status.sentence_count:,} sentences")
        row("built", f"{status.built_at:%Y-%m-%d %H:%M}" if status.built_at else "?")
        if status.generation is not None:
            row("gen", str(status.generation))
        if changed:
            row("state", f"stale: {len(changed)} changed (Ctrl+R rebuilds)", "bold")
        elif status.stale:
            reasons = status.stale_reasons
            more = f" (+{len(reasons) - 2} more)" if len(reasons) > 2 else ""
            row("state", "stale: " + "; ".join(reasons[:2]) + more, "bold")
        else:
            row("state", "up to date")
    if scope and len(scope) == 1:
        row("asking", f"only {short_path(next(iter(scope)), 22)} (o: all)", "bold")
    elif scope:
        row("asking", f"{len(scope)} marked documents (space: unmark)", "bold")
    if note:
        row("", note, "italic")
    return text


class SidePanel(Vertical):
    DEFAULT_CSS = """
    SidePanel {
        width: 32; height: 1fr; padding: 0 1;
        border-right: vkey $foreground 15%; background: $surface;
    }
    SidePanel .heading { text-style: bold; color: $accent; margin-top: 1; }
    SidePanel #index-status { height: auto; }
    SidePanel #documents { height: 1fr; border: none; padding: 0; background: $surface; }
    SidePanel #documents:focus { background-tint: $accent 12%; }
    SidePanel #documents:blur > .option-list--option-highlighted { background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "only", "Ask only this", tooltip="Ask only the highlighted document "
                "(again: every document)"),
        Binding("space", "only(True)", "Mark", tooltip="Mark the highlighted document as one "
                "of those asked (again: unmark it)"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.status: IndexStatus | None = None
        self.note: str | None = None
        self.changed: list[str] = []
        self.scope: frozenset[str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("Index", classes="heading", markup=False)
        yield Static(status_text(None), id="index-status")
        yield Static("Documents", classes="heading", id="documents-heading", markup=False)
        yield OptionList(id="documents")

    def show_status(self, status: IndexStatus | None, note: str | None = None) -> None:
        """A fresh status (it supersedes the changes seen since the last one)."""
        self.status, self.note, self.changed = status, note, []
        self._show_index()
        self._show_documents()

    def show_changes(self, changed: list[str]) -> None:
        """Corpus files changed since the index was opened: the state says it is stale."""
        self.changed = changed
        self._show_index()

    def show_scope(self, scope: frozenset[str] | None) -> None:
        self.scope = scope
        self._show_index()
        self._show_documents()

    def _show_index(self) -> None:
        self.query_one("#index-status", Static).update(
            status_text(self.status, self.note, self.changed, self.scope))

    def _show_documents(self) -> None:
        status = self.status
        documents = self.query_one("#documents", OptionList)
        docs = sorted(status.documents, key=lambda d: d.title.casefold()) if status else []
        folders = folders_of([d.doc_id for d in docs])
        highlighted = documents.highlighted
        scope = self.scope or frozenset()
        rows = [self._folder_option(f, members, scope) for f, members in folders.items()]
        rows += [self._option(d.doc_id, d.title, d.chunks, d.doc_id in scope, len(scope) == 1)
                 for d in docs]
        documents.set_options(rows)
        if docs:  # Enter on the list opens a document at once (the first, past the folders)
            documents.highlighted = highlighted if highlighted is not None and \
                highlighted < len(rows) else len(folders)
        heading = f"Documents ({len(docs)})" if status else "Documents"
        self.query_one("#documents-heading", Static).update(heading)

    @staticmethod
    def _folder_option(folder: str, members: frozenset[str], scope: frozenset[str]) -> Option:
        """A sub-folder of the corpus: o, Space or Enter on it asks its documents."""
        asked = len(members & scope)
        mark = "◆ " if asked == len(members) else "◇ " if asked else "▸ "
        prompt = literal(f"{mark}{short_path(folder + '/', TITLE_CHARS)}", "bold")
        prompt.append("\n")
        prompt.append(literal(f"folder · {len(members)} documents", "dim"))
        if asked:
            prompt.append(" · asked" if asked == len(members) else f" · {asked} asked",
                          style="bold")
        return Option(prompt, id=FOLDER + folder)

    @staticmethod
    def _option(doc_id: str, title: str, chunks: int, asked: bool = False,
                alone: bool = False) -> Option:
        title = " ".join(title.split())
        if len(title) > TITLE_CHARS:
            title = title[: TITLE_CHARS - 1].rstrip() + "…"
        prompt = literal(f"◆ {title}" if asked else title, "bold")
        prompt.append("\n")
        prompt.append(literal(f"{doc_id} · {chunks} chunks", "dim"))
        if asked:
            prompt.append(" · asked alone" if alone else " · asked", style="bold")
        return Option(prompt, id=doc_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``o`` asks only the highlighted document (space marks it) while the question
        box is empty; once a question is being typed (a fast burst or a paste lands here
        before the focus moves) it is a letter like any other, and goes into the question
        box."""
        if action == "only":
            from assistant.tui.widgets.question_input import QuestionInput

            boxes = self.app.query(QuestionInput)
            return not (boxes and boxes.first().value)
        return True

    def action_only(self, mark: bool = False) -> None:
        documents = self.query_one("#documents", OptionList)
        if documents.highlighted is None:
            self.app.bell()
            return
        option = documents.get_option_at_index(documents.highlighted)
        if option.id is not None:
            self.post_message(self._restriction(option.id, mark))
        if mark:  # on to the next, as in file managers
            documents.action_cursor_down()

    def _restriction(self, option_id: str, mark: bool) -> RestrictionRequested:
        if option_id.startswith(FOLDER) and self.status is not None:
            members = folders_of([d.doc_id for d in self.status.documents]).get(
                option_id[len(FOLDER):], frozenset())
            return RestrictionRequested(option_id, mark, members)
        return RestrictionRequested(option_id, mark)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is None:
            return
        if event.option.id.startswith(FOLDER):  # a folder: ask its documents
            self.post_message(self._restriction(event.option.id, False))
        else:
            self.post_message(SourceRequested(event.option.id))
