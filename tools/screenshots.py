"""Screenshots of every page, desktop and phone, for a person to review: ``make screenshots``.

Starts the real stack on 127.0.0.1 (the registry's production model under mlflow/serve.sh and
the app under gunicorn, ``bench.stack``) on a scratch data folder, makes one user per role,
analyses a few images (real X-rays from ../shared/data when present, a DICOM, a document)
and writes a full-page PNG of each page at 1280 px and 390 px with Debian's Chromium
(Playwright, executable_path) under ``build/screenshots/{desktop,phone}/``. Nothing is
committed; nothing leaves the machine (every request outside the app is aborted).

Options: ``--out FOLDER`` [build/screenshots], ``--chromium PATH`` [/usr/bin/chromium].
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import requests
from PIL import Image, ImageDraw

from bench.stack import ROOT, Stack

PASSWORD = "screenshots are for review only"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _users(data_dir: Path) -> dict[str, str]:
    """One user per role (password set, no change asked); a clinician's API token."""
    from app.accounts import users
    from app.store import db

    url = db.default_url(data_dir)
    db.migrate(url, data_dir=data_dir)
    with db.session_scope(url) as s:
        for name, role in (("clinician", "clinician"), ("radiologist", "radiologist"),
                           ("admin", "admin"), ("colleague", "clinician")):
            user = users.find(s, name) or users.create_user(s, name, role)
            users.set_password(s, user, PASSWORD, one_time=False)
        tokens = {name: users.issue_token(s, users.find(s, name))
                  for name in ("clinician", "colleague")}
    return tokens


def _dicom(pixels: np.ndarray) -> bytes:
    """A 16-bit MONOCHROME1 chest DICOM of ``pixels`` (no patient data in it)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        generate_uid(), generate_uid(), generate_uid())
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "PA", "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    ds.PixelData = (65535 - pixels.astype(np.uint16) * 257).astype(np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _samples() -> list[tuple[str, bytes]]:
    """(file name, bytes) to analyse: real X-rays when present, a DICOM, a document."""
    shared = ROOT.parent / "shared" / "data"
    found = sorted(p for p in shared.glob("*/val/*/*") if p.suffix.lower() in (".png", ".jpg"))
    picked = found[:: max(1, len(found) // 4)][:4]
    samples = [(p.name, p.read_bytes()) for p in picked]
    if picked:
        grey = Image.open(picked[0]).convert("L")
        grey.thumbnail((512, 512))
        samples.append(("film.dcm", _dicom(np.asarray(grey))))
    page = Image.new("L", (600, 800), 250)
    draw = ImageDraw.Draw(page)
    for y in range(60, 760, 24):
        draw.line((50, y, 550, y), fill=40, width=3)
    buf = io.BytesIO()
    page.save(buf, format="PNG")
    samples.append(("letter.png", buf.getvalue()))
    return samples


def _analyse(url: str, token: str, samples: list[tuple[str, bytes]],
             path: str = "/predict") -> list[str]:
    """The ids of the analysed uploads (``/teaching/predict``: kept for the user's read)."""
    ids = []
    for name, data in samples:
        resp = requests.post(f"{url}{path}", files={"file": (name, data)}, timeout=120,
                             headers={"Authorization": f"Bearer {token}"})
        if resp.ok:
            ids.append(resp.json()["id"])
    return ids


def _dataset_version(data_dir: Path, pred_ids: list[str]) -> int | None:
    """The radiologist validates the first answered case and the admin makes a production
    dataset version of it (what the queue and the Datasets page do); its number, or None
    when no upload was answered (no X-ray in ../shared/data)."""
    from app.accounts import users
    from app.clinical import reviews
    from app.datasets import service
    from app.store import db
    from app.store.db.models import Prediction

    with db.session_scope(db.default_url(data_dir)) as s:
        found = [s.get(Prediction, pid) for pid in pred_ids]
        answered = [p for p in found if p is not None and p.status == "ok"]
        if not answered:
            return None
        reviews.add(s, answered[0], users.find(s, "radiologist"), "validated", None, "")
        s.flush()
        return service.snapshot_production(s, data_dir, by="admin")["version"]


def _shoot(browser, url: str, out: Path, user: str, pages: dict[str, str],
           upload: bytes | None = None) -> None:
    for kind, viewport in VIEWPORTS.items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.route("**/*", lambda route: route.continue_()
                   if route.request.url.startswith(url) else route.abort())
        page.goto(url + "/")
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state("load")
        folder = out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in pages.items():
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{user}-{name}.png"), full_page=True)
        if upload is not None:
            page.goto(url + "/")
            page.wait_for_load_state("load")
            page.get_by_label("Chest X-ray image").set_input_files(
                files=[{"name": "film.png", "mimeType": "image/png", "buffer": upload}])
            page.get_by_role("button", name="Analyse").click()
            page.locator("#result-heading").wait_for(state="visible", timeout=120_000)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{user}-analyse-answer.png"), full_page=True)
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "screenshots")
    parser.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    args = parser.parse_args(argv)
    if not args.chromium.exists():
        print(f"error: {args.chromium} is missing (apt-get install chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        tokens = _users(data_dir)
        stack = Stack(Path(tmp), RADIO_SITE="Screenshots")  # data in tmp/data
        try:
            samples = _samples()
            ids = _analyse(stack.url, tokens["clinician"], samples)
            other = _analyse(stack.url, tokens["colleague"], samples[:1])
            blinded = _analyse(stack.url, tokens["clinician"], samples[:1], "/teaching/predict")
            case = {f"case-{i + 1}": f"/predictions/{pid}" for i, pid in enumerate(ids)}
            version = _dataset_version(data_dir, ids)
            common = {"analyse": "/", "history": "/history", "tokens": "/account/tokens",
                      "docs": "/docs", "not-found": "/no/such/page", "my-reads": "/teaching",
                      "password": "/account/password"}
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(args.chromium),
                                             headless=True, args=ARGS)
                xray = next((d for n, d in samples if n.endswith(".png")), None)
                _shoot(browser, stack.url, args.out, "clinician",
                       common | case | ({"not-allowed": f"/predictions/{other[0]}"}
                                        if other else {})
                       | ({"teaching-read": f"/predictions/{blinded[0]}/read"}
                          if blinded else {}), upload=xray)
                _shoot(browser, stack.url, args.out, "radiologist",
                       {"queue": "/queue", "contribute": "/contribute"} | case)
                _shoot(browser, stack.url, args.out, "admin",
                       {"models": "/admin/models", "monitoring": "/admin/monitoring",
                        "users": "/admin/users", "audit": "/admin/audit",
                        "datasets": "/datasets"}
                       | ({"dataset-version": f"/datasets/production/v{version}"}
                          if version else {}))
                browser.close()
        finally:
            stack.stop()
    shots = sorted(args.out.rglob("*.png"))
    print(f"{len(shots)} screenshots under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
