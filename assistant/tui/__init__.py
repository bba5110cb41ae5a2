"""The Textual chat: a thin face over the core (``assistant.qa``, ``assistant.build``)."""
