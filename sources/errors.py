"""The error a source fetch raises: its message is shown to the user."""


class FetchError(Exception):
    """The source could not be read; the message is shown to the user."""
