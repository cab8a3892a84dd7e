"""app/intake/deid.py: PS3.15 Annex E Basic Profile, tag by tag, and a crafted DICOM carrying an
identifying value in every attribute of the table, its preamble, padding, private and
unknown tags and file meta: none of the values is anywhere Radio writes afterwards."""

from __future__ import annotations

import io
import logging
from datetime import date, timedelta

import accounts
import dicom_files
import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.intake import deid

# A few rows of PS3.15 Table E.1-1 written out (Basic Profile column), so the table in the
# code is checked against the standard, not against itself.
STANDARD = {
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "AccessionNumber": "Z", "StudyDate": "Z", "StudyTime": "Z", "StudyID": "Z",
    "ReferringPhysicianName": "Z", "PatientAddress": "X", "OtherPatientIDs": "X",
    "InstitutionAddress": "X", "StationName": "X/Z/D", "DeviceSerialNumber": "X/Z/D",
    "RequestedProcedureDescription": "X/Z", "PlacerOrderNumberImagingServiceRequest": "X",
    "FillerOrderNumberImagingServiceRequest": "X", "IdentifyingComments": "X",
    "TextComments": "X", "Arbitrary": "X", "EncapsulatedDocument": "X",
    "DataSetTrailingPadding": "X", "StudyInstanceUID": "U", "SOPInstanceUID": "U",
    "ContentDate": "Z/D", "InstitutionName": "X/Z/D", "PersonName": "D",
}


def test_the_table_says_what_the_standard_says():
    assert {k: deid.ACTIONS[k] for k in STANDARD} == STANDARD
    assert deid.action("InstitutionName") == "K"  # the Retain Institution Identity Option
    assert deid.action("StationName") == "X" and deid.action("ContentDate") == "Z"


def _marker(vr: str, n: int) -> object | None:
    """A value of ``vr`` that is unique to attribute number ``n`` and findable as bytes."""
    if vr in ("LO", "SH", "LT", "ST", "UT", "UC", "PN"):
        return f"PHI{n:04d}value"
    if vr in ("CS", "AE"):
        return f"PHI{n:04d}"
    if vr == "DA":
        return (date(1901, 1, 1) + timedelta(days=n)).strftime("%Y%m%d")
    if vr == "TM":
        return f"{n // 60 % 24:02d}{n % 60:02d}{(n * 7) % 60:02d}.{n:04d}"
    if vr == "DT":
        return (date(1901, 1, 1) + timedelta(days=n)).strftime("%Y%m%d") + f"{n:06d}"
    if vr == "UI":
        return f"1.2.826.0.1.3680043.10.{1000 + n}.7"
    if vr == "OB":
        return f"PHI{n:04d}bytes!".encode()
    if vr == "AS":
        return f"{n % 1000:03d}Y"
    if vr == "DS":
        return f"4242.{n:04d}"
    if vr == "SQ":
        item = Dataset()
        item.PatientName = f"PHI{n:04d}inseq"
        return [item]
    return None  # numbers: not searchable, checked tag by tag only


def _searchable(value: object) -> bytes:
    if isinstance(value, list):
        return str(value[0].PatientName).encode()
    return value if isinstance(value, bytes) else str(value).encode()


TABLE = sorted(k for k in deid.ACTIONS if deid.action(k) != "K")


@pytest.mark.parametrize("keyword", TABLE)
def test_each_attribute_of_the_table_gets_its_action(keyword):
    vr = dictionary_VR(keyword)
    value = _marker(vr, 1) if vr != "US" else 7
    ds = Dataset()
    setattr(ds, keyword, value)
    deid.deidentify(ds)
    todo = deid.action(keyword)
    if todo == "X":
        assert keyword not in ds
    elif todo == "Z":
        assert keyword in ds and ds[keyword].is_empty
    elif todo == "D":
        assert keyword in ds and ds[keyword].value != value
        if vr == "SQ":
            assert len(ds[keyword].value) == 0
    else:
        assert todo == "U" and str(ds[keyword].value) != value
        assert str(ds[keyword].value).startswith("2.25.") or "." in str(ds[keyword].value)


def _crafted() -> tuple[bytes, list[bytes]]:
    """A chest DICOM with a marker in every attribute of the table (and more); the markers."""
    base = dcmread(io.BytesIO(dicom_files.make(dicom_files.radiograph())))
    markers: list[bytes] = [b"Jane Doe secret note", str(base.SOPInstanceUID).encode()]
    for n, keyword in enumerate(TABLE):
        value = _marker(dictionary_VR(keyword), n)
        if value is None or keyword == "SOPInstanceUID" or tag_for_keyword(keyword) >> 16 in (
                0x0000, 0x0002):  # command set and file meta are not dataset attributes
            continue
        setattr(base, keyword, value)
        markers.append(_searchable(value))
    base.add_new((0x0018, 0x9FF1), "LO", "PHIunknownpublic")  # not in the dictionary
    base.add_new((0x0029, 0x0010), "LO", "PHIPrivateCreator")
    base.add_new((0x0029, 0x1001), "LO", "PHIprivatevalue")
    base.file_meta.SourceApplicationEntityTitle = "PHISRCAETITLE"
    base.preamble = b"PHIpreamble Doe^Jane".ljust(128, b"\x00")
    markers += [b"PHIunknownpublic", b"PHIPrivateCreator", b"PHIprivatevalue",
                b"PHISRCAETITLE", b"PHIpreamble"]
    buf = io.BytesIO()
    base.save_as(buf, enforce_file_format=True)
    data = buf.getvalue()
    assert [m for m in markers if m not in data] == []  # the file carries every one
    return data, markers


def test_no_identifying_value_is_stored_logged_or_recorded(make_app, model_server, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(mlflow_url=model_server)
    client = accounts.bearer_client(app)
    data, markers = _crafted()
    resp = client.post("/predict", data={"file": (io.BytesIO(data), "x.dcm")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.json
    data_dir = app.config["RADIO"].data_dir
    stored = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".dcm") for p in stored)
    assert any(p.name.endswith(".dcm.png") for p in stored)
    blob = b"".join(p.read_bytes() for p in stored)  # images, rendering, radio.db (SQLite)
    if app.config["RADIO"].db_url.startswith("postgresql"):
        from sqlalchemy import text

        from app.store import db

        with db.session_scope(app.config["RADIO"].db_url) as s:
            blob += str(s.execute(text("SELECT * FROM predictions")).all()).encode()
    found = [m for m in markers if m in blob or m.decode() in caplog.text
             or m in resp.get_data()]
    assert found == []
    clean = next(p for p in stored if p.name.endswith(".dcm")).read_bytes()
    assert clean[:128] == bytes(128)
    ds = dcmread(io.BytesIO(clean))
    assert ds.InstitutionName == "St Example Hospital" and ds.PatientIdentityRemoved == "YES"


def test_uids_are_replaced_consistently_within_a_file():
    ds = Dataset()
    uid = generate_uid()
    ds.SOPInstanceUID = uid
    item = Dataset()
    item.ReferencedSOPInstanceUID = uid
    ds.ReferencedInstanceSequence = [item]  # not in the table: a kept sequence, cleaned
    deid.deidentify(ds)
    assert ds.SOPInstanceUID != uid
    assert ds.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


def _png_with_text() -> tuple[bytes, list[bytes]]:
    import helpers
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "PHIpngtext Doe^Jane")
    info.add_itxt("PatientID", "PHIpngitxt MRN777")
    info.add_text("Comment", "PHIpngztxt " * 20, zip=True)
    buf = io.BytesIO()
    Image.fromarray((dicom_files.radiograph(256, 256) >> 8).astype("uint8")).save(
        buf, format="PNG", pnginfo=info)
    png = buf.getvalue()
    exif = helpers.png_chunk(b"eXIf", b"MM\x00*PHIpngexif")
    at = png.index(b"IDAT") - 4
    png = png[:at] + exif + png[at:]
    assert b"zTXt" in png  # stored compressed: its chunk type is searched for instead
    return png, [b"PHIpngtext", b"PHIpngitxt", b"PHIpngexif"]


def _jpeg_with_text() -> tuple[bytes, list[bytes]]:
    from PIL import Image

    exif = Image.Exif()
    exif[0x013B] = "PHIjpegartist Doe^Jane"  # Artist
    exif[0x0112] = 6  # rotated: must survive as the only tag
    buf = io.BytesIO()
    Image.fromarray((dicom_files.radiograph(256, 300) >> 8).astype("uint8")).save(
        buf, format="JPEG", quality=90, exif=exif.tobytes(), comment=b"PHIjpegcomment")
    jpeg = buf.getvalue()
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>PHIjpegxmp</x:xmpmeta>"
    jpeg = jpeg[:2] + b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp + jpeg[2:]
    return jpeg, [b"PHIjpegartist", b"PHIjpegcomment", b"PHIjpegxmp"]


@pytest.mark.parametrize("made", [_png_with_text, _jpeg_with_text], ids=["PNG", "JPEG"])
def test_text_metadata_is_stripped_before_storage(make_app, model_server, made):
    from PIL import Image

    from serving.preprocessing import preprocess

    data, markers = made()
    assert all(m in data for m in markers)
    app = make_app(mlflow_url=model_server)
    resp = accounts.bearer_client(app).post(
        "/predict", data={"file": (io.BytesIO(data), "x")}, content_type="multipart/form-data")
    assert resp.status_code == 200, resp.json
    (stored,) = [p for p in (app.config["RADIO"].data_dir / "images").rglob("*") if p.is_file()]
    kept = stored.read_bytes()
    assert [m for m in markers if m in kept] == []
    assert all(kind not in kept for kind in (b"zTXt", b"tEXt", b"iTXt", b"eXIf"))
    # Same pixels, same model input; a JPEG keeps its orientation and nothing else.
    assert (preprocess(kept) == preprocess(data)).all()
    if kept.startswith(b"\xff\xd8"):
        assert dict(Image.open(io.BytesIO(kept)).getexif()) == {0x0112: 6}
