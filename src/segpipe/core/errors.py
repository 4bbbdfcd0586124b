"""The error a user can act on: bad params, bad data files, missing checkpoints.

Stages print it as one line without a traceback and exit non-zero; anything else is a bug
and keeps its traceback.
"""


class InputError(ValueError):
    """Bad input the user can fix; the message names the file, key or id and what to do."""
