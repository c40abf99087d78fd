"""Where an image file's own data ends, found by walking each format's structure (never by searching for a marker).

``image_end(data, fmt)`` returns the offset just past the last byte that belongs to the image, so that the caller
can refuse whatever follows (a ZIP, HTML, a second file: a polyglot). Each walker follows the format's own
length fields: JPEG segments and entropy-coded scans to EOI (plus the extra frames an MPO file declares in its
MP Index IFD), PNG chunks with their CRCs to IEND, GIF blocks and sub-blocks to the trailer, the BMP pixel array
(and embedded ICC profile) as its header describes it, the RIFF chunks of WEBP, and every IFD, value, strip and
tile of a TIFF. A file whose structure is broken raises ``MalformedImage``; data hidden *inside* the structure
(a JPEG comment, a PNG ancillary chunk, an unreferenced TIFF gap) is out of scope here — see
docs/image-validation.md.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["MalformedImage", "HiddenData", "image_end", "is_padding", "PADDING_TOLERANCE"]

#: Bytes after the image data that are tolerated when every one of them is 0x00 or 0xFF: some cameras and
#: writers pad files to a block size or leave JPEG fill bytes; padding carries no payload. Anything else
#: after the image data, or more padding than this, is refused.
PADDING_TOLERANCE = 4096


class MalformedImage(ValueError):
    """The file's structure is broken (truncated, a length that runs past the end, a bad CRC)."""


class HiddenData(ValueError):
    """Bytes that belong to no image sit between declared parts of the file (e.g. between MPO frames)."""

    def __init__(self, message: str, offset: int, length: int) -> None:
        super().__init__(message)
        self.offset = offset
        self.length = length


def is_padding(tail: bytes) -> bool:
    """True when ``tail`` is short and only padding bytes (0x00 / 0xFF)."""
    return len(tail) <= PADDING_TOLERANCE and not tail.strip(b"\x00\xff")


def image_end(data: bytes, fmt: str) -> int:
    """Offset just past the image data of ``data`` (a file of format ``fmt`` as ``sniff_format`` names it)."""
    walkers: dict[str, Callable[[bytes], int]] = {
        "JPEG": _jpeg_file_end,
        "PNG": _png_end,
        "GIF": _gif_end,
        "BMP": _bmp_end,
        "WEBP": _webp_end,
        "TIFF": _tiff_end,
    }
    try:
        return walkers[fmt](data)
    except (struct.error, IndexError) as exc:  # a fixed-size field read past the end of the data
        raise MalformedImage(f"the {fmt} file ends in the middle of a header field") from exc


# ---------------------------------------------------------------------------------------------------
# JPEG (and MPO: JPEG frames declared in the first frame's APP2 "MPF" segment)
# ---------------------------------------------------------------------------------------------------

_SOS, _EOI, _SOI, _APP1, _APP2 = 0xDA, 0xD9, 0xD8, 0xE1, 0xE2
_XMP_ID = b"http://ns.adobe.com/xap/1.0/\x00"
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass
class _JpegFrame:
    end: int  # offset past EOI
    mp_header: int | None = None  # offset of the MP header (APP2 "MPF"), if any
    xmp: bytes = b""  # the standard XMP packet (APP1), if any


def _jpeg_end(data: bytes, start: int) -> _JpegFrame:
    """Walk the JPEG at ``start`` to its EOI, noting its MPF header and XMP packet."""
    n = len(data)
    if data[start : start + 2] != b"\xff\xd8":
        raise MalformedImage(f"no JPEG start-of-image marker at byte {start}")
    pos = start + 2
    mp_header: int | None = None
    xmp = b""
    while True:
        if pos >= n:
            raise MalformedImage("the JPEG file ends before its end-of-image marker (truncated)")
        if data[pos] != 0xFF:
            raise MalformedImage(f"the JPEG file has no marker where one must be (byte {pos})")
        while pos < n and data[pos] == 0xFF:  # fill bytes may precede any marker
            pos += 1
        if pos >= n:
            raise MalformedImage("the JPEG file ends before its end-of-image marker (truncated)")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            return _JpegFrame(pos, mp_header, xmp)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM and RSTn stand alone
            continue
        if marker in (0x00, _SOI):
            raise MalformedImage(f"the JPEG file has an invalid marker 0xFF{marker:02X} at byte {pos - 2}")
        if pos + 2 > n:
            raise MalformedImage("the JPEG file ends inside a segment header (truncated)")
        length = struct.unpack_from(">H", data, pos)[0]
        if length < 2 or pos + length > n:
            raise MalformedImage(f"the JPEG segment 0xFF{marker:02X} at byte {pos - 2} runs past the end of the file")
        if marker == _APP2 and mp_header is None and data[pos + 2 : pos + 6] == b"MPF\x00":
            mp_header = pos + 6
        elif marker == _APP1 and not xmp and data[pos + 2 : pos + 2 + len(_XMP_ID)] == _XMP_ID:
            xmp = data[pos + 2 + len(_XMP_ID) : pos + length]
        pos += length
        if marker == _SOS:
            pos = _entropy_coded_end(data, pos)


def _entropy_coded_end(data: bytes, pos: int) -> int:
    """Offset of the marker that ends the entropy-coded data starting at ``pos``: the first 0xFF followed by
    anything but a stuffed 0x00, a restart marker (RSTn) or another 0xFF (a fill byte)."""
    found = _SCAN_END.search(data, pos)
    if found is None:
        raise MalformedImage("the JPEG scan data runs to the end of the file with no end-of-image marker")
    return found.start()


def _jpeg_file_end(data: bytes) -> int:
    """End of a JPEG and of what it declares after its EOI: MPO frames (MPF, also Ultra HDR gain maps), the
    items of a Google Container directory (motion-photo video), a Samsung SEF trailer. Every byte after the
    primary image must lie in one of those (or be padding); each is walked by its own structure."""
    primary = _jpeg_end(data, 0)
    if primary.end == len(data):
        return primary.end
    regions: list[tuple[int, int]] = []
    if primary.mp_header is not None:
        # Further frames are found at their declared offsets and walked like the first; their declared sizes
        # are not trusted (Pillow's MPO writer, for one, declares wrong sizes from the third frame on).
        previous = primary.end
        for frame_start in _mp_frame_offsets(data, primary.mp_header):
            if frame_start < previous or frame_start >= len(data):
                raise MalformedImage(
                    f"an MPO frame declared at byte {frame_start} overlaps the previous frame or lies past the end"
                )
            previous = _jpeg_end(data, frame_start).end
            regions.append((frame_start, previous))
    for declared in (_container_items, _samsung_trailer):
        try:
            regions += declared(data, primary)
        except (MalformedImage, HiddenData, struct.error, IndexError, UnicodeError, ValueError):
            pass  # a declaration that does not check out covers nothing: its bytes count as appended
    cursor = primary.end
    for start, stop in sorted(regions):
        if start > cursor and not is_padding(data[cursor:start]):
            raise HiddenData(
                f"{start - cursor} bytes at byte {cursor} lie between the frames the JPEG declares and belong to none",
                cursor,
                start - cursor,
            )
        cursor = max(cursor, stop)
    return cursor


# Google's Container XMP (Motion Photo 1.0, Ultra HDR): items after the primary image, sized from the end of file.
_ITEM_NS = b"http://ns.google.com/photos/1.0/container/item/"
_ATTRIBUTE = re.compile(rb'(\w+):(\w+)="([^"]*)"')


def _container_items(data: bytes, primary: _JpegFrame) -> list[tuple[int, int]]:
    """Regions of the secondary items a Container directory (or a legacy MicroVideoOffset) declares."""
    xmp = primary.xmp
    if not xmp:
        return []
    items: list[dict[bytes, bytes]] = []
    prefix = re.search(rb'xmlns:(\w+)="' + re.escape(_ITEM_NS) + b'"', xmp)
    if prefix:
        for element in re.finditer(rb"<\w+:Item\b([^>]*)>", xmp):
            attributes = {name: value for ns, name, value in _ATTRIBUTE.findall(element.group(1)) if ns == prefix[1]}
            if b"Mime" in attributes:
                items.append(attributes)
    else:
        legacy = re.search(rb'MicroVideoOffset="(\d+)"', xmp)
        if legacy:
            items = [{b"Mime": b"image/jpeg"}, {b"Mime": b"video/mp4", b"Length": legacy[1]}]
    if len(items) < 2:
        return []
    regions: list[tuple[int, int]] = []
    stop = len(data)
    for item in reversed(items[1:]):
        length = int(item.get(b"Length", b"0") or 0)
        if length <= 0:
            continue  # shares the previous item's bytes
        start = stop - length
        if start < primary.end:
            raise MalformedImage("the JPEG's Container directory declares more data than follows the image")
        _check_item(data, start, stop, item[b"Mime"].decode("ascii", "replace"))
        regions.append((start, stop))
        stop = start
    return regions


def _check_item(data: bytes, start: int, stop: int, mime: str) -> None:
    """The item's bytes are what its MIME type says, walked to its declared end."""
    if mime == "image/jpeg":
        end = _jpeg_end(data, start).end
    elif mime in ("video/mp4", "video/quicktime"):
        end = _bmff_end(data, start, stop)
    else:
        raise MalformedImage(f"the JPEG declares an appended item of type {mime!r}, which is not accepted")
    if end > stop or not is_padding(data[end:stop]):
        raise MalformedImage(f"the {mime} item at byte {start} does not fill its declared length")


def _bmff_end(data: bytes, start: int, stop: int) -> int:
    """Walk ISO base media (MP4/QuickTime) boxes from ``start``; they must end exactly at ``stop``."""
    pos = start
    while pos < stop:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if not kind.isascii() or not kind.strip(b" ").isalnum():
            raise MalformedImage(f"the appended video has an invalid box at byte {pos}")
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:
            size = stop - pos
        if size < 8 or pos + size > stop:
            raise MalformedImage(f"the appended video's box at byte {pos} runs past its declared end")
        pos += size
    return pos


# Samsung's SEF trailer: data blocks, then a "SEFH" directory of (type, distance back, size), its length, "SEFT".
def _samsung_trailer(data: bytes, primary: _JpegFrame) -> list[tuple[int, int]]:
    n, image_end_at = len(data), primary.end
    if n - image_end_at < 20 or data[-4:] != b"SEFT":
        return []
    directory_size = struct.unpack_from("<I", data, n - 8)[0]
    directory = n - 8 - directory_size
    if directory < image_end_at or data[directory : directory + 4] != b"SEFH" or directory_size < 12:
        raise MalformedImage("the JPEG's Samsung trailer has no valid SEFH directory")
    count = struct.unpack_from("<I", data, directory + 8)[0]
    if 12 + 12 * count > directory_size:
        raise MalformedImage("the JPEG's Samsung trailer directory is shorter than its entries")
    regions = [(directory, n)]
    for k in range(count):
        _pad, kind, distance, size = struct.unpack_from("<HHII", data, directory + 12 + 12 * k)
        start = directory - distance
        if start < image_end_at or start + size > directory or size < 8:
            raise MalformedImage("a Samsung trailer block lies outside the trailer")
        block_kind, name_size = struct.unpack_from("<2xHI", data, start)
        if block_kind != kind or 8 + name_size > size:
            raise MalformedImage(f"the Samsung trailer block at byte {start} does not match its directory entry")
        regions.append((start, start + size))
    return regions


def _mp_frame_offsets(data: bytes, header: int) -> list[int]:
    """File offsets of every frame after the first, in file order, from the MP Index IFD's MP entries."""
    order = data[header : header + 4]
    if order == b"II*\x00":
        endian = "<"
    elif order == b"MM\x00*":
        endian = ">"
    else:
        raise MalformedImage("the JPEG's MPF segment has no valid MP header")
    ifd = header + struct.unpack_from(endian + "I", data, header + 4)[0]
    count = struct.unpack_from(endian + "H", data, ifd)[0]
    offsets: set[int] = set()
    for k in range(count):
        tag, _type, n_values, value = struct.unpack_from(endian + "HHII", data, ifd + 2 + 12 * k)
        if tag != 0xB002:  # MPEntry: 16 bytes per image (attribute, size, offset, two dependent entries)
            continue
        entries = header + value
        for e in range(1, n_values // 16):  # entry 0 is the first frame itself (offset 0)
            size, offset = struct.unpack_from(endian + "II", data, entries + 16 * e + 4)
            if size:
                offsets.add(header + offset)
    return sorted(offsets)


# ---------------------------------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------------------------------


def _png_end(data: bytes) -> int:
    pos, n = 8, len(data)
    first = True
    while True:
        if pos + 12 > n:
            raise MalformedImage("the PNG file ends before its IEND chunk (truncated)")
        length: int = struct.unpack_from(">I", data, pos)[0]
        kind = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or pos + 12 + length > n:
            raise MalformedImage(f"the PNG chunk at byte {pos} runs past the end of the file")
        if not kind.isalpha():
            raise MalformedImage(f"the PNG file has an invalid chunk type at byte {pos}")
        if first and kind != b"IHDR":
            raise MalformedImage("the PNG file does not start with an IHDR chunk")
        first = False
        body = data[pos + 4 : pos + 8 + length]
        crc = struct.unpack_from(">I", data, pos + 8 + length)[0]
        if zlib.crc32(body) != crc:
            raise MalformedImage(f"the PNG chunk {kind.decode('ascii')} at byte {pos} has a bad CRC")
        pos += 12 + length
        if kind == b"IEND":
            return pos


# ---------------------------------------------------------------------------------------------------
# GIF
# ---------------------------------------------------------------------------------------------------


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    n = len(data)
    while True:
        if pos >= n:
            raise MalformedImage("the GIF file ends inside a data block (truncated)")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif_end(data: bytes) -> int:
    n = len(data)
    packed = data[10]
    pos = 13 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0)
    while pos < n:
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            return pos + 1
        if introducer == 0x21:  # extension: label, then sub-blocks
            pos = _gif_sub_blocks_end(data, pos + 2)
        elif introducer == 0x2C:  # image descriptor, local color table, LZW code size, sub-blocks
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = _gif_sub_blocks_end(data, pos + 1)
        else:
            return pos  # not a GIF block: the image data ended here without a trailer
    if pos > n:
        raise MalformedImage("the GIF file ends inside a block (truncated)")
    return n


# ---------------------------------------------------------------------------------------------------
# BMP
# ---------------------------------------------------------------------------------------------------

_BI_RGB, _BI_RLE8, _BI_RLE4, _BI_BITFIELDS, _BI_ALPHABITFIELDS = 0, 1, 2, 3, 6
_PROFILE_EMBEDDED, _PROFILE_LINKED = 0x4D424544, 0x4C494E4B  # 'MBED', 'LINK'


def _bmp_end(data: bytes) -> int:
    pixels_at, header_size = (int(v) for v in struct.unpack_from("<II", data, 10))
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _planes, bpp = struct.unpack_from("<HHHH", data, 18)
        compression = _BI_RGB
    elif header_size >= 40:
        width, height, _planes, bpp, compression = struct.unpack_from("<iiHHI", data, 18)
    else:
        raise MalformedImage(f"the BMP file has an unknown header size {header_size}")
    if compression in (_BI_RGB, _BI_BITFIELDS, _BI_ALPHABITFIELDS):
        stride = (abs(int(width)) * int(bpp) + 31) // 32 * 4
        end = pixels_at + stride * abs(int(height))
    elif compression in (_BI_RLE8, _BI_RLE4):
        end = _bmp_rle_end(data, pixels_at, nibbles=compression == _BI_RLE4)
    else:
        raise MalformedImage(f"the BMP file uses compression {compression}, which is not supported")
    if end > len(data):
        raise MalformedImage(f"the BMP pixel array needs {end} bytes; the file has {len(data)} (truncated)")
    if header_size >= 124:  # BITMAPV5HEADER: an ICC profile may follow the pixels
        cs_type = struct.unpack_from("<I", data, 14 + 56)[0]
        profile_at, profile_size = struct.unpack_from("<II", data, 14 + 112)
        if cs_type in (_PROFILE_EMBEDDED, _PROFILE_LINKED) and profile_size:
            profile_end = 14 + int(profile_at) + int(profile_size)
            if profile_end > len(data):
                raise MalformedImage("the BMP colour profile runs past the end of the file")
            end = max(end, profile_end)
    return end


def _bmp_rle_end(data: bytes, pos: int, *, nibbles: bool) -> int:
    """Offset past the RLE end-of-bitmap escape (00 01)."""
    n = len(data)
    while pos + 2 <= n:
        count, value = data[pos], data[pos + 1]
        pos += 2
        if count:
            continue  # encoded run
        if value == 1:
            return pos
        if value == 2:
            pos += 2  # delta
        elif value >= 3:  # absolute run, padded to 16 bits
            size = (value + 1) // 2 if nibbles else value
            pos += size + (size & 1)
    raise MalformedImage("the BMP RLE data ends without an end-of-bitmap code (truncated)")


# ---------------------------------------------------------------------------------------------------
# WEBP (RIFF)
# ---------------------------------------------------------------------------------------------------

_WEBP_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP", b"EXIF", b"XMP "}


def _webp_end(data: bytes) -> int:
    riff_end: int = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end > len(data):
        raise MalformedImage(f"the WEBP file declares {riff_end} bytes; it has {len(data)} (truncated)")
    pos = 12
    while pos < riff_end:
        kind = data[pos : pos + 4]
        size = struct.unpack_from("<I", data, pos + 4)[0]
        if pos == 12 and kind not in (b"VP8 ", b"VP8L", b"VP8X"):
            raise MalformedImage("the WEBP file does not start with a VP8, VP8L or VP8X chunk")
        if kind not in _WEBP_CHUNKS:
            raise HiddenData(f"the WEBP file carries an unknown chunk {kind!r} at byte {pos}", pos, riff_end - pos)
        pos += 8 + size + (size & 1)
    if pos != riff_end:
        raise MalformedImage("the WEBP chunks do not add up to the RIFF size")
    return riff_end


# ---------------------------------------------------------------------------------------------------
# TIFF
# ---------------------------------------------------------------------------------------------------

_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
#: tags whose values are offsets of further IFDs (SubIFDs, Exif, GPS, Interoperability)
_TIFF_IFD_TAGS = {330, 34665, 34853, 40965}
#: (offsets tag, byte counts tag): strips, tiles, and the old-style JPEG thumbnail
_TIFF_DATA_TAGS = ((273, 279), (324, 325), (513, 514))
_TIFF_MAX_IFDS = 1024
#: bounds on the work a hostile TIFF can ask for (IFDs can overlap, so the file size alone does not bound it)
_TIFF_MAX_ENTRIES, _TIFF_MAX_OFFSETS = 200_000, 2_000_000


def _tiff_end(data: bytes) -> int:
    endian = "<" if data[:2] == b"II" else ">"
    n = len(data)
    end = 8
    pending = [struct.unpack_from(endian + "I", data, 4)[0]]
    seen: set[int] = set()
    entries_read = offsets_read = 0
    while pending:
        ifd = pending.pop()
        if ifd == 0 or ifd in seen:
            continue
        if len(seen) >= _TIFF_MAX_IFDS:
            raise MalformedImage(f"the TIFF file has more than {_TIFF_MAX_IFDS} IFDs")
        seen.add(ifd)
        count = struct.unpack_from(endian + "H", data, ifd)[0]
        ifd_end = ifd + 2 + 12 * count + 4
        if ifd_end > n:
            raise MalformedImage(f"the TIFF IFD at byte {ifd} runs past the end of the file")
        entries_read += count
        if entries_read > _TIFF_MAX_ENTRIES:
            raise MalformedImage(f"the TIFF file has more than {_TIFF_MAX_ENTRIES} IFD entries")
        end = max(end, ifd_end)
        values: dict[int, list[int]] = {}
        for k in range(count):
            at = ifd + 2 + 12 * k
            tag, kind, n_values = struct.unpack_from(endian + "HHI", data, at)
            size = _TIFF_TYPE_SIZES.get(kind, 0) * n_values
            where = at + 8 if size <= 4 else struct.unpack_from(endian + "I", data, at + 8)[0]
            if size > 4 and where + size <= n:
                end = max(end, where + size)
            if kind in (3, 4, 13) and where + size <= n and (tag in _TIFF_IFD_TAGS or _is_data_tag(tag)):
                offsets_read += n_values
                if offsets_read > _TIFF_MAX_OFFSETS:
                    raise MalformedImage(f"the TIFF file lists more than {_TIFF_MAX_OFFSETS} strips, tiles or IFDs")
                fmt = f"{endian}{n_values}{'H' if kind == 3 else 'I'}"
                values[tag] = list(struct.unpack_from(fmt, data, where))
        for tag in _TIFF_IFD_TAGS & values.keys():
            pending.extend(values[tag])
        for offsets_tag, counts_tag in _TIFF_DATA_TAGS:
            for offset, length in zip(values.get(offsets_tag, []), values.get(counts_tag, []), strict=False):
                end = max(end, min(offset + length, n))  # data past the end: the decoder reports truncation
        pending.append(struct.unpack_from(endian + "I", data, ifd_end - 4)[0])
    return end


def _is_data_tag(tag: int) -> bool:
    return any(tag in pair for pair in _TIFF_DATA_TAGS)
