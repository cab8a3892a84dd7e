"""app/intake/dicom.py + app/intake/deid.py: DICOM uploads are checked, de-identified and read like
PNGs."""

from __future__ import annotations

import io
import logging

import accounts
import dicom_files
import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from sqlalchemy import select

from app.intake import dicom
from app.platform.errors import describe
from app.platform.failures import DomainError
from app.store import db
from app.store.db.models import Prediction
from serving.preprocessing import preprocess


def _png16(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint16)).save(buf, format="PNG")
    return buf.getvalue()


def _png8(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_16bit_monochrome2_and_monochrome1_match_the_equivalent_png():
    pixels = dicom_files.radiograph()
    expected = preprocess(_png16(pixels))
    mono2 = dicom.load(dicom_files.make(pixels))[1]
    # MONOCHROME1 stores the inverse: a viewer (and Radio) inverts it back.
    mono1 = dicom.load(dicom_files.make(65535 - pixels, photometric="MONOCHROME1"))[1]
    assert np.array_equal(mono2, expected)
    assert np.array_equal(mono1, expected)


def test_8bit_dicom_matches_the_8bit_png():
    pixels = (dicom_files.radiograph() >> 8).astype(np.uint8)
    assert np.array_equal(dicom.load(dicom_files.make(pixels))[1], preprocess(_png8(pixels)))
    inverted = dicom.load(dicom_files.make(255 - pixels, photometric="MONOCHROME1"))[1]
    assert np.array_equal(inverted, preprocess(_png8(pixels)))


def test_modality_lut_and_window_are_applied():
    pixels = dicom_files.radiograph()
    # A linear rescale changes units, not the picture.
    rescaled = dicom_files.make(pixels, extra={"RescaleSlope": "2", "RescaleIntercept": "-1024"})
    assert np.array_equal(dicom.load(rescaled)[1], preprocess(_png16(pixels)))
    # A narrow window saturates what is outside it, as a viewer shows it.
    lo, hi = np.percentile(pixels, [30, 70])
    windowed = dicom_files.make(pixels, extra={"WindowCenter": str((lo + hi) / 2),
                                               "WindowWidth": str(hi - lo)})
    ds = dcmread(io.BytesIO(windowed))
    shown = np.asarray(dicom.to_display(ds))
    assert shown[pixels <= lo - 1].max() == 0 and shown[pixels >= hi + 1].min() == 255
    inside = (pixels > lo + 0.2 * (hi - lo)) & (pixels < hi - 0.2 * (hi - lo))
    assert 0 < shown[inside].min() < shown[inside].max() < 255


def test_deidentified_copy_keeps_the_image_and_the_source_only():
    data = dicom_files.make(dicom_files.radiograph())
    original_uids = dicom_files.uids_of(data)
    clean, _image, source, _png = dicom.load(data)
    for value in [*dicom_files.PHI.values(), *original_uids, "Jane Doe secret note"]:
        assert value.encode() not in clean, value
    ds = dcmread(io.BytesIO(clean))
    assert ds.PatientIdentityRemoved == "YES" and "Basic Profile" in ds.DeidentificationMethod
    # Z in PS3.15 Annex E: present and empty (type 2 attributes).
    assert ds.PatientName == "" and ds.PatientBirthDate == "" and ds.PatientID == ""
    assert str(ds.file_meta.MediaStorageSOPInstanceUID) == str(ds.SOPInstanceUID)
    assert np.array_equal(ds.pixel_array, dcmread(io.BytesIO(data)).pixel_array)
    assert source == {"institution": "St Example Hospital", "manufacturer": "Acme Imaging",
                      "view": "PA", "modality": "DX"}


def test_the_source_keeps_a_keyed_hash_of_the_patient_never_the_id():
    """Data drift permutes a patient's films together: the same PatientID under the same
    key gives the same ``patient``; another key another one; the ID itself never."""
    data = dicom_files.make(dicom_files.radiograph())
    patient_id = dicom_files.PHI["PatientID"]
    first = dicom.load(data, key=b"deployment secret").source
    again = dicom.load(data, key=b"deployment secret").source
    other = dicom.load(data, key=b"another deployment").source
    assert first["patient"] == again["patient"] != other["patient"]
    assert len(first["patient"]) == 24 and patient_id not in first["patient"]
    assert first["patient"] == dicom.patient_key(patient_id, b"deployment secret")


@pytest.mark.parametrize(("kwargs", "status", "words"), [
    ({"modality": "CT"}, 422, "not a radiograph"),
    ({"modality": "MR"}, 422, "not a radiograph"),
    ({"view": "LL"}, 422, "lateral"),
    ({"body": "KNEE"}, 422, "knee"),
    ({"extra": {"BurnedInAnnotation": "YES"}}, 422, "burned"),
])
def test_not_a_frontal_chest_radiograph_is_refused(kwargs, status, words):
    data = dicom_files.make(dicom_files.radiograph(64, 64), **kwargs)
    with pytest.raises(DomainError) as info:
        dicom.load(data, "rid")
    assert describe(info.value)[0] == status and words in info.value.message


def test_damaged_or_imageless_dicom_is_400_or_422():
    data = dicom_files.make(dicom_files.radiograph(64, 64))
    with pytest.raises(DomainError) as info:
        dicom.load(data[:-1000])  # cut inside the pixel data
    assert describe(info.value)[0] == 400 and "damaged" in info.value.message
    with pytest.raises(DomainError) as info:
        dicom.load(data[:300])  # cut inside the header: nothing says it is a radiograph
    assert describe(info.value)[0] in (400, 422)
    ds = dcmread(io.BytesIO(data))
    del ds.PixelData
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    with pytest.raises(DomainError) as info:
        dicom.load(buf.getvalue())
    assert describe(info.value)[0] == 422 and "no image" in info.value.message


def test_dicom_upload_is_diagnosed_and_nothing_identifying_is_kept(make_app, model_server,
                                                                  caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(mlflow_url=model_server)
    client = accounts.bearer_client(app)
    data = dicom_files.make(dicom_files.radiograph())
    uids = dicom_files.uids_of(data)
    resp = client.post("/predict", data={"file": (io.BytesIO(data), "Doe_Jane.dcm")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.json
    assert resp.json["status"] in ("ok", "not_xray")
    data_dir = app.config["RADIO"].data_dir
    stored = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".dcm" for p in stored)
    blob = b"".join(p.read_bytes() for p in stored)
    for value in [*dicom_files.PHI.values(), *uids, "Doe_Jane", "Jane Doe"]:
        assert value.encode() not in blob, value
        assert value not in caplog.text, value
    with db.session_scope(app.config["RADIO"].db_url) as s:
        row = s.scalars(select(Prediction)).one()
    assert row.image_format == "DICOM" and row.source["institution"] == "St Example Hospital"
    assert len(row.source["patient"]) == 24  # keyed hash, for data drift's permutations
    # The prediction page shows the stored copy as a PNG.
    png = client.get(f"/predictions/{row.id}/image")
    assert png.status_code == 200 and png.mimetype == "image/png"


def test_monochrome1_dicom_gets_the_same_answer_as_the_png(make_app, model_server, xray_path):
    grey = np.asarray(Image.open(xray_path).convert("L"), dtype=np.uint16) * 257
    client = accounts.bearer_client(make_app(mlflow_url=model_server))
    answers = []
    for name, data in (("x.png", _png16(grey)),
                       ("x.dcm", dicom_files.make(65535 - grey, photometric="MONOCHROME1"))):
        resp = client.post("/predict", data={"file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
        assert resp.status_code == 200, resp.json
        answers.append({k: resp.json[k] for k in ("status", "label", "probabilities")})
    assert answers[0] == answers[1]


def test_lateral_upload_is_a_clear_422(make_app, model_server):
    client = accounts.bearer_client(make_app(mlflow_url=model_server))
    data = dicom_files.make(dicom_files.radiograph(64, 64), view="LL")
    resp = client.post("/predict", data={"file": (io.BytesIO(data), "x.dcm")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and "frontal" in resp.json["error"] and resp.json["id"]


def _encapsulated(fragment: bytes, syntax, pixels: np.ndarray) -> bytes:
    from pydicom.encaps import encapsulate

    data = dicom_files.make(pixels)
    ds = dcmread(io.BytesIO(data))
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("syntax", ["JPEGLosslessProcess14_1", "JPEGLSLossless",
                                    "JPEG2000Lossless", "RLELossless"])
def test_lossless_compressed_16bit_dicom_matches_the_uncompressed_one(syntax, tmp_path):
    """The compressions radiology departments export (JPEG Lossless is the usual CR/DX
    one): decoded by GDCM or pydicom, they give exactly the uncompressed model input."""
    plain = dicom_files.make(dicom_files.radiograph())
    packed = dicom_files.transcode(plain, syntax, tmp_path)
    assert dcmread(io.BytesIO(packed)).file_meta.TransferSyntaxUID.is_compressed
    assert np.array_equal(dicom.load(packed)[1], dicom.load(plain)[1])


def test_jpeg_compressed_dicom_is_decoded_and_unknown_compression_is_415():
    from pydicom.uid import MPEG2MPML, JPEGBaseline8Bit

    pixels = (dicom_files.radiograph() >> 8).astype(np.uint8)
    jpeg = io.BytesIO()
    Image.fromarray(pixels).save(jpeg, format="JPEG", quality=95)
    data = _encapsulated(jpeg.getvalue(), JPEGBaseline8Bit, pixels)
    clean, image, _, _png = dicom.load(data)
    direct = np.asarray(Image.open(io.BytesIO(jpeg.getvalue())).convert("L"))
    from serving.preprocessing import to_array

    assert np.abs(image.astype(int) - to_array(Image.fromarray(direct)).astype(int)).max() <= 1
    assert dcmread(io.BytesIO(clean)).file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    with pytest.raises(DomainError) as info:
        dicom.load(_encapsulated(b"\x00\x00\x01\xb3video", MPEG2MPML, pixels))
    assert describe(info.value)[0] == 415 and "MPEG2" in info.value.message


def test_dicom_and_contributions_wait_for_the_decode_slot(make_app, model_server):
    """DICOM decodes (issue 26: they skipped it) and contributions take a decode slot."""
    app = make_app(mlflow_url=model_server, decode_slots=1, decode_wait_s=0.2)
    accounts.add_user(app, "rad", "radiologist")
    from app.platform import state

    with app.app_context():
        slots = state.get().decode_slots
    data = dicom_files.make(dicom_files.radiograph())
    rad = app.test_client()
    accounts.login(rad, "rad")
    csrf = accounts.csrf_from(rad.get("/history").get_data(as_text=True))
    assert slots.acquire(blocking=False)  # another thread is decoding a large image
    try:
        resp = accounts.bearer_client(app).post(
            "/predict", data={"file": (io.BytesIO(data), "x.dcm")},
            content_type="multipart/form-data")
        assert resp.status_code == 503 and "busy decoding" in resp.json["error"]
        page = rad.post("/contribute", content_type="multipart/form-data", data={
            "file": (io.BytesIO(data), "x.dcm"), "csrf_token": csrf})
        assert page.status_code == 503 and "busy decoding" in page.get_data(as_text=True)
    finally:
        slots.release()


def test_deflated_dicom_within_the_budget_reads_like_the_plain_one():
    plain = dicom_files.make(dicom_files.radiograph())
    ds = dcmread(io.BytesIO(plain))
    ds.file_meta.TransferSyntaxUID = dicom_files.DEFLATED
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)  # pydicom deflates what the syntax says
    assert b"Doe^Jane" not in buf.getvalue()  # really compressed
    assert np.array_equal(dicom.load(buf.getvalue()).image, dicom.load(plain).image)


def test_a_stored_dicom_is_shown_from_its_rendering_never_decoded_again(make_app,
                                                                        model_server,
                                                                        monkeypatch):
    app = make_app(mlflow_url=model_server)
    client = accounts.bearer_client(app)
    pixels = dicom_files.radiograph(3000, 2600)  # larger than the rendering
    resp = client.post("/predict", data={"file": (io.BytesIO(dicom_files.make(pixels)),
                                                  "x.dcm")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.json

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("a stored DICOM was decoded again to be shown")

    monkeypatch.setattr(dicom, "load", no_decoding)
    monkeypatch.setattr(dicom, "to_display", no_decoding)
    shown = client.get(f"/predictions/{resp.json['id']}/image")
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    image = Image.open(io.BytesIO(shown.data))
    assert image.mode == "L" and image.size == (1775, 2048)  # 2600x3000 to 2048 high
    renderings = list(app.config["RADIO"].data_dir.rglob("*.dcm.png"))
    assert len(renderings) == 1 and renderings[0].read_bytes() == shown.data


def test_header_budget_is_checked_before_decoding(monkeypatch):
    """A header over the byte budget never reaches the decoder, whatever the syntax."""
    from pydicom.dataset import Dataset

    def no_decoding(_self):
        raise AssertionError("decoded")

    monkeypatch.setattr(Dataset, "pixel_array", property(no_decoding))
    for data in (dicom_files.rle_bomb(6000), dicom_files.encapsulated(
            b"\xff\x4f\xff\x51" + bytes(60), dicom_files.JPEG_2000, 6000, 6000)):
        with pytest.raises(DomainError) as info:
            dicom.load(data)
        assert describe(info.value)[0] == 400 and "too many pixels" in info.value.message
        assert "6000x6000, 16-bit" in info.value.message and "limit is 40 MB" in info.value.message
