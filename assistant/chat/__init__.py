"""The chat without its screen: ``controller.ChatController`` and what it works with.

    controller.py     the queue of questions, index jobs, conversations, exports, watcher
    events.py         what the controller tells its face (status, cards, notices)
    backend.py        the seams to the core: ChatSession, ChatBackend (CoreBackend)
    answers.py        an answer with what its card shows (passage, places)
    passage.py        the passage around a quote, a citation's place in its document
    conversations.py  saved conversations on disk
    history.py        the question history (↑/↓), the user's data folder
    export.py         Markdown and JSON exports

Plain Python: this package never imports ``textual`` nor ``assistant.tui`` (an import
contract in pyproject.toml), so the chat's behaviour is tested without a terminal
(tests/unit/test_chat_controller*.py).
"""
