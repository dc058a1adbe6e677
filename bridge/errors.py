"""Errors that cross stage boundaries. The CLI maps BadInput to exit code 3."""


class BadInput(Exception):
    """The user's input cannot be used (unreadable timeline, unknown format, absurd value).

    The message is one line meant for the user, without a traceback.
    """


class MissingModel(Exception):
    """No shipped music model is installed; the message says where it was looked for."""
