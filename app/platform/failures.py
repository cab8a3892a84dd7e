"""Domain errors: what went wrong, in a sentence the user is shown, without HTTP.

Domain and storage code (intake, DICOM, the image store, the model client) raise these;
``app.platform.errors`` is the one place that gives each its HTTP status (and, for a full
store, its sentence). ``request_id`` is the id of the request the error answers, set by
whoever knows it, so that the user can quote it.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors the user is told about (``message``)."""

    def __init__(self, message: str = "", request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class Malformed(DomainError):
    """The upload is empty, damaged or over a limit of its kind (the message says which)."""


class UnsupportedFormat(DomainError):
    """The upload is not an image kind Radio reads (or a compression it cannot decode)."""


class NotAccepted(DomainError):
    """A readable image that is not what Radio reads: not a frontal chest radiograph, colour,
    patient details burned in..."""


class NotAllowed(DomainError):
    """The user may not do this to this record: another clinician's case, for instance (the
    page itself may be open to them, as a case is to every radiologist)."""


class Busy(DomainError):
    """Every slot for this kind of work is taken: try again in a moment."""


class StorageFull(DomainError):
    """The data directory or image store cannot take the file (full disk, read-only, no
    permission).

    ``analysed``: the model had answered, but its record could not be kept; the answer is
    withheld (an answer Radio cannot account for later is not given). ``image_left``: the
    image was stored before the record failed; without a row, it goes at the next retention
    pass (app/store/retention.py). The sentence is ``app.platform.errors.message_of``'s.
    """

    def __init__(self, request_id: str | None = None, analysed: bool = False,
                 image_left: bool = False) -> None:
        super().__init__("", request_id)
        self.analysed = analysed
        self.image_left = image_left


class ModelServerError(DomainError):
    """The model server could not give a usable answer.

    ``kind`` names the failure for the metrics (``app.platform.metrics.MODEL_ERRORS``) and
    for ``app.platform.errors``, which answers it: "unreachable" and "breaker_open" (the
    server is down), "timeout" (no answer in time), "http", "not_json" and "contract" (a
    bad answer). Only the first three mean the server did not answer (:attr:`no_answer`).
    """

    def __init__(self, message: str, request_id: str | None = None, *,
                 kind: str = "other") -> None:
        super().__init__(message, request_id)
        self.kind = kind

    @property
    def no_answer(self) -> bool:
        """The server did not answer at all (what the circuit breaker counts)."""
        return self.kind in ("unreachable", "breaker_open", "timeout")
