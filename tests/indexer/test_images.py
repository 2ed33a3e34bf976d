"""Decoding: formats, orientation, pixel modes, draft mode, and refusing bad files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.images import BadImage, Reason, decode, image_extensions, open_image


def _px(im: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    v = im.getpixel(xy)
    assert isinstance(v, tuple)
    return v


@pytest.mark.parametrize("fmt,ext", [
    ("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"),
    ("TIFF", "tif"),
])
def test_common_formats_decode_to_rgb(
    tmp_path: Path, fmt: str, ext: str, textured: Callable[..., Image.Image]
) -> None:
    path = tmp_path / f"x.{ext}"
    textured(1, (96, 64)).save(path, fmt)
    im, size = decode(path)
    assert im.mode == "RGB" and im.size == (96, 64) and size == (96, 64)
    assert ext in {e.lstrip(".") for e in image_extensions()}


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Left half red, right half blue, stored sideways with "rotate 90° clockwise to view".
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, "JPEG", exif=exif, quality=95)
    im, size = decode(path)
    assert im.size == (20, 40) and size == (20, 40)
    top, bottom = _px(im, (10, 5)), _px(im, (10, 34))
    assert top[0] > 200 and top[2] < 60  # red moved to the top
    assert bottom[2] > 200 and bottom[0] < 60


def test_transparency_composites_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.save(tmp_path / "a.png")
    im = open_image(tmp_path / "a.png")
    assert _px(im, (4, 4)) == (255, 255, 255) and _px(im, (0, 0)) == (255, 0, 0)

    la = Image.new("LA", (8, 8), (0, 0))
    la.save(tmp_path / "la.png")
    assert _px(open_image(tmp_path / "la.png"), (1, 1)) == (255, 255, 255)

    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.save(tmp_path / "p.gif", transparency=0)
    im = open_image(tmp_path / "p.gif")
    assert _px(im, (4, 4)) == (255, 255, 255) and _px(im, (0, 0)) == (0, 255, 0)


def test_keep_alpha_returns_transparent_images_as_rgba_for_display(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    rgba.putpixel((0, 0), (255, 0, 0, 255))
    rgba.save(tmp_path / "a.png")
    im = open_image(tmp_path / "a.png", keep_alpha=True)
    assert im.mode == "RGBA" and im.getpixel((4, 4))[3] == 0
    assert im.getpixel((0, 0)) == (255, 0, 0, 255)

    Image.new("LA", (8, 8), (90, 0)).save(tmp_path / "la.png")
    assert open_image(tmp_path / "la.png", keep_alpha=True).getpixel((1, 1)) == (90, 90, 90, 0)

    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((0, 0), 1)
    pal.save(tmp_path / "p.gif", transparency=0)
    im = open_image(tmp_path / "p.gif", keep_alpha=True)
    assert im.mode == "RGBA" and im.getpixel((4, 4))[3] == 0
    assert im.getpixel((0, 0)) == (0, 255, 0, 255)

    # Nothing transparent (an opaque alpha channel, a palette without transparency): RGB.
    Image.new("RGBA", (8, 8), (1, 2, 3, 255)).save(tmp_path / "opaque.png")
    assert open_image(tmp_path / "opaque.png", keep_alpha=True).mode == "RGB"
    Image.new("P", (8, 8), 0).save(tmp_path / "plain.gif")
    assert open_image(tmp_path / "plain.gif", keep_alpha=True).mode == "RGB"


def test_cmyk_and_sixteen_bit_are_converted_not_clipped(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    r, g, b = _px(open_image(tmp_path / "c.jpg"), (4, 4))
    assert r > 200 and g < 60 and b < 60  # cyan-free, full magenta+yellow: red

    mid = Image.fromarray(np.full((8, 8), 32768, np.uint16))  # I;16 half scale
    mid.save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as raw:
        assert raw.mode.startswith("I")
    assert abs(_px(open_image(tmp_path / "g16.png"), (2, 2))[0] - 128) <= 1

    Image.fromarray(np.full((8, 8), 40000, np.int32), "I").save(tmp_path / "g32.tif")
    assert abs(_px(open_image(tmp_path / "g32.tif"), (2, 2))[0] - 156) <= 1


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r, g, b = _px(open_image(tmp_path / "anim.gif"), (4, 4))
    assert r > 200 and b < 60


def test_jpeg_draft_decodes_small_but_reports_full_size(
    tmp_path: Path, textured: Callable[..., Image.Image]
) -> None:
    path = tmp_path / "big.jpg"
    textured(2, (1600, 1200)).save(path, "JPEG", quality=90)
    im, size = decode(path.read_bytes(), draft_size=(224, 224))
    assert size == (1600, 1200)
    assert im.size == (400, 300)  # DCT scale 1/4: the smallest still >= 224 on both sides
    full, _ = decode(path)
    assert full.size == (1600, 1200)


@pytest.mark.parametrize("content,reason", [
    (b"", Reason.EMPTY),
    (b"just some text, not a picture", Reason.NOT_IMAGE),
])
def test_bad_bytes_have_a_reason(tmp_path: Path, content: bytes, reason: Reason) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    for source in (path, content):
        with pytest.raises(BadImage) as exc:
            decode(source)
        assert exc.value.reason is reason


def test_truncated_and_missing(tmp_path: Path, textured: Callable[..., Image.Image]) -> None:
    path = tmp_path / "t.jpg"
    textured(3, (320, 240)).save(path, "JPEG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage) as exc:
        open_image(path)
    assert exc.value.reason is Reason.CORRUPT
    with pytest.raises(BadImage) as exc:
        open_image(tmp_path / "gone.jpg")
    assert exc.value.reason is Reason.VANISHED


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_refused_at_the_warning_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", (300, 300)).save(path)  # 90,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60_000)  # Pillow would only warn here
    with pytest.raises(BadImage) as exc:
        open_image(path)
    assert exc.value.reason is Reason.BOMB
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # Pillow raises its own error
    with pytest.raises(BadImage) as exc:
        open_image(path)
    assert exc.value.reason is Reason.BOMB
