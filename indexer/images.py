"""Decode any image Pillow reads into an upright RGB picture, or say why not.

Decoding near the model's input size is the big win: JPEG's DCT can scale by 1/2, 1/4 or
1/8 while decoding (``Image.draft``), so a 12 MP photo costs about what a 0.2 MP one does.
"""

from __future__ import annotations

import io
import os
import struct
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.errors import SumoError

# EXIF orientations 5-8 rotate by 90°, so the upright picture swaps width and height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)


class Reason(StrEnum):
    """Why a file was skipped; the indexer's summary groups failures by these."""

    EMPTY = "empty file (0 bytes)"
    NOT_IMAGE = "not an image Pillow can read"
    CORRUPT = "truncated or corrupt image data"
    BOMB = "too many pixels (decompression bomb guard)"
    UNREADABLE = "cannot read the file"
    VANISHED = "file disappeared during the run"
    UNSUPPORTED = "unsupported pixel format"


class BadImage(SumoError):
    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


def image_extensions() -> frozenset[str]:
    """File suffixes of every format this Pillow can open (not just save)."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def upright_size(im: Image.Image) -> tuple[int, int]:
    """(width, height) as shown, i.e. after the EXIF orientation is applied."""
    w, h = im.size
    try:
        orientation = im.getexif().get(_ORIENTATION_TAG)
    except Exception:  # a broken EXIF block must not cost the picture
        orientation = None
    return (h, w) if orientation in _SWAPPING_ORIENTATIONS else (w, h)


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")  # modes with an alpha channel


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB with transparency composited on white and high bit depths scaled, not clipped."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in _ALPHA_MODES or (mode == "L" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if mode.startswith("I;16") or mode in ("I", "F"):
        # Pillow's own convert clips these to 0..255, turning most 16-bit pictures white.
        a = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        else:
            lo, hi = float(a.min()), float(a.max())
            top = 1.0 if mode == "F" and hi <= 1.0 else 255.0 if hi <= 255 else 65535.0
            if hi > 65535 or lo < 0:  # no standard range: stretch what is there
                a, top = a - lo, max(hi - lo, 1.0)
        grey = np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    try:
        return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGBX...
    except (ValueError, OSError) as exc:
        raise BadImage(Reason.UNSUPPORTED, f"mode {mode}: {exc}") from exc


def _keep_alpha(im: Image.Image) -> Image.Image:
    """RGBA when the image has any transparent pixel (for display), else as ``_to_rgb``."""
    if im.mode in _ALPHA_MODES or (im.mode in ("P", "L") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        lowest, _ = rgba.getchannel("A").getextrema()
        if isinstance(lowest, int):
            # Opaque: compositing on white (``_to_rgb``) would give these very pixels.
            return rgba if lowest < 255 else rgba.convert("RGB")
    return _to_rgb(im)


def decode(
    source: str | os.PathLike[str] | bytes, *, draft_size: tuple[int, int] | None = None,
    keep_alpha: bool = False,
) -> tuple[Image.Image, tuple[int, int]]:
    """Decode to (upright RGB image, upright full-resolution size).

    With ``draft_size`` a JPEG decodes at the smallest DCT scale still at least that big;
    the returned size is always the original's. ``keep_alpha`` returns an image with
    transparent pixels as RGBA instead of composited on white (for showing it, not for
    the model). Raises ``BadImage``.
    """
    fp: io.BytesIO | str | os.PathLike[str]
    if isinstance(source, bytes):
        if not source:
            raise BadImage(Reason.EMPTY)
        fp = io.BytesIO(source)
    else:
        fp = source
        try:
            if os.path.getsize(source) == 0:
                raise BadImage(Reason.EMPTY)
        except FileNotFoundError as exc:
            raise BadImage(Reason.VANISHED) from exc
        except OSError as exc:
            raise BadImage(Reason.UNREADABLE, exc.strerror or str(exc)) from exc
    try:
        with Image.open(fp) as im:
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; SUMO refuses at
            # the warning threshold (the check is explicit because warning filters are
            # process-wide and not thread-safe to toggle from decoder threads).
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and im.width * im.height > limit:
                raise BadImage(Reason.BOMB, f"{im.width}x{im.height} > {limit} pixels")
            size = upright_size(im)
            if draft_size is not None and im.format in ("JPEG", "MPO"):
                im.draft("RGB", draft_size)
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            return (_keep_alpha(upright) if keep_alpha else _to_rgb(upright)), size
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(Reason.BOMB, str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise BadImage(Reason.NOT_IMAGE) from exc
    except FileNotFoundError as exc:
        raise BadImage(Reason.VANISHED) from exc
    except PermissionError as exc:
        raise BadImage(Reason.UNREADABLE, exc.strerror or str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
            struct.error) as exc:
        # Pillow signals broken data with a zoo of exception types.
        raise BadImage(Reason.CORRUPT, str(exc) or type(exc).__name__) from exc


def open_image(
    path: str | os.PathLike[str] | Path, *, draft_size: tuple[int, int] | None = None,
    keep_alpha: bool = False,
) -> Image.Image:
    """An RGB (or, with ``keep_alpha``, RGBA when transparent) EXIF-oriented image; raises
    ``BadImage`` with a reason."""
    return decode(path, draft_size=draft_size, keep_alpha=keep_alpha)[0]
