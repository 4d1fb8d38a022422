class ModerationError(Exception):
    """A domain error whose message can be shown to the user as it is."""


class SenderError(ModerationError):
    """A failure of the sent file itself (not a playable video, damaged, empty…), written for whoever sent it:
    no server detail in it, so a platform that submitted the video reads it as it is. Recorded with the
    failure (``Video.error_for_sender``); any other failure text is the workbench's own."""


class StaleEditError(ModerationError):
    """Refused because someone else changed the row since the editor's page was drawn: the screen shows
    the row as it is now (what was typed would write over their change), not what was typed."""
