"""What the chat controller tells its face: plain values, one per thing to show.

The controller (``assistant.chat.controller``) emits these, in order, through the sink it
was given; the Textual app renders each (a card, the status line, a notice), and a test
reads them as a list. None of them holds a widget: a question's cards are named by its
``number``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from assistant.chat.answers import ShownAnswer
    from assistant.chat.conversations import SavedConversation
    from assistant.errors import AssistantError
    from assistant.models import IndexManifest, IndexStatus
    from assistant.session import DocumentView

StatusKind = Literal["busy", "ready", "warning", "error"]
Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True)
class Status:
    """The status line: what is happening now."""

    text: str
    kind: StatusKind = "ready"


@dataclass(frozen=True)
class Notice:
    """A notification (a toast): one line, shown literally."""

    text: str
    title: str = ""
    severity: Severity = "information"
    timeout: float | None = None


@dataclass(frozen=True)
class ErrorCard:
    """An error in the conversation, saying what to do."""

    error: AssistantError
    also: AssistantError | None = None


@dataclass(frozen=True)
class NoticeCard:
    """A notice in the conversation (the index's warnings)."""

    title: str
    lines: list[str]
    warning: bool = False


@dataclass(frozen=True)
class IndexProgress:
    """A build's progress: ``done`` of about ``total`` (None: a step of unknown length).
    ``panel``: what the side panel says meanwhile (no index open yet), if anything."""

    done: int
    total: int | None
    panel: str | None = None


@dataclass(frozen=True)
class IndexFinished:
    """An index job ended: the progress bar goes, the side panel shows ``status``."""

    status: IndexStatus | None


@dataclass(frozen=True)
class EngineSwapped:
    """A new generation of the index answers from now on (the old one is closed once its
    last question is answered)."""

    manifest: IndexManifest


@dataclass(frozen=True)
class QuestionAsked:
    """A question is shown at once, with a card saying what it waits for (``note``)."""

    number: int
    question: str
    note: str
    fresh: bool = False
    """Asked again without the conversation's context (F5)."""


@dataclass(frozen=True)
class QuestionWaiting:
    """Questions asked (by number) are waiting: their cards say why."""

    numbers: tuple[int, ...]
    note: str


@dataclass(frozen=True)
class Answering:
    """Question ``number`` is being answered now."""

    number: int


@dataclass(frozen=True)
class AnswerReady:
    """Question ``number`` is answered (or failed: ``ErrorCard`` in its place)."""

    number: int
    result: ShownAnswer | AssistantError


@dataclass(frozen=True)
class EachAsked:
    """"What does each document say?" asked for ``question``."""

    question: str


@dataclass(frozen=True)
class EachAnswered:
    """Each document's answer, the likeliest first (empty: no document covers it)."""

    result: list[ShownAnswer] | AssistantError


@dataclass(frozen=True)
class ConversationCleared:
    """A new conversation: the chat is empty."""


@dataclass(frozen=True)
class ConversationResumed:
    """A saved conversation is open again: its cards are shown."""

    saved: SavedConversation


@dataclass(frozen=True)
class ScopeChanged:
    """The documents questions are asked of (None: every document)."""

    scope: frozenset[str] | None


@dataclass(frozen=True)
class CorpusChanged:
    """Corpus files changed since the index was built (empty: none any more)."""

    changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentReady:
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
