"""Exception types of the analyzer library.

Every error a person can cause (a bad file, a photo without a face...) is one
of these, with a message that says what to do.  The CLI maps them to one line
on stderr and exit code 2; the UI shows the message.
"""


class AnalyzerError(Exception):
    """Base class of every error the library raises on purpose."""


class IntakeError(AnalyzerError):
    """The file cannot be used as a photo (missing, not an image, too large...)."""


class FaceNotFoundError(AnalyzerError):
    """No face was found in the photo."""


class ModelError(AnalyzerError):
    """The face landmark model is missing or does not match its checksum."""


class AlignmentError(AnalyzerError):
    """Two photos cannot be aligned at all (e.g. no face in one of them)."""


class StoreError(AnalyzerError):
    """The database or the photo store cannot do what was asked."""


class NotFoundError(StoreError):
    """A patient, visit, photo or analysis does not exist (or was erased)."""


class DuplicateError(StoreError):
    """Something that must be unique already exists (e.g. a patient code)."""


class AuthError(AnalyzerError):
    """Signing in or opening a share link failed (bad credentials, locked, expired...)."""


class PermissionDenied(AnalyzerError):
    """The signed-in account may not see or change this (other clinic, read-only...)."""


class ReportError(AnalyzerError):
    """A report, time-lapse or export cannot be made (nothing analysed yet, bad format...)."""
