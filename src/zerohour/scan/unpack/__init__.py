"""Executables taken apart before matching, as clamscan does: runtime packers (UPX) are
unpacked into a rebuilt image, installers (NSIS) and AutoIt executables give up their files,
and PE files embedded in a PE are scanned as files of their own. WWPack is decompressed
(`wwpack`); packers we have no static unpacker for (ASPack, MEW, Petite, PESpin, Upack, yC,
and WWPack files that do not decode) are run in an emulator
(`emulator`), and what their stub unpacked is scanned; so is a file no packer we know made
whose entry point is where a stub would be (`_looks_packed`), if its stub unpacks code.

`pe_children(data, ctx)` is what `zerohour.scan.decompose` calls for every PE layer. Fail
closed: a file that is surely UPX (its section names or marker) but does not decode is
`Heuristics.Unsupported.UPX` (damage, or a UPX method we do not know), and one packed by one
of those seven is `Heuristics.Unsupported.Packer.<Name>` (`scan.unpack.packers`) whatever the
emulator finds, since nothing proves that the stub finished.
"""

from __future__ import annotations

from collections.abc import Iterator

from zerohour.errors import ScanLimitExceeded
from zerohour.scan import pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.types import Child
from zerohour.scan.unpack import emulator, packers, upx, wwpack
from zerohour.scan.unpack.autoit import autoit_children
from zerohour.scan.unpack.embedded import embedded_pes
from zerohour.scan.unpack.nsis import nsis_children

__all__ = ["pe_children"]


def _emulated(data: bytes, info: pe.PEInfo, packer: str | None,
              ctx: ScanContext) -> Iterator[Child]:
    """What the stub of a packer we have no static unpacker for unpacked when it was run
    (`emulator`), scanned as a rebuilt PE. Nothing proves the stub finished, so the file is
    `Heuristics.Unsupported.Packer.<Name>` as well: the emulator can only add findings. That
    finding comes after the image, so that without --allmatch a signature found in the image
    names the file (the first finding ends the walk).

    `packer` None: a file no packer we know made, that looks packed (`_looks_packed`). Its
    image is scanned only if the stub ran code it had written (unpacked code), and nothing
    else is reported: most such files are not packed. Those runs have budgets of their own.

    Inside an image a known packer's stub made, nothing is run (the packer's marks remain:
    it would only recurse) or reported (the packed file is). Inside an image of an unknown
    stub, a known packer is run and reported as anywhere else (round 24: a crypter around
    an ASPack file hid it)."""
    if packer is None and ctx.emulating:
        return
    if packer is not None and any(kind != _STUB for kind in ctx.emulating):
        return
    try:
        unpacked, refused = emulator.run_within(
            emulator.STUBS if packer is None else emulator.PACKERS, data, info, ctx)
        if refused and packer is None:  # (a file that looks packed, left unrun: never clean)
            ctx.unsupported("Packer", "Stub")
        if unpacked is not None and packer is None and not unpacked.ran_written:
            unpacked = None  # (it did not run code it wrote: no unpacked code to see)
        if unpacked is not None:
            ctx.check_time()
            ctx.charge_file()
    except ScanLimitExceeded:
        if packer is not None:
            ctx.unsupported("Packer", packer)  # (out of time or files: reported all the same)
        raise
    if unpacked is None:
        if packer is not None:
            ctx.unsupported("Packer", packer)
        return
    try:
        yield Child(data=unpacked.pe, name=None, origin=f"{(packer or _STUB).lower()}-emulated",
                    emulated=packer or _STUB)
    finally:  # (also when the walk leaves the image early: a limit, a finding, round 23)
        if packer is not None:
            ctx.unsupported("Packer", packer)


_STUB = "stub"  # (an image of a stub no known packer made: `Child.emulated`)


def _decoded(decoded: wwpack.Decoded, ctx: ScanContext) -> Iterator[Child]:
    """A WWPack image decoded to every section's end code. Like UPX's, it is no finding if the
    stub itself would have read the same input; else the packer is a finding too, after the
    image. Either way the packed files the image holds are unpacked as anywhere else (rounds
    26 and 27: marked as emulated, an ASPack file inside was neither run nor reported); only
    the image itself is not decoded again (`ScanContext.decoded`), unless a guess decoded it
    first."""
    try:
        ctx.charge_child(len(decoded.pe))
    except ScanLimitExceeded:
        ctx.unsupported("Packer", "WWPack")
        raise
    key, guessing = hash(decoded.pe), ctx.guessing > 0
    if key in ctx.decoded and (ctx.decoded[key] or guessing):  # (an image already seen,
        # outside a guess, or this is one: round 31's S1, a guess's muted findings)
        ctx.decoded_again += 1
        if not decoded.complete:
            ctx.unsupported("Packer", "WWPack")
        return
    ctx.decoded[key] = not guessing
    try:
        yield Child(data=decoded.pe, name=None, origin="wwpack-unpacked")
    finally:
        if not decoded.complete:
            ctx.unsupported("Packer", "WWPack")


_WRITE = 0x80000000  # IMAGE_SCN_MEM_WRITE


def _looks_packed(info: pe.PEInfo) -> bool:
    """A 32-bit PE whose entry point is where packers and crypters put their stub, and
    compilers do not: in the headers, in a writable section (every one of the seven packers'
    samples), in a section with no data in the file (the stub writes its code there), or in
    the last of three sections or more (a stub appended to the program: round 26)."""
    if info.machine != 0x14C or info.is_pe32_plus:
        return False
    rva = info.entry_point_rva
    for i, s in enumerate(info.sections):
        if s.virtual_address <= rva < s.virtual_address + max(s.virtual_size, s.raw_size):
            last = i == len(info.sections) - 1 and i >= 2
            return bool(s.characteristics & _WRITE) or s.raw_size == 0 or last
    return bool(info.sections) and rva < info.sections[0].virtual_address


def pe_children(data: bytes, ctx: ScanContext) -> Iterator[Child]:
    """The unpacked image of a packed PE (if it is one), the files of an NSIS installer or
    AutoIt executable, then the PE files embedded in it."""
    info = pe.parse(data)
    if info is not None:
        packed = upx.find(data, info)
        image = upx.decompress(data, packed, ctx) if packed is not None else None
        if packed is not None and image is not None:
            rebuilt = upx.rebuild(image, data, packed)
            ctx.charge_child(len(rebuilt))
            yield Child(data=rebuilt, name=None, origin="upx-unpacked")
        elif packed is not None and packed.named:
            ctx.unsupported("UPX")
        else:
            # An image WWPack's decoder made may be a packed program (round 28: ASPack,
            # Petite, MEW, yC, WWPack again); WWPack's own section name is left over in it.
            decoded_image = bool(ctx.decoded) and hash(data) in ctx.decoded
            packer = packers.identify(data, info, "WWPack" if decoded_image else None)
            # (a stub no pattern knows is still WWPack when its table decodes: round 27)
            decoded = (wwpack.unpack(data, info, ctx) if packer in ("WWPack", None)
                       and not ctx.emulating else None)
            if decoded is not None:
                packer = "WWPack"
                yield from _decoded(decoded, ctx)
            # (a WWPack stub with bytes changed may do more than the decoder: it is run too)
            if (decoded is None or not decoded.exact) and (
                    packer is not None or _looks_packed(info)):
                yield from _emulated(data, info, packer, ctx)
    yield from nsis_children(data, ctx)
    yield from autoit_children(data, ctx)
    yield from embedded_pes(data, ctx)
