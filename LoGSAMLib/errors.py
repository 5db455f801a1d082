"""The one exception family a user can cause. Messages say what to do next."""

from __future__ import annotations


class LoGSAMError(Exception):
    """A problem the user can fix (bad input, missing model, no device...).

    The CLI prints ``str(error)`` as one line and exits non-zero; the Slicer module
    shows it in an error dialog. Programming errors are *not* LoGSAMError.
    """

    exit_code = 2


class InputError(LoGSAMError):
    """Unreadable, unsupported or implausible input (file, volume, audio, text)."""


class ModelMissingError(LoGSAMError):
    """A model file is not in the cache and cannot be downloaded now."""


class ChecksumError(LoGSAMError):
    """A model file does not match its recorded SHA-256."""


class CheckpointError(LoGSAMError):
    """A checkpoint is of the wrong kind or does not fit the expected architecture."""


class AudioError(LoGSAMError):
    """No input device, silence, clipping, PortAudio missing, undecodable audio."""


class NoSpeechError(AudioError):
    """The audio holds no speech (silence or noise only)."""


class Cancelled(LoGSAMError):
    """The user cancelled a long-running job."""

    exit_code = 130


class NotBuiltError(LoGSAMError):
    """A subcommand or feature that is not available yet."""


class ServerError(LoGSAMError):
    """An engine server (``logsam serve``) refused a request or failed a job."""


class ServerConnectionError(ServerError):
    """The engine server cannot be reached, or it stopped while a job ran."""


class VersionMismatchError(ServerError):
    """Client and server speak different API versions; the message says which to upgrade."""
