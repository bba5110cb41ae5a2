"""The Textual chat: a thin face over the core (``assistant.answer``, ``assistant.build``)."""
