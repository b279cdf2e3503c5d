"""The project's errors: one hierarchy for every problem a user can fix from the message alone.

A job (``anomaly.jobs.run``) shows an :class:`AnomalyError` as its message, without a traceback, and
writes it into ``results.json``; any other exception is a bug and keeps its traceback. Every message names
the file (and line) or the setting at fault and says how to fix it.
"""

from __future__ import annotations


class AnomalyError(Exception):
    """Base class: a user's mistake or a problem with the user's files, not a bug of the project."""


class ConfigError(AnomalyError):
    """A setting has a value that cannot work; the message names the setting (``trainer.max_epochs``)."""


class DataError(AnomalyError):
    """Bad input data: the message names the file or folder (and line) and what was expected."""


class MissingDataError(DataError):
    """A dataset's root is absent or holds no dataset: the data has to be fetched first."""


class WeightsError(AnomalyError):
    """Weights that cannot be used: not a caffemodel or checkpoint of this network, or of another task."""


class ScoringError(AnomalyError):
    """The test cannot be scored (non-finite prediction errors, labels of one class only)."""


class ReportError(AnomalyError):
    """A report cannot be made (a folder without results); the message names the folder."""


class DownloadError(AnomalyError):
    """A download or an archive went wrong; the message names the address or file and what to do."""
