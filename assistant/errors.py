"""Every error the assistant reports to a user.

The faces (CLI, TUI) print an ``AssistantError`` as one readable line (and a
title in the TUI) and exit with its ``exit_code``; anything else is a bug.

    AssistantError                 exit 1
    ├── SettingsError              exit 2   bad configuration or arguments
    ├── CorpusError                exit 3   empty corpus, nothing indexable
    ├── IndexError_                exit 4   the index cannot be used
    │   ├── IndexMissingError               never built
    │   ├── IndexCorruptError               files damaged or unreadable
    │   ├── IndexIncompatibleError          other schema or model
    │   ├── ServerError                     the index server is down or refuses the login
    │   └── IndexLockedError       exit 5   another build holds the lock
    ├── IndexWriteError            exit 6   disk full, read-only directory
    ├── ModelError                 exit 7   the embedding model cannot load
    └── InputError                 exit 8   an unusable question or batch file
        └── OutputError                     the results cannot be written (disk full)

This module must never import anything heavy: the CLI imports it at start-up.
"""

from __future__ import annotations


class AssistantError(Exception):
    """A problem the user can act on: ``message`` says what and how to fix it."""

    title = "Error"
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SettingsError(AssistantError):
    title = "Settings"
    exit_code = 2


class CorpusError(AssistantError):
    title = "Corpus"
    exit_code = 3


class IndexError_(AssistantError):
    title = "Index"
    exit_code = 4


class IndexMissingError(IndexError_):
    title = "No index"


class IndexCorruptError(IndexError_):
    title = "Damaged index"


class IndexIncompatibleError(IndexError_):
    title = "Incompatible index"


class ServerError(IndexError_):
    title = "Index server unavailable"


class IndexLockedError(IndexError_):
    title = "Index busy"
    exit_code = 5


class IndexWriteError(AssistantError):
    title = "Cannot write the index"
    exit_code = 6


class ModelError(AssistantError):
    title = "Embedding model"
    exit_code = 7


class InputError(AssistantError):
    title = "Input"
    exit_code = 8


class OutputError(InputError):
    """Standard output or ``batch -o``'s file refused a write (a full disk, ``/dev/full``)."""

    title = "Output"


REBUILD_WITHOUT_QDRANT = ("`assistant index --full` (the embedded FAISS index) or "
                          "`assistant index --full --server postgresql://USER@HOST/DB` (a "
                          "PostgreSQL server)")
"""How to rebuild an index built with the retired Qdrant store, said by the manifest reader
and by the settings (a leftover ``store``/``qdrant_url``)."""


class UnexpectedError(AssistantError):
    """A bug, reported as one readable line instead of a traceback (in the chat: and the
    chat goes on)."""

    title = "Unexpected error"

    @classmethod
    def wrap(cls, exc: BaseException) -> UnexpectedError:
        text = " ".join(str(exc).split())[:300]
        return cls(f"unexpected {type(exc).__name__}: {text} (a bug; the chat goes on)")
