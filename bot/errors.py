"""Named errors of the service layer; each message is fit to show a Discord user or an operator."""


class BotError(Exception):
    """Base class of genrebot's own errors."""


class SettingsError(BotError):
    """A required setting is missing or a setting has a bad value."""


class QueueFull(BotError):
    """Too many classifications are waiting; the user should try again shortly."""

    def __init__(self, message: str = "I'm busy with other songs right now; please try again in a minute.") -> None:
        super().__init__(message)


class InferenceFailed(BotError):
    """A worker crashed or timed out while classifying; the pool has been replaced."""


class RetrainError(BotError):
    """A retrain could not run or did not finish."""


class StorageError(BotError):
    """The database cannot be used as asked (too new, failed migration, unknown row)."""
