"""What the chat controller tells its face: plain values, one per thing to show.

The controller (``assistant.chat.controller``) emits these, in order, through the sink it
was given; the Textual app renders each (a card, the status line, a notice), and a test
reads them as a list. None of them holds a widget: a question's cards are named by its
``number``. Named tuples, not dataclasses: immutable all the same, and the app imports
them before its first frame, where a dataclass's generated methods cost several times
more to define.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from assistant.chat.answers import ShownAnswer
    from assistant.chat.conversations import SavedConversation
    from assistant.errors import AssistantError
    from assistant.models import IndexManifest, IndexStatus
    from assistant.session import DocumentView

StatusKind = Literal["busy", "ready", "warning", "error"]
Severity = Literal["information", "warning", "error"]


class Status(NamedTuple):
    """The status line: what is happening now."""

    text: str
    kind: StatusKind = "ready"


class Notice(NamedTuple):
    """A notification (a toast): one line, shown literally."""

    text: str
    title: str = ""
    severity: Severity = "information"
    timeout: float | None = None


class ErrorCard(NamedTuple):
    """An error in the conversation, saying what to do."""

    error: AssistantError
    also: AssistantError | None = None


class NoticeCard(NamedTuple):
    """A notice in the conversation (the index's warnings)."""

    title: str
    lines: list[str]
    warning: bool = False


class IndexProgress(NamedTuple):
    """A build's progress: ``done`` of about ``total`` (None: a step of unknown length).
    ``panel``: what the side panel says meanwhile (no index open yet), if anything."""

    done: int
    total: int | None
    panel: str | None = None


class IndexFinished(NamedTuple):
    """An index job ended: the progress bar goes, the side panel shows ``status``."""

    status: IndexStatus | None


class EngineSwapped(NamedTuple):
    """A new generation of the index answers from now on (the old one is closed once its
    last question is answered)."""

    manifest: IndexManifest


class QuestionAsked(NamedTuple):
    """A question is shown at once, with a card saying what it waits for (``note``)."""

    number: int
    question: str
    note: str
    fresh: bool = False
    """Asked again without the conversation's context (F5)."""


class QuestionWaiting(NamedTuple):
    """Questions asked (by number) are waiting: their cards say why."""

    numbers: tuple[int, ...]
    note: str


class Answering(NamedTuple):
    """Question ``number`` is being answered now."""

    number: int


class AnswerReady(NamedTuple):
    """Question ``number`` is answered (or failed: ``ErrorCard`` in its place)."""

    number: int
    result: ShownAnswer | AssistantError


class EachAsked(NamedTuple):
    """"What does each document say?" asked for ``question``."""

    question: str


class EachAnswered(NamedTuple):
    """Each document's answer, the likeliest first (empty: no document covers it)."""

    result: list[ShownAnswer] | AssistantError


class ConversationCleared(NamedTuple):
    """A new conversation: the chat is empty."""


class ConversationResumed(NamedTuple):
    """A saved conversation is open again: its cards are shown."""

    saved: SavedConversation


class ScopeChanged(NamedTuple):
    """The documents questions are asked of (None: every document)."""

    scope: frozenset[str] | None


class CorpusChanged(NamedTuple):
    """Corpus files changed since the index was built (empty: none any more)."""

    changed: list[str]


class DocumentReady(NamedTuple):
    """A document read for showing, scrolled to ``start``–``end`` (None: its top);
    ``outside``: then opened in ``$EDITOR``."""

    view: DocumentView
    source: Path
    start: int | None = None
    end: int | None = None
    outside: bool = False


ChatEvent = (Status | Notice | ErrorCard | NoticeCard | IndexProgress | IndexFinished
             | EngineSwapped | QuestionAsked | QuestionWaiting | Answering | AnswerReady
             | EachAsked | EachAnswered | ConversationCleared | ConversationResumed
             | ScopeChanged | CorpusChanged | DocumentReady)
