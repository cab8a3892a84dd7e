"""Uploads stay in memory: Werkzeug would spool a file over 500 kB to a temporary file.

A DICOM upload carries the patient's identity until ``app.dicom`` de-identifies it, so its
original bytes must never reach a disk, not even as a deleted temporary file. Uploads are
bounded by RADIO_MAX_UPLOAD_MB, so keeping them in memory is safe.
"""

from __future__ import annotations

import io
from typing import IO

from flask import Request


class InMemoryRequest(Request):
    """A request whose uploaded files are kept in a BytesIO."""

    def _get_file_stream(self, total_content_length: int | None, content_type: str | None,
                         filename: str | None = None,
                         content_length: int | None = None) -> IO[bytes]:
        return io.BytesIO()
