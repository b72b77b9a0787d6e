"""Errors a user can fix. The CLI prints them as one line and exits with 2."""


class UserError(ValueError):
    """Bad usage or bad input: missing file, bad flag, bad data.

    The message names the problem in one line and never contains raw data values.
    """

    exit_code = 2
