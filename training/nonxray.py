"""A set of images that are NOT chest X-rays, assembled on any machine with the project
installed: photographs and pictures shipped inside installed Python packages, plus
generated documents, charts, screenshots-like layouts, blanks, noise and textures.

Each item is ``(name, PNG/JPEG bytes)``, ready for :func:`serving.preprocessing.preprocess`.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

PACKAGES = ("matplotlib", "sklearn", "mlflow", "playwright", "PIL", "skimage", "scipy")


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def package_images(min_side: int = 64) -> Iterator[tuple[str, Image.Image]]:
    """Pictures shipped inside installed packages (photos, logos, icons, UI images)."""
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
                continue
            try:
                with Image.open(path) as img:
                    if min(img.size) < min_side:
                        continue
                    img.load()
                    yield f"{pkg}:{path.name}", img.copy()
            except OSError:
                continue


def _photo_variants(name: str, img: Image.Image) -> Iterator[tuple[str, Image.Image]]:
    """The picture, its greyscale version (the hard case) and a centre crop of it."""
    rgb = img.convert("RGB")
    yield name, rgb
    grey = ImageOps.grayscale(rgb)
    yield f"{name}:grey", grey
    w, h = grey.size
    if min(w, h) >= 128:
        yield f"{name}:grey-crop", grey.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))


def _document(rng: np.random.Generator, i: int) -> Image.Image:
    img = Image.new("L", (850, 1100), 255)
    d = ImageDraw.Draw(img)
    y = 60
    while y < 1040:
        words = " ".join(
            "".join(rng.choice(list("abcdefghij klmnop"), rng.integers(3, 9))) for _ in range(12)
        )
        d.text((60, y), words, fill=int(rng.integers(0, 60)))
        y += int(rng.integers(18, 30))
    if i % 2:
        d.rectangle((500, 700, 800, 1000), outline=0, width=3)
    return img


def _chart(rng: np.random.Generator, i: int) -> Image.Image:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=80)
    x = np.arange(20)
    if i % 2:
        ax.bar(x, rng.random(20))
    else:
        ax.plot(x, np.cumsum(rng.normal(size=20)))
    ax.set_title(f"chart {i}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _screenshot(rng: np.random.Generator, i: int) -> Image.Image:
    img = Image.new("RGB", (1280, 800), tuple(int(v) for v in rng.integers(200, 256, 3)))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, 1280, 60), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    for _ in range(12):
        x, y = int(rng.integers(0, 1100)), int(rng.integers(80, 700))
        d.rectangle(
            (x, y, x + int(rng.integers(60, 300)), y + int(rng.integers(20, 120))),
            fill=tuple(int(v) for v in rng.integers(0, 256, 3)),
            outline=(0, 0, 0),
        )
        d.text((x + 5, y + 5), f"button {i}", fill=(0, 0, 0))
    return img


def _texture(rng: np.random.Generator, i: int) -> Image.Image:
    kind = i % 6
    if kind == 0:
        arr = np.full((512, 512), int(rng.integers(0, 256)), np.uint8)  # blank
    elif kind == 1:
        arr = rng.integers(0, 256, (512, 512), dtype=np.uint8)  # white noise
    elif kind == 2:
        arr = np.tile(np.linspace(0, 255, 512), (512, 1)).astype(np.uint8)  # gradient
        if i % 4 == 2:
            arr = arr.T.copy()
    elif kind == 3:
        cell = int(rng.integers(16, 96))
        yy, xx = np.indices((512, 512)) // cell
        arr = (((yy + xx) % 2) * 255).astype(np.uint8)  # checkerboard
    elif kind == 4:
        small = rng.integers(0, 256, (8, 8), dtype=np.uint8)  # smooth random field
        return Image.fromarray(small).resize((512, 512), Image.Resampling.BICUBIC)
    else:
        img = Image.new("L", (512, 512), int(rng.integers(0, 80)))  # random shapes
        d = ImageDraw.Draw(img)
        for _ in range(8):
            x, y = rng.integers(0, 400, 2)
            d.ellipse((int(x), int(y), int(x) + 100, int(y) + 80), fill=int(rng.integers(100, 256)))
        return img.filter(ImageFilter.GaussianBlur(2))
    return Image.fromarray(arr)


def generated(seed: int = 0, per_kind: int = 12) -> Iterator[tuple[str, Image.Image]]:
    """Documents, charts, screenshot-like layouts and textures, deterministic by seed."""
    rng = np.random.default_rng(seed)
    for maker in (_document, _chart, _screenshot):
        for i in range(per_kind):
            yield f"generated:{maker.__name__.strip('_')}{i}", maker(rng, i)
    for i in range(4 * per_kind):
        yield f"generated:texture{i}", _texture(rng, i)


def non_xray_set(seed: int = 0) -> list[tuple[str, bytes]]:
    """The whole set, encoded (photos as JPEG, the rest as PNG)."""
    items = []
    for name, img in package_images():
        for vname, variant in _photo_variants(name, img):
            items.append((vname, _encode(variant, "JPEG" if "jpg" in name.lower() else "PNG")))
    items += [(name, _encode(img)) for name, img in generated(seed)]
    return items
