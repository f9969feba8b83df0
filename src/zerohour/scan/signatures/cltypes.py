"""ClamAV file type names (`CL_TYPE_*`, libclamav filetypes.c) and the `FileType` each maps to.

Signatures name types in .cdb (container type), .ftm (the type a magic sets), and .ldb target
descriptions (`Container`, `Intermediates`). A name ClamAV does not know is a syntax error; a
name ClamAV knows but this engine has no type for maps to None, and the caller counts the
signature as skipped (it could never match here).
"""

from __future__ import annotations

from zerohour.scan.types import FileType

#: Every type name ClamAV 1.4 accepts, with our type where we have one.
CL_TYPES: dict[str, FileType | None] = {
    "CL_TYPE_ANY": None,
    "CL_TYPE_TEXT_ASCII": FileType.TEXT, "CL_TYPE_TEXT_UTF8": FileType.TEXT,
    "CL_TYPE_TEXT_UTF16LE": None, "CL_TYPE_TEXT_UTF16BE": None,
    "CL_TYPE_BINARY_DATA": FileType.BINARY, "CL_TYPE_IGNORED": None,
    "CL_TYPE_MSEXE": FileType.PE, "CL_TYPE_ELF": FileType.ELF, "CL_TYPE_MACHO": FileType.MACHO,
    "CL_TYPE_MACHO_UNIBIN": None,
    "CL_TYPE_POSIX_TAR": FileType.TAR, "CL_TYPE_OLD_TAR": FileType.TAR,
    "CL_TYPE_CPIO_OLD": FileType.CPIO, "CL_TYPE_CPIO_ODC": FileType.CPIO,
    "CL_TYPE_CPIO_NEWC": FileType.CPIO, "CL_TYPE_CPIO_CRC": FileType.CPIO,
    "CL_TYPE_GZ": FileType.GZIP, "CL_TYPE_ZIP": FileType.ZIP, "CL_TYPE_BZ": FileType.BZIP2,
    "CL_TYPE_RAR": FileType.RAR, "CL_TYPE_ARJ": FileType.ARJ, "CL_TYPE_MSSZDD": FileType.SZDD,
    "CL_TYPE_MSOLE2": FileType.OLE2, "CL_TYPE_MSCAB": FileType.CAB, "CL_TYPE_MSCHM": FileType.CHM,
    "CL_TYPE_SIS": FileType.SIS, "CL_TYPE_SCRENC": None, "CL_TYPE_GRAPHICS": None,
    "CL_TYPE_GIF": None,
    "CL_TYPE_PNG": None, "CL_TYPE_JPEG": None, "CL_TYPE_TIFF": None, "CL_TYPE_RIFF": None,
    "CL_TYPE_BINHEX": None, "CL_TYPE_TNEF": None, "CL_TYPE_CRYPTFF": None,
    "CL_TYPE_PDF": FileType.PDF, "CL_TYPE_UUENCODED": None, "CL_TYPE_HTML_UTF16": None,
    "CL_TYPE_SCRIPT": FileType.SCRIPT, "CL_TYPE_RTF": FileType.RTF, "CL_TYPE_HTML": FileType.HTML,
    "CL_TYPE_MAIL": FileType.MAIL, "CL_TYPE_SFX": None, "CL_TYPE_ZIPSFX": None,
    "CL_TYPE_RARSFX": None, "CL_TYPE_7ZSFX": None, "CL_TYPE_CABSFX": None,
    "CL_TYPE_ARJSFX": None, "CL_TYPE_EGGSFX": None, "CL_TYPE_NULSFT": None,
    "CL_TYPE_AUTOIT": None, "CL_TYPE_ISHIELD_MSI": None, "CL_TYPE_7Z": FileType.SEVENZIP,
    "CL_TYPE_SWF": None, "CL_TYPE_XAR": FileType.XAR, "CL_TYPE_ISO9660": FileType.ISO,
    "CL_TYPE_UDF": FileType.ISO, "CL_TYPE_JAVA": None, "CL_TYPE_DMG": None, "CL_TYPE_MBR": None,
    "CL_TYPE_GPT": None, "CL_TYPE_APM": None, "CL_TYPE_XZ": FileType.XZ,
    "CL_TYPE_OOXML_WORD": FileType.OOXML, "CL_TYPE_OOXML_PPT": FileType.OOXML,
    "CL_TYPE_OOXML_XL": FileType.OOXML, "CL_TYPE_INTERNAL": None, "CL_TYPE_XDP": None,
    "CL_TYPE_XML_WORD": None, "CL_TYPE_XML_XL": None, "CL_TYPE_XML_HWP": None,
    "CL_TYPE_HWP3": None, "CL_TYPE_HWPOLE2": None, "CL_TYPE_OOXML_HWP": None,
    "CL_TYPE_PS": None, "CL_TYPE_MHTML": None, "CL_TYPE_LNK": None, "CL_TYPE_EGG": None,
    "CL_TYPE_ONENOTE": FileType.ONENOTE, "CL_TYPE_PYTHON_COMPILED": None, "CL_TYPE_BMP": None,
    "CL_TYPE_AI_MODEL": None, "CL_TYPE_LHA_LZH": FileType.LZH, "CL_TYPE_ALZ": FileType.ALZ,
    "CL_TYPE_PART_ANY": None, "CL_TYPE_PART_HFSPLUS": None, "CL_TYPE_HFS": None,
    "CL_TYPE_ZSTD": FileType.ZSTD,
}


def lookup(name: str) -> FileType | None:
    """Our type for a ClamAV type name (None: ClamAV knows it, we do not). KeyError if ClamAV
    does not know the name either."""
    return CL_TYPES[name]


#: ClamAV types that split one of ours by variant: the key a layer of that variant gets.
_VARIANTS = {
    "CL_TYPE_CPIO_NEWC": "cpio:newc", "CL_TYPE_CPIO_CRC": "cpio:crc",
    "CL_TYPE_CPIO_ODC": "cpio:odc", "CL_TYPE_CPIO_OLD": "cpio:old",
    "CL_TYPE_POSIX_TAR": "tar:posix", "CL_TYPE_OLD_TAR": "tar:old",
}


def layer_key(name: str) -> str | None:
    """What a `Container`/`Intermediates` type name must equal in `refine()`'s terms."""
    if name in _VARIANTS:
        return _VARIANTS[name]
    ft = CL_TYPES[name]
    return None if ft is None else ft.value


def refine(ft: FileType, data: bytes) -> str:
    """A layer's type as ClamAV tells variants apart (cpio formats, POSIX vs old tar)."""
    if ft is FileType.CPIO:
        magic = data[:6]
        if magic == b"070701":
            return "cpio:newc"
        if magic == b"070702":
            return "cpio:crc"
        if magic == b"070707":
            return "cpio:odc"
        return "cpio:old"
    if ft is FileType.TAR:
        return "tar:posix" if data[257:262] == b"ustar" else "tar:old"
    return ft.value
