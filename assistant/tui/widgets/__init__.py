"""The chat's widgets, one file per screen area: conversation, side panel, input, status."""
