"""Upload limits: the size of an upload, and a volume's size once decompressed, checked before any reader runs.

A ``.nii.gz`` of a few kilobytes can hold gigabytes of zeros. The header says how large the pixel
data is; that is checked first, and then the file is stream-decompressed (1 MiB at a time, nothing
kept) to make sure it really is no larger than that and not truncated. Only then does SimpleITK,
which decompresses everything into memory, read it.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm", ".opus")
_CHUNK = 1024 * 1024
_HEADER_MAX = 64 * 1024


class UploadRejected(Exception):
    """An upload the server will not accept: HTTP ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"  # pragma: no cover


def suffix_of(name: str, allowed: tuple[str, ...]) -> str | None:
    name = name.lower()
    return next((s for s in allowed if name.endswith(s)), None)


def check_volume(path: Path, suffix: str, max_bytes: int) -> int:
    """Raise :class:`UploadRejected` unless ``path`` is a complete volume whose pixel data is at most
    ``max_bytes`` once decompressed; return that size. Memory use stays at about 1 MiB."""
    if suffix in (".nii.gz", ".nii"):
        return _check_nifti(path, suffix == ".nii.gz", max_bytes)
    if suffix == ".nrrd":
        return _check_text_header(path, max_bytes, nrrd=True)
    if suffix == ".mha":
        return _check_text_header(path, max_bytes, nrrd=False)
    raise UploadRejected(415, f"Volumes are accepted as {', '.join(VOLUME_SUFFIXES)}; convert DICOM first.")


def _too_large(claimed: int, max_bytes: int) -> UploadRejected:
    return UploadRejected(413, f"The volume holds {size_text(claimed)} of pixel data once decompressed; this "
                               f"server accepts at most {size_text(max_bytes)}.")


def _damaged(what: str) -> UploadRejected:
    return UploadRejected(400, f"The uploaded volume is damaged or truncated ({what}); upload the complete file.")


class _Stream:
    """A file's bytes, decompressed on the fly with a hard cap on the total produced."""

    def __init__(self, path: Path, codec: str | None, offset: int = 0) -> None:
        self.handle = open(path, "rb")  # noqa: SIM115 - closed by __exit__
        self.handle.seek(offset)
        self.codec = codec
        self.decoder = self._new_decoder()
        self.pending = b""
        self.total = 0

    def _new_decoder(self):
        if self.codec == "gzip":
            return zlib.decompressobj(wbits=31)
        if self.codec == "zlib":
            return zlib.decompressobj(wbits=15)
        return None

    def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes more (fewer only at the end); raises on damaged compression."""
        out = bytearray()
        while len(out) < limit:
            if self.decoder is None:
                data = self.handle.read(min(_CHUNK, limit - len(out)))
                if not data:
                    break
                out += data
                continue
            if not self.pending:
                if self.decoder.eof:
                    rest = self.decoder.unused_data + self.handle.read(_CHUNK)
                    if not rest.strip(b"\0"):
                        break
                    if self.codec != "gzip":
                        raise _damaged("data after the end of the compressed stream")
                    self.decoder = self._new_decoder()  # another gzip member
                    self.pending = rest
                else:
                    self.pending = self.handle.read(_CHUNK)
                    if not self.pending:
                        raise _damaged("the compressed data ends early")
            try:
                data = self.decoder.decompress(self.pending, min(_CHUNK, limit - len(out)))
            except zlib.error as error:
                raise _damaged(f"bad compressed data: {error}") from None
            self.pending = self.decoder.unconsumed_tail
            out += data
        self.total += len(out)
        return bytes(out)

    def count_to_end(self, cap: int) -> int:
        """Decompress the rest, keeping nothing; stop (and say so) past ``cap`` bytes."""
        while True:
            chunk = self.read(_CHUNK)
            if not chunk:
                return self.total
            if self.total > cap:
                return self.total

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


def _check_nifti(path: Path, gz: bool, max_bytes: int) -> int:
    with _Stream(path, "gzip" if gz else None) as stream:
        head = stream.read(540)
        if len(head) < 348:
            raise _damaged("shorter than a NIfTI header")
        for order in "<>":
            size = struct.unpack(order + "i", head[:4])[0]
            if size in (348, 540):
                break
        else:
            raise UploadRejected(400, "The upload is not a NIfTI file (no NIfTI header).")
        if size == 348:
            dims = struct.unpack(order + "8h", head[40:56])
            bitpix = struct.unpack(order + "h", head[72:74])[0]
            offset = int(struct.unpack(order + "f", head[108:112])[0])
        else:
            if len(head) < 540:
                raise _damaged("shorter than a NIfTI-2 header")
            bitpix = struct.unpack(order + "h", head[14:16])[0]
            dims = struct.unpack(order + "8q", head[16:80])
            offset = struct.unpack(order + "q", head[168:176])[0]
        ndim = dims[0]
        if not 1 <= ndim <= 7 or any(d < 1 for d in dims[1: ndim + 1]) or bitpix <= 0 or offset < size:
            raise UploadRejected(400, "The NIfTI header is invalid (dimensions, data type or data offset).")
        claimed = _product(dims[1: ndim + 1]) * bitpix // 8
        if claimed > max_bytes:
            raise _too_large(claimed, max_bytes)
        total = stream.count_to_end(offset + claimed + _HEADER_MAX)
        if total > offset + claimed + _HEADER_MAX:
            raise _too_large(total, max_bytes) if total > max_bytes else _damaged("more data than its header says")
        if total < offset + claimed:
            raise _damaged(f"{size_text(offset + claimed - total)} of pixel data missing")
        return claimed


_NRRD_TYPES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
        "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64",
        "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}
_MET_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
              "MET_DOUBLE": 8}


def _check_text_header(path: Path, max_bytes: int, nrrd: bool) -> int:
    """NRRD (``key: value``, blank line) or MetaImage (``Key = Value``, ``ElementDataFile = LOCAL`` last)."""
    with open(path, "rb") as handle:
        raw = handle.read(_HEADER_MAX)
    fields: dict[str, str] = {}
    offset = None
    position = 0
    for line in raw.split(b"\n"):
        position += len(line) + 1
        text = line.decode("latin-1").strip()
        if nrrd and position == len(line) + 1:
            if not text.startswith("NRRD"):
                raise UploadRejected(400, "The upload is not an NRRD file (no NRRD magic line).")
            continue
        if nrrd and not text:
            offset = position
            break
        if text.startswith("#"):
            continue
        key, sep, value = text.partition(":" if nrrd else "=")
        if not sep or (nrrd and value.startswith("=")):
            continue  # NRRD key:=value pairs are free-form metadata
        fields[key.strip().lower()] = value.strip()
        if not nrrd and key.strip().lower() == "elementdatafile":
            offset = position
            break
    if offset is None or offset > len(raw):
        raise _damaged("no complete header")
    try:
        if nrrd:
            if "data file" in fields or "datafile" in fields:
                raise UploadRejected(400, "Detached NRRD data files are not accepted; upload one .nrrd file.")
            sizes = [int(v) for v in fields["sizes"].split()]
            width = next(n for n, names in _NRRD_TYPES.items() if fields["type"].lower() in names)
            encoding = fields.get("encoding", "raw").lower()
            codec = {"raw": None, "gzip": "gzip", "gz": "gzip"}.get(encoding, "?")
            if codec == "?":
                raise UploadRejected(400, f"NRRD encoding {encoding!r} is not accepted; use raw or gzip.")
        else:
            if fields.get("elementdatafile", "").upper() != "LOCAL":
                raise UploadRejected(400, "Detached MetaImage data files are not accepted; upload one .mha file.")
            sizes = [int(v) for v in fields["dimsize"].split()]
            width = _MET_TYPES[fields["elementtype"].upper()] * int(fields.get("elementnumberofchannels", "1"))
            codec = "zlib" if fields.get("compresseddata", "false").lower() == "true" else None
    except (KeyError, ValueError, StopIteration):
        raise UploadRejected(400, "The volume header is invalid or incomplete (sizes or data type).") from None
    if not sizes or any(s < 1 for s in sizes):
        raise UploadRejected(400, "The volume header gives an invalid size.")
    claimed = _product(sizes) * width
    if claimed > max_bytes:
        raise _too_large(claimed, max_bytes)
    with _Stream(path, codec, offset) as stream:
        total = stream.count_to_end(claimed)
    if total > claimed and codec is not None:
        raise _damaged("more data than its header says")
    if total < claimed:
        raise _damaged(f"{size_text(claimed - total)} of pixel data missing")
    return claimed


def _product(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
