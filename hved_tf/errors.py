"""Exceptions that carry a message for the user across the layers (the command lines print
them in one line: `hved_tf.cli`)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, with what the user should know (what was kept, how to go on)."""
