class ModerationError(Exception):
    """A domain error whose message can be shown to the user as it is."""
