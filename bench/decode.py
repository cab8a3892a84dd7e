"""``make bench-decode``: memory of decoding the worst images Radio accepts, alone and 8 at once.

Cases (issue 12): a 16-bit 7000x7000 PNG (49 MP, ~100-300 kB on disk), a 2048x2048 JPEG
(a real val X-ray enlarged, when ../shared/data is here), the largest RGBA PNG under the
decode budget (5000x5000), an 8-bit 7000x7000 PNG, and two refused ones (a 7000x7000 RGBA
PNG and a 20000x20000 1-bit bomb) whose refusal must cost nothing; and the DICOMs of issue
26: the largest accepted deflated and RLE ones (16-bit, at the RADIO_MAX_DICOM_DECODE_MB
budget) and four hostile ones (a deflate bomb, an RLE bomb, a JPEG 2000 and a JPEG-LS frame
declaring 60000x60000), all made by ``tests/dicom_files.py``.

1. Each case decoded once by ``serving.preprocessing.preprocess`` in a fresh process: peak
   RSS above the interpreter's baseline, and seconds.
2. The real stack (model server + gunicorn, 2 workers): each case uploaded by 8 clients at
   once; statuses, peak RSS of the busiest worker (VmHWM, since start) and its RSS after.

Prints a table, the verdict on the DICOM acceptance (every worker under 300 MB peak with
eight hostile DICOMs at once) and, as the last line, one JSON object. Knobs:
RADIO_BENCH_DATA, RADIO_BENCH_CASES (only the cases whose name contains it, e.g. "dicom").
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from bench.stack import ROOT, Stack

DATA = Path(os.environ.get("RADIO_BENCH_DATA", ROOT.parent / "shared" / "data"))
CLIENTS = 8
WORKER_LIMIT_MB = 300  # issue 26's acceptance, per worker, eight hostile DICOMs at once


def _png_zeros(side: int, bits: int, colour: int) -> bytes:
    """A valid PNG of zeros written row by row (no full-size array in this process)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    row = b"\x00" + bytes((side * bits * channels + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", side, side, bits, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body)
            + chunk(b"IEND", b""))


def _gradient_png16(side: int) -> bytes:
    ramp = (np.arange(side, dtype=np.uint32) * 4095 // side).astype(np.uint16) * 16
    img = Image.fromarray(np.add.outer(ramp // 2, ramp // 2).astype(np.uint16))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_2048() -> bytes:
    files = sorted(DATA.glob("*/val/*/*.png"))
    src = (Image.open(files[0]).convert("L") if files
           else Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512), np.uint8)))
    buf = io.BytesIO()
    src.resize((2048, 2048), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _dicom_cases() -> dict[str, bytes]:
    sys.path.insert(0, str(ROOT / "tests"))
    import dicom_files as d  # the hostile DICOMs of the test corpus

    from app.intake.dicom_limits import MAX_DICOM_DECODE_MB

    side = int((MAX_DICOM_DECODE_MB * 2**20 / 2) ** 0.5) - 4  # 16-bit, just under the budget
    return {
        f"dicom-deflate-{side}": d.deflate_bomb(side * side * 2 / 2**20),
        f"dicom-rle-{side}": d.rle_bomb(side),
        "dicom-deflate-bomb (refused)": d.deflate_bomb(200),
        "dicom-rle-7000 (refused)": d.rle_bomb(7000),
        "dicom-j2k-60000 (refused)": d.jpeg2000(64, declared=60000),
        "dicom-jls-60000 (refused)": d.jpeg_ls(64, 60000),
    }


def cases() -> dict[str, bytes]:
    """Name -> file bytes of every case (RADIO_BENCH_CASES: those whose name has it)."""
    only = os.environ.get("RADIO_BENCH_CASES", "")
    return {name: data for name, data in _all_cases().items() if only in name}


def _all_cases() -> dict[str, bytes]:
    return {
        "png16-7000": _gradient_png16(7000),
        "jpeg-2048": _jpeg_2048(),
        "rgba-5000": _png_zeros(5000, 8, 6),
        "png8-7000": _png_zeros(7000, 8, 0),
        "rgba-7000 (refused)": _png_zeros(7000, 8, 6),
        "bomb-20000 (refused)": _png_zeros(20000, 1, 0),
        **_dicom_cases(),
    }


# VmHWM, not ru_maxrss: the latter survives exec and would include this parent's peak.
_ALONE = """
import sys, time
from app.platform.failures import DomainError
from app.intake import dicom
from serving.preprocessing import ImageError, preprocess
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
data = open(sys.argv[1], "rb").read()
if dicom.is_dicom(data):  # pydicom's import is not the decode's cost
    import pydicom.encaps, pydicom.pixels
base = hwm()
t0 = time.perf_counter()
try:
    dicom.load(data) if dicom.is_dicom(data) else preprocess(data)
    outcome = "ok"
except (ImageError, DomainError):
    outcome = "refused"
print(outcome, hwm() - base, time.perf_counter() - t0)
"""


def alone(path: Path) -> dict:
    """One decode in a fresh interpreter: outcome, peak MB above baseline, seconds."""
    out = subprocess.run([sys.executable, "-c", _ALONE, str(path)], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
    return {"outcome": out[0], "peak_mb": round(float(out[1]), 1), "s": round(float(out[2]), 2)}


def eight_at_once(url: str, name: str, data: bytes, auth: dict[str, str]) -> Counter:
    """Statuses of CLIENTS simultaneous uploads of ``data``."""
    statuses: Counter = Counter()
    barrier = threading.Barrier(CLIENTS)

    def client() -> None:
        barrier.wait()
        r = requests.post(f"{url}/predict", files={"file": (name, data)}, headers=auth,
                          timeout=120)
        statuses[r.status_code] += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def main() -> int:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="radio-bench-decode-") as tmp_s:
        tmp = Path(tmp_s)
        files = {}
        for name, data in cases().items():
            files[name] = tmp / name.split()[0]
            files[name].write_bytes(data)
            results[name] = {"kB": round(len(data) / 1024, 1), "alone": alone(files[name])}
        stack = Stack(tmp)
        try:
            results["_stack_before"] = stack.memory()
            for name, path in files.items():
                statuses = eight_at_once(stack.url, name, path.read_bytes(), stack.auth)
                results[name]["eight"] = {"statuses": dict(statuses), **stack.memory()}
        finally:
            stack.stop()
    print(f"{'case':22} {'kB':>7} {'alone':>8} {'peak MB':>8} {'s':>5} | 8 at once: statuses,"
          " worker peak / now MB")
    for name, r in results.items():
        if name.startswith("_"):
            continue
        a, e = r["alone"], r["eight"]
        print(f"{name:22} {r['kB']:>7} {a['outcome']:>8} {a['peak_mb']:>8} {a['s']:>5} | "
              f"{e['statuses']} {e['app_worker_peak_rss_mb']} / {e['app_worker_rss_mb']}")
    before = results["_stack_before"]
    print(f"app worker at start: {before['app_worker_rss_mb']} MB")
    dicom_peaks = [r["eight"]["app_worker_peak_rss_mb"] for n, r in results.items()
                   if n.startswith("dicom")]
    if dicom_peaks:  # VmHWM is since start: the last DICOM case's is the peak of them all
        peak = max(dicom_peaks)
        results["_dicom_worker_peak_rss_mb"] = peak
        print(f"eight DICOMs at once: worker peak {peak} MB "
              f"({'under' if peak < WORKER_LIMIT_MB else 'OVER'} {WORKER_LIMIT_MB} MB)")
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
