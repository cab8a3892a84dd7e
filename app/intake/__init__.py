"""Uploads in: format sniffing, DICOM checks and de-identification, the bounded decode."""
