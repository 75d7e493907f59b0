"""Exceptions shared by every stage."""


class UserError(Exception):
    """A problem with the user's input (a path, a file, a parameter).

    The CLI prints its message without a traceback and exits with status 2, so the message must
    say what is wrong and what to do about it.
    """
