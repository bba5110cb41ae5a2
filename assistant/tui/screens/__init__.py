"""Screens pushed over the chat: a document with its quote, the help of keys."""
