"""Small images made on the fly for tests (valid and deliberately broken)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

#: the sample images bundled with the repository (real photos and screenshots)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def jpeg(width: int = 320, height: int = 240, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(20, 20, 220))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def png(width: int = 200, height: int = 150) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 10)).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(side: int = 15000) -> bytes:
    """A valid 1-bit PNG of side x side pixels that is a few KB on disk (a decompression bomb)."""
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    raw = zlib.compress(row * side, 9)
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------------
# Every accepted format, as real encoders write it, and polyglots built from them
# ---------------------------------------------------------------------------------------------------


def scene(width: int = 160, height: int = 120, mode: str = "RGB") -> Image.Image:
    """A small picture with edges and colour (so encoders produce real entropy-coded data)."""
    image = Image.new("RGB", (width, height), (30, 120, 200))
    draw = ImageDraw.Draw(image)
    for i in range(0, width, 12):
        draw.line((i, 0, width - i, height), fill=(255 - i % 256, i % 256, 90), width=3)
    draw.ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(240, 220, 20))
    return image.convert(mode)


def encode(fmt: str, image: Image.Image | None = None, **options: object) -> bytes:
    """``image`` (default: ``scene()``) saved by Pillow as ``fmt`` with encoder ``options``."""
    out = io.BytesIO()
    (image or scene()).save(out, fmt, **options)
    return out.getvalue()


def mpo(frames: int = 2, width: int = 160, height: int = 120) -> bytes:
    """A multi-picture JPEG (what many phones save): ``frames`` JPEG frames indexed by the first one's MPF."""
    pictures = [scene(width, height).rotate(15 * k) for k in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "MPO", save_all=True, append_images=pictures[1:], quality=85)
    return out.getvalue()


def zip_archive() -> bytes:
    """A real ZIP archive with one file (what a polyglot appends)."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("payload/run.sh", "#!/bin/sh\necho owned\n" * 20)
    return out.getvalue()


HTML_PAYLOAD = b"<html><body><script>fetch('/admin/host/status?code='+document.cookie)</script></body></html>"

#: the bytes each format's data ends with, for a trailer that pretends to be the end of the image
END_MIMICS: dict[str, bytes] = {
    "JPEG": b"\xff\xd9",
    "PNG": _chunk(b"IEND", b""),
    "GIF": b"\x00\x3b",
    "BMP": b"\x00\x00",
    "WEBP": b"VP8L\x00\x00\x00\x00",
    "TIFF": b"\x00\x00\x00\x00",
}


def png_canvas(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of any size that stays tiny on disk (a blank canvas): cheap boundary cases for limits."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    raw = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", raw) + _chunk(b"IEND", b"")


def bmp_rle8(width: int = 120, height: int = 80) -> bytes:
    """An 8-bit run-length-encoded BMP (Pillow reads RLE8 but cannot write it): horizontal colour bands."""
    palette = b"".join(bytes((i, 255 - i, (i * 7) % 256, 0)) for i in range(256))
    rows = []
    for y in range(height):
        runs, left = b"", width
        while left:
            run = min(left, 255)
            runs += bytes((run, y % 256))
            left -= run
        rows.append(runs + b"\x00\x00")  # end of line
    pixels = b"".join(rows) + b"\x00\x01"  # end of bitmap
    offset = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + info + palette + pixels


def bmp_v5_with_profile(width: int = 80, height: int = 60) -> bytes:
    """A 24-bit BMP with a BITMAPV5HEADER whose embedded ICC profile follows the pixel array (as the spec allows)."""
    stride = (width * 24 + 31) // 32 * 4
    pixels = bytes((x * 3) % 256 for x in range(stride * height))
    profile = b"\x00\x00\x02\x0cicc-profile-stand-in" + b"\x00" * 500
    offset = 14 + 124
    header = bytearray(124)
    struct.pack_into("<IiiHHIIiiII", header, 0, 124, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    struct.pack_into("<I", header, 56, 0x4D424544)  # bV5CSType = PROFILE_EMBEDDED
    struct.pack_into("<III", header, 108, 4, 124 + len(pixels), len(profile))  # intent, profile offset, size
    total = offset + len(pixels) + len(profile)
    return b"BM" + struct.pack("<IHHI", total, 0, 0, offset) + bytes(header) + pixels + profile


# ---------------------------------------------------------------------------------------------------
# What phones append after a JPEG's end: Google motion photos (Container XMP) and Samsung's SEF trailer
# ---------------------------------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_stand_in() -> bytes:
    """A small ISO base media file (ftyp, moov, mdat boxes) standing in for a motion photo's video."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    moov = _box(b"moov", _box(b"mvhd", bytes(100)))
    return ftyp + moov + _box(b"mdat", bytes(range(256)) * 8)


def _container_xmp(items: list[tuple[str, str, int]]) -> bytes:
    entries = "".join(
        f'<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="{mime}" Item:Semantic="{semantic}" '
        f'Item:Length="{length}"/></rdf:li>'
        for mime, semantic, length in items
    )
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Camera="http://ns.google.com/photos/1.0/camera/" '
        'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
        'xmlns:Item="http://ns.google.com/photos/1.0/container/item/" Camera:MotionPhoto="1" '
        f'Camera:MotionPhotoVersion="1"><Container:Directory><rdf:Seq>{entries}</rdf:Seq></Container:Directory>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    ).encode()


def motion_photo(video: bytes | None = None, declared: int | None = None, mime: str = "video/mp4") -> bytes:
    """A Motion Photo 1.0 JPEG: the photo, its Container XMP declaring the video's length, the video appended."""
    video = mp4_stand_in() if video is None else video
    xmp = _container_xmp(
        [("image/jpeg", "Primary", 0), (mime, "MotionPhoto", len(video) if declared is None else declared)]
    )
    return encode("JPEG", xmp=xmp) + video


def micro_video() -> bytes:
    """The older Google "MicroVideo" form: the XMP gives the video's offset from the end of the file."""
    video = mp4_stand_in()
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" GCamera:MicroVideo="1" '
        f'GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="{len(video)}"/></rdf:RDF></x:xmpmeta>'
    ).encode()
    return encode("JPEG", xmp=xmp) + video


def samsung_trailer_blocks() -> list[tuple[int, bytes, bytes]]:
    """(type, name, value) of a typical Samsung trailer: capture time, and a motion-photo video."""
    return [(0x0A01, b"Image_UTC_Data", b"1764670272000"), (0x0A30, b"MotionPhoto_Data", mp4_stand_in())]


def samsung_sef(image: bytes, blocks: list[tuple[int, bytes, bytes]] | None = None, gap: bytes = b"") -> bytes:
    """``image`` followed by ``gap`` and a Samsung SEF trailer: blocks, the SEFH directory, its length, "SEFT"."""
    body, starts = b"", []
    for kind, name, value in samsung_trailer_blocks() if blocks is None else blocks:
        starts.append((kind, len(body)))
        body += struct.pack("<HHI", 0, kind, len(name)) + name + value
    sizes = [b - a for (_, a), (_, b) in zip(starts, [*starts[1:], (0, len(body))], strict=True)]
    directory = b"SEFH" + struct.pack("<II", 107, len(starts))
    for (kind, start), size in zip(starts, sizes, strict=True):
        directory += struct.pack("<HHII", 0, kind, len(body) - start, size)
    return image + gap + body + directory + struct.pack("<I", len(directory)) + b"SEFT"


def samsung_motion_photo() -> bytes:
    """A Samsung motion photo: Container XMP naming a video, the video itself inside the SEF trailer's block."""
    xmp = _container_xmp([("image/jpeg", "Primary", 0), ("video/mp4", "MotionPhoto", len(mp4_stand_in()))])
    return samsung_sef(encode("JPEG", xmp=xmp))


def png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    """``image`` encoded as ``fmt`` (PNG unless told)."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()
