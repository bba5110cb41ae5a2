"""The chat without its screen: what the terminal app works with, in plain Python.

    passage.py        the passage around a quote, a citation's place in its document
    conversations.py  saved conversations on disk
    history.py        the question history (↑/↓), the user's data folder

This package never imports ``textual`` nor ``assistant.tui`` (an import contract in
pyproject.toml).
"""
