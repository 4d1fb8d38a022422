class TrainingError(Exception):
    """A training-domain error whose message can be shown to the user as it is."""
