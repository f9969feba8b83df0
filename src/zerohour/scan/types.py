"""Values the scan engine exchanges with its callers and between its own modules.

The engine walks a tree of layers: the scanned object is layer 0; every MIME part, decoded body,
archive member or decompressed stream is a child layer. Every layer (containers too) is matched
against the database, and described in the report so that callers (outbreak checksum screening,
hold scope by true file type, the admin part tree) need not decompose the message again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum


class FileType(StrEnum):
    """True type of a layer, detected from content (never from its name)."""

    BINARY = "binary"
    TEXT = "text"
    HTML = "html"
    MAIL = "mail"
    PE = "pe"
    ELF = "elf"
    MACHO = "macho"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    SEVENZIP = "7z"
    RAR = "rar"
    PDF = "pdf"
    OLE2 = "ole2"
    OOXML = "ooxml"
    SCRIPT = "script"
    # Archives opened through libarchive (zerohour.scan.containers).
    CAB = "cab"
    ARJ = "arj"
    LZH = "lzh"
    ALZ = "alz"
    CPIO = "cpio"
    XAR = "xar"
    AR = "ar"
    WARC = "warc"  # web archive (ISO 28500): records of crawled files (round 18)
    ISO = "iso"  # ISO 9660 (with or without Joliet) and UDF disk images, whatever the name
    SIS = "sis"  # Symbian installation file (zerohour.scan.sis)
    # Documents (zerohour.scan.documents).
    RTF = "rtf"
    ONENOTE = "onenote"
    FLV = "flv"  # Flash video: its audio and video streams (zerohour.scan.flv)
    CHM = "chm"
    # Single-stream compression (zerohour.scan.streams).
    SZDD = "szdd"
    ZSTD = "zstd"
    LZ4 = "lz4"
    LZMA = "lzma"  # .lzma ("LZMA alone")
    DISKIMAGE = "diskimage"  # an MBR or GPT partition table: each partition is a layer
    # Recognised but not opened (yet): `Heuristics.Unsupported.<NAME>`, never clean. 7-Zip or
    # Windows open them with a double-click, and disk images carry malware by mail.
    WIM = "wim"  # Windows imaging format
    VHD = "vhd"  # Virtual PC / Hyper-V disk (VHD and VHDX)
    VMDISK = "vmdisk"  # other disk images: qcow/qcow2, VMDK sparse, VirtualBox VDI, Android sparse
    SWF = "swf"  # Flash (FWS, CWS, ZWS)
    DMG = "dmg"  # Apple disk image (UDIF, by its koly trailer) or Apple partition map
    SQUASHFS = "squashfs"
    FSIMAGE = "fsimage"  # a FAT, exFAT, NTFS, ext2/3/4, HFS+ or CramFS volume (not ISO 9660)
    COMPRESS = "compress"  # Unix compress (.Z)
    RPM = "rpm"
    LZIP = "lzip"
    LZOP = "lzop"
    BZIP3 = "bzip3"
    LRZIP = "lrzip"
    ZPAQ = "zpaq"


class FindingKind(Enum):
    SIGNATURE = "signature"
    HEURISTIC = "heuristic"
    CHECKSUM = "checksum"


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection: a signature name (without ClamAV's `.UNOFFICIAL`) on a layer."""

    name: str
    path: str
    kind: FindingKind = FindingKind.SIGNATURE


@dataclass(frozen=True, slots=True)
class SectionDigest:
    """A PE section's hashes (ClamAV .mdb/.msb and outbreak `pe-section:<name>` checksums)."""

    name: str
    size: int
    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What the report says about one scanned layer."""

    path: str
    depth: int
    size: int
    md5: str
    sha256: str
    filetype: FileType
    name: str | None = None
    is_attachment: bool = False
    pe_sections: tuple[SectionDigest, ...] = ()


@dataclass(frozen=True, slots=True)
class MemberMeta:
    """What a container's own directory says about one member, whether or not its content
    could be read: ClamAV `.cdb` container-metadata signatures match on it (names, sizes and
    CRCs are all a scanner has of a member it cannot decrypt)."""

    container: FileType
    name: str | None
    size: int | None  # uncompressed, as the directory claims
    compressed_size: int | None
    crc32: int | None
    encrypted: bool
    index: int  # 0-based position in the container's directory


@dataclass(frozen=True, slots=True)
class Child:
    """A layer produced by decomposing its parent (see `zerohour.scan.decompose`).

    `speculative`: a guess at what a recipient could make (`zerohour.scan.joins`), not content
    the message holds: the engine reports only signature findings in its subtree (heuristics
    and decoder errors there say that the guess was wrong, not that the message is bad)."""

    data: bytes
    name: str | None
    origin: str
    is_attachment: bool = False
    speculative: bool = False
    #: the image of a packed file, run or decoded: the packer's name, or "stub" for one no
    #: known packer made (`ScanContext.emulating`)
    emulated: str | None = None
    #: how a client reads it whatever its bytes sniff as, as well as by its own type: HTML
    #: for a part declared `text/html` or a page a reader made, TEXT for a page's text
    #: readings (`decompose.children`)
    reads_as: FileType | None = None


@dataclass(frozen=True, slots=True)
class ScanReport:
    """Result of scanning one object."""

    findings: tuple[Finding, ...]
    layers: tuple[LayerInfo, ...] = ()
    db_version: str = ""
    elapsed: float = 0.0
    errors: tuple[str, ...] = field(default=())

    @property
    def infected(self) -> bool:
        return bool(self.findings)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.findings)
