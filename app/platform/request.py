"""The app's request class: uploads kept in memory, and form parsing that can fail loudly
instead of coming back empty.

Uploads never touch the disk before the app has read them: a DICOM's original bytes (with
the patient's name in them) exist only in memory until the de-identified copy is stored
(``app/intake/dicom.py``); ``MAX_CONTENT_LENGTH`` bounds what one request can hold.

Werkzeug parses forms "silently": a malformed body, or a part header that is not UTF-8 (a
file name from an old client), gives an empty form, and the user heard "no file was
uploaded". A view that sets ``request.strict_forms = True`` before touching the form (as
``app/clinical/predict.py`` does) gets the ValueError instead, and names the problem. Other views
keep Flask's behaviour.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request
from werkzeug.formparser import FormDataParser
from werkzeug.wsgi import LimitedStream

# One image and nothing else is expected; a few spare parts for clients that add fields.
MAX_FORM_PARTS = 16


class RadioRequest(Request):
    """flask.Request with in-memory uploads, optional strict form parsing and a small
    form-part limit."""

    max_form_parts = MAX_FORM_PARTS
    strict_forms = False

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()

    def over_size_limit(self) -> bool:
        """The body is larger than MAX_CONTENT_LENGTH: by its Content-Length, or, sent in
        chunks without one, because reading it reached the limit (Werkzeug raises the same
        413 for too many form parts, which is not the size)."""
        limit = self.max_content_length
        if limit is None:
            return False
        if self.content_length is not None:
            return self.content_length > limit
        stream = self.stream
        return isinstance(stream, LimitedStream) and stream.is_exhausted

    def make_form_data_parser(self) -> FormDataParser:
        """The parser of :class:`flask.Request`; raises on malformed bodies if strict."""
        return self.form_data_parser_class(
            stream_factory=self._get_file_stream,
            max_form_memory_size=self.max_form_memory_size,
            max_content_length=self.max_content_length,
            max_form_parts=self.max_form_parts,
            cls=self.parameter_storage_class,
            silent=not self.strict_forms,
        )
