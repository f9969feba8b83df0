"""Sample builders for the conformance suite: a minimal PE32, ELF, MIME mail, archives."""

from __future__ import annotations

import base64
import gzip
import io
import struct
import tarfile
import zipfile

FILLER = b"\x00\x01\x02\x03binary sample\x00\xfe\xff"


def binary(*parts: bytes) -> bytes:
    """A non-text file (NUL and high bytes) holding `parts`, so no text normalisation applies."""
    return FILLER + b"\x00\xff\x10".join(parts) + FILLER


def pad(b: bytes, n: int = 0x200) -> bytes:
    return b + b"\x00" * (-len(b) % n or 0) if b else b"\x00" * n


def make_pe(text: bytes, data: bytes, ep: int = 0) -> bytes:
    """A two-section PE32 (.text, .data; file alignment 0x200), entry point at .text+ep."""
    text_raw, data_raw = pad(text), pad(data)
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    coff = struct.pack("<4sHHIIIHH", b"PE\x00\x00", 0x14C, 2, 0, 0, 0, 0xE0, 0x0102)
    opt = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B, 0, 0, len(text_raw), len(data_raw), 0, 0x1000 + ep, 0x1000, 0x2000,
        0x400000, 0x1000, 0x200, 4, 0, 0, 0, 4, 0, 0, 0x3000 + 0x1000 * (len(text_raw) >> 12),
        0x200, 0, 2, 0, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16,
    ) + b"\x00" * 128
    text_off = 0x200
    data_off = text_off + len(text_raw)
    sec = struct.pack("<8sIIIIIIHHI", b".text", len(text_raw), 0x1000, len(text_raw), text_off,
                      0, 0, 0, 0, 0x60000020)
    sec += struct.pack("<8sIIIIIIHHI", b".data", len(data_raw), 0x2000, len(data_raw), data_off,
                       0, 0, 0, 0, 0xC0000040)
    head = dos + coff + opt + sec
    return pad(head) + text_raw + data_raw


def make_elf(payload: bytes) -> bytes:
    """A minimal 64-bit little-endian ELF header followed by `payload`."""
    ident = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x400078, 0, 0, 0, 64, 0, 0, 0, 0, 0)
    return hdr + payload


def mail(body_parts: list[tuple[str, bytes, str]], subject: str = "sample") -> bytes:
    """multipart/mixed mail; each part is (content type, payload, transfer encoding)."""
    boundary = "b1_conformance"
    out = [
        "From: a@example.org", "To: b@example.org", f"Subject: {subject}",
        "Message-ID: <conformance@example.org>", "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{boundary}"', "", "preamble",
    ]
    for i, (ctype, payload, enc) in enumerate(body_parts):
        out += [f"--{boundary}", f"Content-Type: {ctype}",
                f'Content-Disposition: attachment; filename="part{i}.bin"',
                f"Content-Transfer-Encoding: {enc}", ""]
        if enc == "base64":
            b64 = base64.encodebytes(payload).decode()
            out.append(b64.rstrip("\n"))
        else:
            import quopri

            out.append(quopri.encodestring(payload).decode())
    out += [f"--{boundary}--", ""]
    return "\r\n".join(out).encode()


def plain_mail(body: str, subject: str = "hello") -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <plain@example.org>\r\n\r\n{body}\r\n").encode()


def make_zip(members: dict[str, bytes], compress: bool = True) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def make_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def mime(parts: list[tuple[str, bytes, str | None, list[str]]]) -> bytes:
    """multipart/mixed mail; each part is (content type, payload, encoding or None, headers)."""
    out = ["From: a@example.org", "To: b@example.org", "Subject: t", "MIME-Version: 1.0",
           'Content-Type: multipart/mixed; boundary="BB"', "", "pre"]
    for ctype, payload, enc, hdrs in parts:
        out += ["--BB", f"Content-Type: {ctype}", *hdrs]
        if enc:
            out.append(f"Content-Transfer-Encoding: {enc}")
        out.append("")
        if enc == "base64":
            out.append(base64.encodebytes(payload).decode().rstrip("\n"))
        else:
            out.append(payload.decode())
    out += ["--BB--", ""]
    return "\r\n".join(out).encode()
