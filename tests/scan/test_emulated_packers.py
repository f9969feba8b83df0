"""Packers unpacked by running their stub (zerohour.scan.unpack.emulator): ASPack, MEW, Petite,
PESpin, Upack and yC from ClamAV's test corpus, checked against clamscan (which has a static
unpacker for each), and small packed PEs assembled here for the emulator's own behaviour: a
decrypting stub, a jump through an exception handler, and the bounds on time and memory."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from zerohour.scan import Engine, load_database, pe, unpack
from zerohour.scan.limits import Limits, ScanContext
from zerohour.scan.unpack import emulator, wwpack

TESTFILES = Path("/usr/share/clamav-testfiles")
CLAM_EXE = TESTFILES / "clam.exe"
NAME = "ClamAV-Test-File"
#: sample -> the packer name in Heuristics.Unsupported.Packer.<name>
UNPACKED = {
    "clam-aspack.exe": "ASPack", "clam-mew.exe": "MEW", "clam-pespin.exe": "PESpin",
    "clam-petite.exe": "Petite", "clam-upack.exe": "Upack", "clam-yc.exe": "yC",
}
#: WWPack decompresses in place; run faithfully, its stub overwrites the last bytes of its input
#: before reading them: it is decoded from a copy instead (`unpack.wwpack`).
DECODED = {"clam-wwpack.exe": "WWPack"}

@pytest.fixture(scope="module")
def engine(clam_code_db: Path) -> Engine:
    return Engine(load_database([clam_code_db]), allmatch=True)


# --- ClamAV's packed samples, clamscan as the oracle --------------------------------------------


@pytest.mark.parametrize(("sample", "packer"), sorted(UNPACKED.items()))
def test_emulated_stub_gives_up_clam_exe(engine: Engine, sample: str, packer: str) -> None:
    """The stub runs until the program starts (or faults after unpacking it): clam.exe, which
    each sample carries whole or zipped in a section, is found by its MD5 and by its code.
    The packer finding stays: nothing proves the stub finished."""
    report = engine.scan_bytes((TESTFILES / sample).read_bytes(), name=sample)
    assert {NAME, "Clam.Code", f"Heuristics.Unsupported.Packer.{packer}"} <= set(report.names)
    emulated = [layer.path for layer in report.layers if "-emulated" in layer.path]
    assert emulated
    assert all(p.count("-emulated") == 1 for p in emulated), emulated


def test_clamscan_finds_the_same(clam_code_db: Path) -> None:
    files = [str(TESTFILES / f) for f in sorted({**UNPACKED, **DECODED})]
    out = subprocess.run(
        ["clamscan", "--no-summary", "--allmatch", "-d", str(clam_code_db), *files],
        capture_output=True, text=True, timeout=300,
    ).stdout
    for f in files:
        assert f"{f}: {NAME}.UNOFFICIAL FOUND" in out, out


#: clam-wwpack.exe: the offset in the file of its table's first entry (entry point + 0x2A1)
_WW_ENTRY = 0xC00 + 0x2A1


def _wwpack(data: bytes) -> wwpack.Decoded | None:
    info = pe.parse(data)
    assert info is not None
    return wwpack.unpack(data, info, ScanContext())


def test_wwpack_is_decoded_from_a_copy(engine: Engine) -> None:
    """Every section WWPack packed decodes to its end code: clam.exe (zipped in a section) is
    found; its image is not decoded again. In this sample the output catches up with the input
    4 bytes before the end, so the stub's own run would read other bytes than the copy: the
    packer is reported too, after the image."""
    data = (TESTFILES / "clam-wwpack.exe").read_bytes()
    report = engine.scan_bytes(data, name="w")
    assert set(report.names) == {NAME, "Clam.Code", "Heuristics.Unsupported.Packer.WWPack"}
    assert [layer.path for layer in report.layers][:2] == ["w", "w/wwpack-unpacked"]
    assert not [layer for layer in report.layers if layer.path.count("wwpack-unpacked") > 1]
    decoded = _wwpack(data)
    assert decoded is not None
    assert not decoded.complete
    rebuilt = pe.parse(decoded.pe)
    assert rebuilt is not None
    assert rebuilt.entry_point_rva == 0x1020  # (the program's: the stub jumps there)


def test_an_image_a_guess_decoded_is_decoded_again_outside_it() -> None:
    """R31-S1: an image is decoded once per scan; but one first decoded inside a guess (a
    join, whose heuristics are muted) was then skipped in the real attachment, and that
    attachment's subtree looked its own to cache. Now a guess's decode does not count
    outside it, and a decode left for an earlier one keeps the subtree out of the cache."""
    data = (TESTFILES / "clam-wwpack.exe").read_bytes()
    decoded = _wwpack(data)
    assert decoded is not None
    ctx = ScanContext()

    def images() -> list[str]:
        return [c.origin or "" for c in unpack._decoded(decoded, ctx)]

    ctx.guessing = 1
    assert images() == ["wwpack-unpacked"]
    assert images() == []  # a guess again: once is enough
    ctx.guessing = 0
    assert images() == ["wwpack-unpacked"]  # outside the guess: decoded again
    assert ctx.decoded_again == 1
    assert images() == []
    assert ctx.decoded_again == 2


def test_a_wwpack_section_with_room_is_no_finding(engine: Engine) -> None:
    """The same file with its stub a page further (entry point, section, image size and the
    entry's distance moved) and its section's output 16 bytes longer, so its input lies 16
    bytes further: the output never reaches the input, the copy is what the stub reads, and as
    for UPX the packer is no finding."""
    data = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes())
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    opt = lfanew + 24
    table = opt + struct.unpack_from("<H", data, lfanew + 20)[0]
    struct.pack_into("<I", data, opt + 16, 0x6000)  # entry point
    struct.pack_into("<I", data, opt + 56, 0x7000)  # size of image
    struct.pack_into("<I", data, table + 40 * 4 + 12, 0x6000)  # .WWP32's address
    back, end = struct.unpack_from("<II", data, _WW_ENTRY)
    struct.pack_into("<II", data, _WW_ENTRY, back + 0x1000, end + 16)
    decoded = _wwpack(bytes(data))
    assert decoded is not None
    assert decoded.complete
    assert set(engine.scan_bytes(bytes(data), name="w").names) == {NAME, "Clam.Code"}


def test_a_wwpack_output_over_its_stub_is_still_reported() -> None:
    """The section's output 16 bytes longer in place: its zero fill reaches the stub's first
    bytes, which the real stub would then run; the packer stays a finding."""
    data = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes())
    (end,) = struct.unpack_from("<I", data, _WW_ENTRY + 4)
    struct.pack_into("<I", data, _WW_ENTRY + 4, end + 16)
    decoded = _wwpack(bytes(data))
    assert decoded is not None
    assert not decoded.complete


def test_a_changed_wwpack_stub_is_decoded_only_as_a_guess(engine: Engine) -> None:
    """A stub whose code differs from the one the decoder follows (here: one byte of its
    decompressor) may unpack something else: its decoding is never complete (the packer is
    reported), and the stub is run in the emulator as well. A stub that shares too few pieces
    with WWPack's is not known by its code, but by its table still (round 27)."""
    data = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes())
    data[0xC00 + 0x100] ^= 0xFF
    decoded = _wwpack(bytes(data))
    assert decoded is not None
    assert not decoded.complete
    assert not decoded.exact
    report = engine.scan_bytes(bytes(data), name="w")
    assert {NAME, "Heuristics.Unsupported.Packer.WWPack"} <= set(report.names)
    assert "w/wwpack-emulated" in [layer.path for layer in report.layers]
    for piece in range(0, 9 * 16, 16):  # nine more of its pieces changed, past its banner
        data[0xC00 + 0x70 + piece] ^= 0x55
    assert wwpack.stub(bytes(data), 0xC00) is None
    decoded = _wwpack(bytes(data))
    assert decoded is not None
    assert not decoded.complete
    assert not decoded.exact


def test_r26_a_wwpack_stub_with_an_instruction_swapped_is_still_wwpack(
        engine: Engine, clam_code_db: Path) -> None:
    """Round 26, F3: `xor ebx,ebx` at the stub's start written as `sub ebx,ebx`, its section
    renamed and not writable. Neither the section name nor the stub's first bytes said
    WWPack; run as an unknown stub it broke itself, and the file had no finding at all. All
    but one of the stub's pieces are WWPack's: it is decoded (never as complete), run, and
    reported; clamscan misses it."""
    data = _ww_variant(((0x04, b"\x33\xdb", b"\x2b\xdb"),), read_only=True)
    report = engine.scan_bytes(data, name="w")
    assert {NAME, "Clam.Code", "Heuristics.Unsupported.Packer.WWPack"} <= set(report.names)
    gateway = Engine(load_database([clam_code_db])).scan_bytes(data, name="w")
    assert gateway.infected


def test_a_damaged_wwpack_file_is_run_and_reported() -> None:
    """Its table damaged: not decoded, so the stub is run as for the other six, and the
    packer is a finding."""
    data = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes())
    struct.pack_into("<I", data, _WW_ENTRY + 8, 0x7FFF)  # (more dwords than the section holds)
    assert _wwpack(bytes(data)) is None
    report = Engine(load_database([_empty_db()])).scan_bytes(bytes(data), name="w")
    assert report.names == ("Heuristics.Unsupported.Packer.WWPack",)


def _empty_db() -> Path:
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="zh-emptydb-"))
    (d / "none.ndb").write_text("Zh.Never:0:*:5a65726f686f75722d6e657665722d6d61746368\n")
    return d


def test_an_emulated_image_is_not_run_again(engine: Engine) -> None:
    """Upack's image keeps Upack's headers in a section, which reads as the packed file again:
    running the stub in it, and in that, recursed to the depth limit."""
    report = engine.scan_bytes((TESTFILES / "clam-upack.exe").read_bytes(), name="u")
    assert not [n for n in report.names if "Limits" in n]
    assert len(report.layers) < 20


def test_runs_per_scan_are_bounded(engine: Engine) -> None:
    """20 different ASPack files in one zip: 16 are run, all 20 are reported."""
    packed = (TESTFILES / "clam-aspack.exe").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(20):
            z.writestr(f"p{i}.exe", packed + bytes([i]) * (i + 1))  # overlays make them differ
    report = engine.scan_bytes(buf.getvalue(), name="many.zip")
    runs = [layer for layer in report.layers if layer.path.endswith("aspack-emulated")]
    assert len(runs) == emulator.PACKERS.runs
    assert "Heuristics.Unsupported.Packer.ASPack" in report.names


# --- packed PEs assembled here ------------------------------------------------------------------

BASE = 0x400000
MARKER = b"zerohour: the program the stub unpacked"
IDATA = 0x5000
FUNCTIONS = ("ExitProcess", "VirtualAlloc", "GetCommandLineA", "VirtualProtect")


def iat(function: str) -> int:
    """The address of `function`'s slot in the import address table `_pe32` writes."""
    return BASE + IDATA + 0x80 + 4 * FUNCTIONS.index(function)


def _idata() -> bytes:
    """kernel32's imports: descriptors at 0, lookup table at 0x40, address table at 0x80, the
    DLL name at 0xC0, hint/name entries from 0xD0."""
    out = bytearray(0x200)
    struct.pack_into("<IIIII", out, 0, IDATA + 0x40, 0, 0, IDATA + 0xC0, IDATA + 0x80)
    out[0xC0:0xCD] = b"kernel32.dll\x00"
    at = 0xD0
    for i, fn in enumerate(FUNCTIONS):
        struct.pack_into("<I", out, 0x40 + 4 * i, IDATA + at)
        struct.pack_into("<I", out, 0x80 + 4 * i, IDATA + at)
        entry = b"\x00\x00" + fn.encode() + b"\x00"
        out[at : at + len(entry)] = entry
        at += len(entry) + (len(entry) & 1)
    return bytes(out)


def _pe32(sections: list[tuple[bytes, int, bytes]], entry: int, *, base: int = BASE,
          machine: int = 0x14C, image_size: int = IDATA + 0x1000, imports: bytes | None = None,
          overlay: bytes = b"", flags: dict[bytes, int] | None = None) -> bytes:
    """A PE32 of `sections` (name, RVA, raw data; 0x1000 of memory or more each) plus an import
    section at IDATA (kernel32's FUNCTIONS, or `imports`), entry point at RVA `entry`."""
    sections = [*sections, (b".idata", IDATA, _idata() if imports is None else imports)]
    head = bytearray(0x400)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x80)
    struct.pack_into("<4sHHIIIHH", head, 0x80, b"PE\x00\x00", machine, len(sections), 0, 0, 0,
                     0xE0, 0x0102)
    opt = 0x98
    struct.pack_into("<HBB", head, opt, 0x10B, 1, 0)
    struct.pack_into("<I", head, opt + 16, entry)
    struct.pack_into("<I", head, opt + 28, base)
    struct.pack_into("<II", head, opt + 32, 0x1000, 0x200)
    struct.pack_into("<II", head, opt + 56, image_size, 0x400)
    struct.pack_into("<I", head, opt + 92, 16)
    struct.pack_into("<II", head, opt + 96 + 8, IDATA, 0x40)  # the import directory
    raw = bytearray(head)
    for i, (name, rva, body) in enumerate(sections):
        body = body + bytes(-len(body) % 0x200)
        struct.pack_into("<8sIIIIIIHHI", raw, opt + 0xE0 + 40 * i, name, max(0x1000, len(body)),
                         rva, len(body), len(raw), 0, 0, 0, 0,
                         (flags or {}).get(name, 0xE0000060))  # (read, write, execute, code)
        raw += body
    return bytes(raw) + overlay


def _payload() -> bytes:
    """The program: ExitProcess(0), then the marker."""
    return b"\x6a\x00" + b"\xff\x15" + struct.pack("<I", iat("ExitProcess")) + MARKER


def _decrypt(length: int) -> bytes:
    """mov esi, 0x401000; mov ecx, length; xor byte [esi], 0x5A; inc esi; dec ecx; jnz."""
    return (b"\xbe" + struct.pack("<I", BASE + 0x1000) + b"\xb9" + struct.pack("<I", length)
            + b"\x80\x36\x5a\x46\x49\x75\xf9")


def _packed(stub: bytes, name: bytes = b".stub", **pe_args: object) -> bytes:
    body = bytes(b ^ 0x5A for b in _payload())
    assert MARKER not in body
    return _pe32([(b".text", 0x1000, body), (name, 0x2000, stub)], entry=0x2000,
                  **pe_args)  # type: ignore[arg-type]


def _emulate(data: bytes) -> emulator.Unpacked | None:
    info = pe.parse(data)
    assert info is not None
    return emulator.emulate(data, info, ScanContext())


def test_a_decrypting_stub_jumps_to_the_program() -> None:
    stub = _decrypt(len(_payload())) + b"\xb8" + struct.pack("<I", BASE + 0x1000) + b"\xff\xe0"
    unpacked = _emulate(_packed(stub))
    assert unpacked is not None
    assert unpacked.oep_rva == 0x1000
    rebuilt = pe.parse(unpacked.pe)
    assert rebuilt is not None
    assert rebuilt.entry_point_rva == 0x1000
    # Raw data lies where it lies in memory: the program is at its RVA in the file.
    assert unpacked.pe[0x1000 : 0x1000 + len(_payload())] == _payload()


def test_a_stub_that_jumps_through_an_exception_handler() -> None:
    """push handler; push fs:[0]; mov fs:[0], esp; decrypt; mov eax, [0]: the handler sets the
    CONTEXT's eip to the program and returns ExceptionContinueExecution."""
    handler_at = BASE + 0x2100
    stub = (b"\x68" + struct.pack("<I", handler_at) + b"\x64\xff\x35\x00\x00\x00\x00"
            + b"\x64\x89\x25\x00\x00\x00\x00" + _decrypt(len(_payload())) + b"\x33\xc0\x8b\x00")
    handler = (b"\x8b\x44\x24\x0c" + b"\xc7\x80\xb8\x00\x00\x00" + struct.pack("<I", BASE + 0x1000)
               + b"\x33\xc0\xc3")
    unpacked = _emulate(_packed(stub + bytes(0x100 - len(stub)) + handler))
    assert unpacked is not None
    assert unpacked.oep_rva == 0x1000
    assert MARKER in unpacked.pe


def test_what_a_faulting_stub_wrote_is_still_returned() -> None:
    """No handler for the fault: the run ends, and the decrypted program is scanned anyway."""
    unpacked = _emulate(_packed(_decrypt(len(_payload())) + b"\x33\xc0\x8b\x00"))
    assert unpacked is not None
    assert MARKER in unpacked.pe


def test_a_stub_that_never_ends_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.3)
    started = time.monotonic()
    assert _emulate(_packed(_decrypt(len(_payload())) + b"\xeb\xfe")) is not None  # jmp $
    assert _emulate(_packed(b"\xeb\xfe")) is None  # nothing written: nothing to scan
    assert time.monotonic() - started < 10


def test_a_stub_that_allocates_forever_is_stopped() -> None:
    """VirtualAlloc(0, 1 MiB) in a loop: the allocations stop at their bound."""
    call = (b"\x6a\x04\x68\x00\x10\x00\x00\x68\x00\x00\x10\x00\x6a\x00" + b"\xff\x15"
            + struct.pack("<I", iat("VirtualAlloc")))
    stub = _decrypt(len(_payload())) + call + b"\xeb" + bytes([(-(len(call) + 2)) & 0xFF])
    started = time.monotonic()
    unpacked = _emulate(_packed(stub))
    assert unpacked is not None
    assert MARKER in unpacked.pe
    assert time.monotonic() - started < 10


def test_images_it_cannot_place_are_not_run() -> None:
    stub = _decrypt(len(_payload())) + b"\xeb\xfe"
    body = bytes(b ^ 0x5A for b in _payload())
    sections = [(b".text", 0x1000, body), (b".stub", 0x2000, stub)]
    # over the emulator's own memory (its DLLs), and a 64-bit machine
    assert _emulate(_pe32(sections, 0x2000, base=0x70000000)) is None
    assert _emulate(_pe32(sections, 0x2000, machine=0x8664)) is None


def _call(function: str, *args: int) -> bytes:
    """push the arguments (imm32, last first); call [the function's IAT slot]."""
    pushes = b"".join(b"\x68" + struct.pack("<I", a & 0xFFFFFFFF) for a in reversed(args))
    return pushes + b"\xff\x15" + struct.pack("<I", iat(function))


def _to_program() -> bytes:
    return b"\xb8" + struct.pack("<I", BASE + 0x1000) + b"\xff\xe0"  # mov eax, OEP; jmp eax


# --- round 22: the emulator attacked (helper 78) ------------------------------------------------


def _many_dlls(n: int) -> bytes:
    """An import section naming `n` different DLLs, each importing one function."""
    out = bytearray(0x1000)
    lookup, table, hint = 0x800, 0x900, 0x980
    struct.pack_into("<I", out, lookup, IDATA + hint)
    struct.pack_into("<I", out, table, IDATA + hint)
    out[hint : hint + 6] = b"\x00\x00Foo\x00"
    for i in range(n):
        name = 0xA00 + 16 * i
        out[name : name + 9] = b"d%03d.dll\x00" % i
        struct.pack_into("<IIIII", out, 20 * i, IDATA + lookup, 0, 0, IDATA + name,
                         IDATA + table)
    return bytes(out)


def test_r22_too_many_dlls_do_not_hide_the_rest_of_the_file(engine: Engine) -> None:
    """F1: 20 DLLs (over the emulator's 16) raised out of emulate(), and the PE's other
    readers (embedded files) never ran: clam.exe appended to it went unseen."""
    clam = CLAM_EXE.read_bytes()
    data = _packed(b"\xcc", name=b".aspack", imports=_many_dlls(20), overlay=clam + b"junk")
    _emulate(data)  # (raised _Stop before)
    report = engine.scan_bytes(data, name="x")
    assert NAME in report.names
    assert "Heuristics.Unsupported.Packer.ASPack" in report.names
    assert not report.errors


def test_r22_a_small_file_cannot_declare_a_huge_image(clam_code_db: Path) -> None:
    """F2: 3 KB files declaring 64 MiB images used up the scan's size budget in seven
    emulated copies, and clamscan's defaults (no limit alerts) then passed the zip as clean
    while clam.exe sat in it."""
    touch = b"\xc6\x05" + struct.pack("<I", BASE + 0x1000) + b"\x41"  # mov byte [.text], 'A'
    small = _packed(touch + b"\xcc", name=b".aspack", image_size=64 << 20)
    assert len(small) < 4096
    assert _emulate(small) is None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(7):
            z.writestr(f"a{i}.exe", small + bytes([i]) * (i + 1))
        z.writestr("zz.exe", CLAM_EXE.read_bytes())
    quiet = Limits(alert_unsupported=False, alert_exceeds_max=False)  # as `zerohour scan`
    report = Engine(load_database([clam_code_db]), quiet).scan_bytes(buf.getvalue(), name="z.zip")
    assert NAME in report.names


def test_r22_each_run_frees_its_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """F3: the binding's hook wrappers hold the Uc in ctypes reference cycles; each run's
    guest memory and translations stayed until a garbage collection (a self-modifying stub:
    +150 MB a run; two workers at 1.7 and 2.5 GB after 20 mails)."""
    made: list[emulator.Uc] = []
    real = emulator.Uc

    def tracked(*args: int) -> emulator.Uc:
        made.append(real(*args))
        return made[-1]

    monkeypatch.setattr(emulator, "Uc", tracked)
    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.2)
    va = BASE + 0x2000  # inc dword [the next mov's immediate]; mov eax, imm; jmp back
    smc = b"\xff\x05" + struct.pack("<I", va + 7) + b"\xb8\x00\x00\x00\x00" + b"\xeb\xf3"
    for _ in range(3):
        _emulate(_packed(smc))
    assert len(made) == 3
    assert not any(uc._Uc__finalizer.alive for uc in made)  # (uc_close has run)


def test_r22_the_image_is_scanned_before_the_packer_finding(clam_code_db: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """F4: without --allmatch (the gateway) the packer finding ended the walk before the
    emulated image was scanned: the stub ran for nothing and clam.exe went unnamed. And all
    runs of one scan share one time budget (16 endless stubs cost 80 s)."""
    first = Engine(load_database([clam_code_db])).scan_bytes(
        (TESTFILES / "clam-aspack.exe").read_bytes(), name="a")
    assert set(first.names) & {NAME, "Clam.Code"}
    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.2)
    monkeypatch.setattr(emulator, "PACKERS", dataclasses.replace(emulator.PACKERS, seconds=0.5))
    endless = _packed(_decrypt(len(_payload())) + b"\xeb\xfe", name=b".aspack")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(16):
            z.writestr(f"l{i}.exe", endless + bytes([i]) * (i + 1))
    every = Engine(load_database([clam_code_db]), allmatch=True)
    report = every.scan_bytes(buf.getvalue(), name="z")
    runs = [layer for layer in report.layers if layer.path.endswith("aspack-emulated")]
    assert 1 <= len(runs) <= 4
    assert len([f for f in report.findings if "Packer.ASPack" in f.name]) == 16


def test_r22_import_tables_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """F5: 255 descriptors sharing a 4,095-entry table: a million IAT writes before the clock
    started (2.8 s a run)."""
    out = bytearray(0x2000 + 8 * 4096 + 0x1000)
    lookup = 0x2000
    table = lookup + 4 * 4096
    out[0x1F00:0x1F0D] = b"kernel32.dll\x00"
    for j in range(4095):
        struct.pack_into("<I", out, lookup + 4 * j, 0x80000000 | 1)
    for i in range(255):
        struct.pack_into("<IIIII", out, 20 * i, IDATA + lookup, 0, 0, IDATA + 0x1F00,
                         IDATA + table)
    calls = []
    real = emulator._function
    monkeypatch.setattr(emulator, "_function",
                        lambda *a: calls.append(1) or real(*a))  # type: ignore[func-returns-value]
    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.1)
    _emulate(_packed(_decrypt(len(_payload())) + b"\xeb\xfe", imports=bytes(out),
                     image_size=IDATA + len(out) + 0x1000))
    assert 0 < len(calls) <= emulator.MAX_IMPORTS


def test_r22_a_bad_pointer_fails_the_call_not_the_run() -> None:
    """F7: VirtualProtect with an unmapped old-protection pointer ended the whole run (a stub
    could stop emulation at will); Windows fails the call and the stub goes on."""
    stub = (_call("VirtualProtect", BASE + 0x1000, 0x1000, 0x40, 0x0BAD0000)
            + _decrypt(len(_payload())) + _to_program())
    unpacked = _emulate(_packed(stub))
    assert unpacked is not None
    assert unpacked.oep_rva == 0x1000


def test_r22_the_gdt_is_read_only() -> None:
    """A stub that zeroes the GDT and reloads fs: the write faults (no handler: the run ends
    where it was); a stub that only reloads fs keeps its TEB."""
    wipe = b"\xc7\x05" + struct.pack("<I", 0x7FFC0018) + bytes(4)  # mov dword [gdt+0x18], 0
    reload = b"\x66\xb8\x18\x00\x8e\xe0"  # mov ax, 0x18; mov fs, ax
    peb = b"\x64\xa1\x30\x00\x00\x00"  # mov eax, fs:[0x30]
    assert _emulate(_packed(wipe + reload + _decrypt(len(_payload())) + _to_program())) is None
    unpacked = _emulate(_packed(reload + peb + _decrypt(len(_payload())) + _to_program()))
    assert unpacked is not None
    assert unpacked.oep_rva == 0x1000


# --- packers we know by their stub, and stubs of packers we do not know -----------------------


@pytest.mark.parametrize(("sample", "packer"), sorted({**UNPACKED, **DECODED}.items()))
def test_renamed_sections_do_not_hide_the_packer(engine: Engine, sample: str,
                                                 packer: str) -> None:
    """MEW, Petite, WWPack and yC were known only by their section names: renamed, the file
    had no finding at all. Each is known by its stub's first bytes now (MEW's behind the
    entry point's jump), as ASPack, PESpin and Upack already were."""
    data = bytearray((TESTFILES / sample).read_bytes())
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    count, opt_size = struct.unpack_from("<H", data, lfanew + 6)[0], struct.unpack_from(
        "<H", data, lfanew + 20)[0]
    for i in range(count):
        at = lfanew + 24 + opt_size + 40 * i
        data[at : at + 8] = b".sec%d\x00\x00\x00" % i
    report = engine.scan_bytes(bytes(data), name=sample)
    if sample in DECODED:
        assert NAME in report.names  # (known by its stub, and decoded)
    else:
        assert f"Heuristics.Unsupported.Packer.{packer}" in report.names


@pytest.fixture(scope="module")
def marker_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    d = tmp_path_factory.mktemp("markerdb")
    (d / "marker.ndb").write_text(f"Zh.Test.Unpacked:0:*:{MARKER.hex()}\n")
    return Engine(load_database([d]), allmatch=True)


def test_an_unknown_packer_is_run_when_its_entry_point_looks_packed(
        marker_engine: Engine) -> None:
    """No packer we know, but the entry point is in a writable section: the stub runs, and
    since it ran code it had written, its image is scanned. Nothing else is reported: most
    such files are not packed."""
    stub = _decrypt(len(_payload())) + _to_program()
    report = marker_engine.scan_bytes(_packed(stub), name="crypted.exe")
    assert report.names == ("Zh.Test.Unpacked",)
    assert any(layer.path.endswith("stub-emulated") for layer in report.layers)


def test_a_program_that_does_not_look_packed_is_not_run(marker_engine: Engine) -> None:
    """The same file with its entry point in a read-only code section, as compilers make."""
    stub = _decrypt(len(_payload())) + _to_program()
    report = marker_engine.scan_bytes(_packed(stub, flags={b".stub": 0x60000020}), name="a.exe")
    assert report.names == ()
    assert not any("emulated" in layer.path for layer in report.layers)


def test_an_unknown_stub_that_only_writes_data_gives_no_image(marker_engine: Engine) -> None:
    """It decrypts the marker but never runs it: not unpacked code, so nothing is scanned."""
    report = marker_engine.scan_bytes(_packed(_decrypt(len(_payload())) + b"\xcc"), name="b.exe")
    assert report.names == ()


# --- round 23: the fixed emulator attacked again (helper 79) -----------------------------------


def _touch() -> bytes:
    return b"\xc6\x05" + struct.pack("<I", BASE + 0x1000) + b"\x41"  # mov byte [.text], 'A'


def _carrier(inner: bytes) -> bytes:
    """A packed PE whose section holds `inner` whole; its stub writes a byte and stops."""
    return _packed(_touch() + b"\xcc" + bytes(0x1F8) + inner, name=b".aspack",
                   image_size=0x40000)


def test_r23_a_packed_file_seen_inside_an_image_is_no_clean_twin(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """FE (the gateway delivered it): P, a packed PE, first met inside the image of O's stub,
    where packed files are neither run nor reported (O itself in a guess, a zlib stream cut
    before its checksum, so O's own finding was muted), was cached as clean; P again as a
    plain program's overlay was then skipped as its twin: no finding at all."""
    import zlib

    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.1)
    p = _packed(_touch() + b"\xeb\xfe", name=b".aspack")
    plain = _pe32([(b".text", 0x1000, b"\xc3")], entry=0x1000, overlay=p,
                  flags={b".text": 0x60000020, b".idata": 0x40000040})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.zz", zlib.compress(_carrier(p))[:-4])
        z.writestr("setup.exe", plain)
    report = Engine(engine.db).scan_bytes(buf.getvalue(), name="m.zip")  # as the gateway
    assert "Heuristics.Unsupported.Packer.ASPack" in report.names


def test_r23_a_packed_file_at_the_deepest_level_is_still_reported(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """FB: a packed PE at the deepest level allowed: its image, one level deeper, raised
    MaxRecursion, the walk left the reader before it noted the packer, and with limit alerts
    off the file had no finding."""
    monkeypatch.setattr(emulator, "MAX_SECONDS", 0.1)
    data = _packed(_touch() + b"\xcc", name=b".aspack")
    for level in range(17):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"l{level}.zip" if level else "p.exe", data)
        data = buf.getvalue()
    report = Engine(engine.db, Limits(alert_exceeds_max=False)).scan_bytes(data, name="z")
    assert "Heuristics.Unsupported.Packer.ASPack" in report.names


def test_r23_images_do_not_use_up_the_scan_size_budget(clam_code_db: Path) -> None:
    """FA: 4 MiB members of zeros (4 KB in the zip) may declare 64 MiB images (16x); six of
    them used up the 400 MiB scan budget and clam.exe after them went unread with clamscan's
    defaults (clamscan found it). Images have a budget of their own now."""
    big = _packed(_touch() + b"\xcc", name=b".aspack", image_size=64 << 20)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(6):
            z.writestr(f"a{i}.exe", big + bytes([i]) * ((4 << 20) - len(big)))
        z.writestr("zz.exe", CLAM_EXE.read_bytes())
    quiet = Limits(alert_unsupported=False, alert_exceeds_max=False)  # as `zerohour scan`
    report = Engine(load_database([clam_code_db]), quiet).scan_bytes(buf.getvalue(), name="z.zip")
    assert NAME in report.names


def test_r23_a_packed_file_inside_an_image_is_run_as_its_own_copy(clam_code_db: Path) -> None:
    """FC: Q (a stub that decodes clam.exe) inside P's image, where it is not run, was cached
    as clean, and Q's copy found in P as an embedded program was skipped as its twin."""
    key = 0x55
    clam = CLAM_EXE.read_bytes()
    src, dst = BASE + 0x2020, BASE + 0x10000  # lodsb; xor al, key; stosb; loop; int3
    code = (b"\xbe" + struct.pack("<I", src) + b"\xbf" + struct.pack("<I", dst) + b"\xb9"
            + struct.pack("<I", len(clam)) + b"\xac\x34" + bytes([key]) + b"\xaa\xe2\xfa\xcc")
    q = _packed(code + b"\x90" * (0x20 - len(code)) + bytes(b ^ key for b in clam),
                name=b".aspack", image_size=0x20000)
    p = _packed(_touch() + b"\xcc" + bytes(0x1F8) + q, name=b".aspack", image_size=0x40000,
                overlay=bytes(10 << 20))  # (an overlay: no copy of Q running to the end)
    quiet = Limits(alert_unsupported=False, alert_exceeds_max=False)
    report = Engine(load_database([clam_code_db]), quiet).scan_bytes(p, name="p.exe")
    assert "Clam.Code" in report.names


def test_r23_spent_emulation_budgets_still_report_every_packed_file(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """FD (left open): decoys that use up the runs or the seconds of a scan keep a later
    packed file from being run. Its payload is then unseen, as with any scan limit; the file
    is still `Heuristics.Unsupported.Packer.*`, which the gateway blocks."""
    monkeypatch.setattr(emulator, "PACKERS", dataclasses.replace(emulator.PACKERS, runs=2))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(2):
            z.writestr(f"d{i}.exe", _packed(_touch() + b"\xcc", name=b".aspack") + bytes([i]))
        z.writestr("zz.exe", (TESTFILES / "clam-aspack.exe").read_bytes())
    report = Engine(engine.db, allmatch=True).scan_bytes(buf.getvalue(), name="z.zip")
    assert not [layer for layer in report.layers if layer.path.startswith("z.zip/zz.exe/")]
    assert any(f.name == "Heuristics.Unsupported.Packer.ASPack" and f.path == "z.zip/zz.exe"
               for f in report.findings)


# --- round 24: unknown stubs attacked (helper 80) ----------------------------------------------


def _crypter(payload: bytes, key: int = 0x55, section: bytes = b".data") -> bytes:
    """A packer we do not know: its stub (in a writable `.data`) decodes `payload` to
    BASE+0x10000, writes an int3 into .text and runs it (code it wrote: an image to scan)."""
    src, dst = BASE + 0x2040, BASE + 0x10000
    code = (b"\xbe" + struct.pack("<I", src) + b"\xbf" + struct.pack("<I", dst) + b"\xb9"
            + struct.pack("<I", len(payload)) + b"\xac\x34" + bytes([key]) + b"\xaa\xe2\xfa"
            + b"\xc6\x05" + struct.pack("<I", BASE + 0x1000) + b"\xcc" + _to_program())
    body = code + b"\x90" * (0x40 - len(code)) + bytes(b ^ key for b in payload)
    size = -(-(0x10000 + len(payload)) // 0x1000) * 0x1000 + 0x1000
    return _pe32([(b".text", 0x1000, b"\x90" * 16), (section, 0x2000, body)], entry=0x2000,
                 image_size=size)


@pytest.mark.parametrize("sample", ["clam-aspack.exe", "clam-mew.exe", "clam-petite.exe"])
def test_r24_a_known_packer_inside_an_unknown_one_is_run(clam_code_db: Path,
                                                        sample: str) -> None:
    """F1: in the image of a stub no known packer made, a known packer was neither run nor
    reported (as inside the image of a known one): no finding at all."""
    data = _crypter((TESTFILES / sample).read_bytes())
    report = Engine(load_database([clam_code_db])).scan_bytes(data, name="x.exe")
    assert set(report.names) & {NAME, "Clam.Code"}


@pytest.mark.parametrize("decoy", [b"\xc3", b"\xeb\xfe"])  # ret (16 of them); jmp $ (3)
def test_r24_programs_that_only_look_packed_do_not_use_up_the_packers_budgets(
        clam_code_db: Path, decoy: bytes) -> None:
    """F2: clean programs whose entry point is in a writable section (old linkers make them)
    used up the runs or the seconds of a scan, and clam-aspack.exe after them was not run
    (`zerohour scan`: OK; clamscan: found). They have budgets of their own now."""
    count = 16 if decoy == b"\xc3" else 3
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(count):
            z.writestr(f"d{i:02}.exe", _pe32([(b".text", 0x1000, decoy + bytes([i]) * 14)],
                                             entry=0x1000))
        z.writestr("zz.exe", (TESTFILES / "clam-aspack.exe").read_bytes())
    quiet = Limits(alert_unsupported=False, alert_exceeds_max=False)  # as `zerohour scan`
    report = Engine(load_database([clam_code_db]), quiet).scan_bytes(buf.getvalue(), name="z")
    assert "Clam.Code" in report.names


# --- round 25 (helper 81) -----------------------------------------------------------------------


def test_r25_twins_are_kept_apart_by_the_kind_of_image(clam_code_db: Path) -> None:
    """F1: clam-aspack.exe inside a packer's image (neither run nor reported there) was cached
    clean, and its copy inside an unknown crypter's image (where it is run) skipped as its
    twin: the crypter's findings were lost (`zerohour scan`: OK; the crypter alone: FOUND)."""
    aspack = (TESTFILES / "clam-aspack.exe").read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.exe", _crypter(aspack, section=b".aspack"))  # a packer's image holds it
        z.writestr("b.exe", _crypter(aspack))  # an unknown stub's image holds it
    quiet = Limits(alert_unsupported=False, alert_exceeds_max=False)  # as `zerohour scan`
    report = Engine(load_database([clam_code_db]), quiet).scan_bytes(buf.getvalue(), name="z")
    assert "Clam.Code" in report.names


# --- round 26: the WWPack decoder attacked (helper 82) -----------------------------------------


def _ww_stream(data: bytes) -> bytes:
    """`data` as WWPack's bit stream of literals only (a 0 bit before each byte), then the end
    code: 32-bit little-endian words, top bit first, each byte after the word it follows."""
    out = bytearray(4)
    word = count = at = 0

    def bit(b: int) -> None:
        nonlocal word, count, at
        word, count = (word << 1) | b, count + 1
        if count == 32:
            struct.pack_into("<I", out, at, word)
            at, word, count = len(out), 0, 0
            out.extend(bytes(4))

    for byte in data:
        bit(0)
        out.append(byte)
    for b in (1, 1, 1, 1, 1) + (1,) * 9:  # a copy of kind 3, width 9: 0x1FF, the end code
        bit(b)
    struct.pack_into("<I", out, at, (word << (32 - count)) & 0xFFFFFFFF if count else 0)
    return bytes(out + bytes(-len(out) % 4))


def _ww_file(payload: bytes, *, entries: int = 1, delta: int = 0, fixups: bytes = b"",
             overlap: int = 0, gap: int = 0) -> bytes:
    """A WWPack file with ClamAV's stub: one section (after the import page) holding
    `payload`'s stream at its end, the stub a page after it, the table repeated `entries`
    times. `overlap`: the output's end that many bytes before the stream's (the stub moves the
    stream down onto itself); `gap`: the output ends that many bytes before the stream starts
    (the stream outlives the output). `delta`, `fixups`: the stub's relocation fields."""
    sample = (TESTFILES / "clam-wwpack.exe").read_bytes()
    packed = _ww_stream(payload)
    sec = IDATA + 0x1000
    span = -(-(len(payload) + len(packed) + 0x1000) // 0x1000) * 0x1000
    ep = sec + span + 0x1000
    body = bytearray(span)
    body[span - len(packed) :] = packed
    stub = bytearray(sample[0xC00 : 0xC00 + _TABLE_AT])
    struct.pack_into("<i", stub, 0x295, sec - (ep + 0x299))
    struct.pack_into("<II", stub, 0x299, 0x400000 - delta & 0xFFFFFFFF,
                     0x400000 + ep - delta & 0xFFFFFFFF)
    end = span - 4 - (overlap or (len(packed) + gap if gap else 0))
    for i in range(entries):
        stub += struct.pack("<IIIIB", ep - sec, end, len(packed) // 4, span - 4,
                            int(i + 1 < entries))
    stub += fixups + bytes(8)
    return _pe32([(b".text", sec, bytes(body)), (b".WWP32", ep, bytes(stub))], entry=ep,
                 image_size=ep + 0x1000)


_TABLE_AT = 0x2A1


def test_r26_a_packer_inside_a_whole_wwpack_image_is_run(engine: Engine) -> None:
    """F5: a WWPack file decoded whole (no finding of its own) around clam-aspack.exe: its
    image was marked as an emulated one, so the ASPack file in it was neither run nor
    reported: no finding at all (clamscan: found)."""
    data = _ww_file(b"P" * 11 + (TESTFILES / "clam-aspack.exe").read_bytes())
    decoded = _wwpack(data)
    assert decoded is not None
    assert decoded.complete
    report = engine.scan_bytes(data, name="w")
    assert {"Clam.Code", "Heuristics.Unsupported.Packer.ASPack"} <= set(report.names)
    assert "Heuristics.Unsupported.Packer.WWPack" not in report.names


def test_r27_a_packer_inside_a_changed_wwpack_stub_is_run(engine: Engine) -> None:
    """Round 27, F5: the same with one instruction of the stub re-encoded. Its decoding is
    never complete, and its image was marked as an emulated one, so the ASPack file in it was
    neither run nor reported: only the WWPack finding, and `zerohour scan` said OK."""
    data = bytearray(_ww_file(b"P" * 11 + (TESTFILES / "clam-aspack.exe").read_bytes()))
    at = data.find((TESTFILES / "clam-wwpack.exe").read_bytes()[0xC00 : 0xC00 + 0x40])
    assert data[at + 0x75 : at + 0x77] == b"\x33\xc9"
    data[at + 0x75] = 0x31  # xor ecx,ecx, encoded otherwise
    decoded = _wwpack(bytes(data))
    assert decoded is not None
    assert not decoded.complete
    report = engine.scan_bytes(bytes(data), name="w")
    assert {"Clam.Code", "Heuristics.Unsupported.Packer.ASPack",
            "Heuristics.Unsupported.Packer.WWPack"} <= set(report.names)


def test_r26_what_the_stub_would_do_differently_is_reported() -> None:
    """F1: input ending past the output's end, moved down onto itself by the stub's
    last-dword-first copy (the stub reads another stream); F2: fixups applied at another base
    (the stub changes the program after decoding). Each decoded clean, and no finding."""
    clam = CLAM_EXE.read_bytes()
    assert _wwpack(_ww_file(clam)).complete  # (the control)
    moved = _wwpack(_ww_file(clam, overlap=8))
    assert moved is not None
    assert not moved.complete
    fixed_up = _wwpack(_ww_file(clam, delta=0x01010101, fixups=struct.pack("<IB", 0x1000, 0)))
    assert fixed_up is not None
    assert not fixed_up.complete


def test_r26_sections_over_one_region_are_bounded() -> None:
    """F4: 64 table entries decoding one region (2.7 s of copying for a 3.5 KB file, the whole
    scan's time for a 4 MiB one): past 4 times the image, the file is not decoded (it is run
    and reported instead)."""
    assert _wwpack(_ww_file(b"Z" * 4096, entries=3, gap=16)) is not None
    assert _wwpack(_ww_file(b"Z" * 4096, entries=64, gap=16)) is None


def test_a_stub_that_wipes_the_headers_gives_a_forged_pe_entering_at_the_program() -> None:
    """With the headers gone the image is wrapped in a PE of one section; its entry point
    leads to the program's bytes (it led one page past them)."""
    wipe = b"\xbf" + struct.pack("<I", BASE) + b"\xb9\x00\x04\x00\x00\x31\xc0\xf3\xaa"  # rep stosb
    unpacked = _emulate(_packed(wipe + _decrypt(len(_payload())) + _to_program()))
    assert unpacked is not None
    rebuilt = pe.parse(unpacked.pe)
    assert rebuilt is not None
    assert [s.name for s in rebuilt.sections] == ["EMU-RAW"]
    at = pe.rva_to_offset(rebuilt.sections, rebuilt.entry_point_rva, len(unpacked.pe))
    assert at is not None
    assert unpacked.pe[at : at + len(_payload())] == _payload()


# --- round 27: WWPack stubs no pattern knows ----------------------------------------------------

#: Equivalent re-encodings inside clam-wwpack.exe's stub (file offset of the entry point
#: 0xC00): (offset from the entry point, the bytes, the same instruction encoded otherwise).
_SWAPS = (
    (0x04, b"\x33\xdb", b"\x31\xdb"), (0x75, b"\x33\xc9", b"\x31\xc9"),
    (0x87, b"\x8b\xf0", b"\x89\xc6"), (0x91, b"\x8b\xf8", b"\x89\xc7"),
    (0xA6, b"\x8b\xf7", b"\x89\xfe"), (0xB5, b"\x33\xc0", b"\x31\xc0"),
    (0xC5, b"\x8a\xcb", b"\x88\xd9"), (0xD6, b"\x8b\xe8", b"\x89\xc5"),
    (0xE5, b"\x8b\xe8", b"\x89\xc5"),
)


def _ww_variant(swaps: tuple[tuple[int, bytes, bytes], ...], banner: bool = False,
                read_only: bool = False) -> bytes:
    """clam-wwpack.exe with `swaps` applied, maybe another banner (the text the stub's first
    jump skips), its section renamed `.text2`, maybe not writable."""
    data = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes())
    for off, old, new in swaps:
        assert data[0xC00 + off : 0xC00 + off + 2] == old
        data[0xC00 + off : 0xC00 + off + 2] = new
    if banner:
        data[0xC00 + 0x0C : 0xC00 + 0x64] = b"another banner, version 9.99".ljust(0x58, b" ")
    lfanew = struct.unpack_from("<I", data, 0x3C)[0]
    count, opt_size = struct.unpack_from("<H", data, lfanew + 6)[0], struct.unpack_from(
        "<H", data, lfanew + 20)[0]
    for i in range(count):
        at = lfanew + 24 + opt_size + 40 * i
        if data[at : at + 6] == b".WWP32":
            data[at : at + 8] = b".text2\x00\x00"
            if read_only:
                struct.pack_into("<I", data, at + 36, 0x60000020)  # code, read, execute
    return bytes(data)


def test_r27_another_banner_and_two_instructions_are_still_wwpack(
        engine: Engine, clam_code_db: Path, tmp_path: Path) -> None:
    """Round 27, F1: the banner (skipped text: 7 pieces) and two instructions changed, 9
    pieces in all, the section renamed: no finding at all in the gateway, while clamscan,
    which knows the stub by 7 bytes at the entry point and 19 at +0x68, found clam.exe. The
    banner is not compared now, and clamscan's bytes say WWPack too."""
    data = _ww_variant(_SWAPS[2:4], banner=True)
    sample = tmp_path / "w.exe"
    sample.write_bytes(data)
    out = subprocess.run(["clamscan", "--no-summary", "-d", str(clam_code_db), str(sample)],
                         capture_output=True, text=True, timeout=120).stdout
    assert "FOUND" in out
    assert {NAME, "Heuristics.Unsupported.Packer.WWPack"} <= set(
        engine.scan_bytes(data, name="w").names)
    assert Engine(load_database([clam_code_db])).scan_bytes(data, name="w").infected


def test_r27_a_stub_no_pattern_knows_is_decoded_by_its_table(engine: Engine) -> None:
    """Round 27, F2/F3: nine instructions re-encoded (nine pieces), the section renamed and
    not writable: identified by nothing, and no finding (clamscan misses it too). A table at
    +0x2A1 whose streams decode to every section's end code is WWPack's."""
    data = _ww_variant(_SWAPS, read_only=True)
    info = pe.parse(data)
    assert info is not None
    assert wwpack.stub(data, info.entry_point_offset) is None
    report = engine.scan_bytes(data, name="w")
    assert "w/wwpack-unpacked" in [layer.path for layer in report.layers]
    assert {NAME, "Clam.Code", "Heuristics.Unsupported.Packer.WWPack"} <= set(report.names)


def test_r27_a_zip_member_with_an_empty_name_hides_nothing(engine: Engine) -> None:
    """Round 27, E1: `ZipInfo.is_dir()` raised IndexError on a member named "", and the zip
    was a scan error (a tempfail in the gateway, exit 2 in the CLI, where clamscan found
    clam.exe after it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo(""), b"hello")
        zf.writestr("clam.exe", CLAM_EXE.read_bytes())
    report = engine.scan_bytes(buf.getvalue(), name="z.zip")
    assert not report.errors
    assert NAME in report.names


# --- round 28: packed files that WWPack packed --------------------------------------------------


def _ww_wrap(src: bytes, rename: dict[bytes, bytes], grow: dict[bytes, int]) -> bytes:
    """`src` packed as WWPack packs a program (each section's data replaced by its literal-only
    stream, ClamAV's stub in a new last section, the entry point's program that of `src`),
    its sections renamed by `rename`, the virtual sizes in `grow` enlarged (the sections after
    moved up)."""
    d = bytearray(src)
    lfanew = struct.unpack_from("<I", d, 0x3C)[0]
    count, opt = struct.unpack_from("<H", d, lfanew + 6)[0], lfanew + 24
    table = opt + struct.unpack_from("<H", d, lfanew + 20)[0]
    (old_ep,) = struct.unpack_from("<I", d, opt + 16)
    (base,) = struct.unpack_from("<I", d, opt + 28)
    shift, sections = 0, []
    for i in range(count):
        at = table + 40 * i
        name = bytes(d[at : at + 8]).rstrip(b"\0")
        vsize, va, rsize, roff = struct.unpack_from("<IIII", d, at + 8)
        va += shift
        if name in grow:
            shift += (grow[name] + 0xFFF & ~0xFFF) - (vsize + 0xFFF & ~0xFFF)
            vsize = grow[name]
        sections.append((at, name, vsize, va, rsize, roff))
    ep = max(va + (vsize + 0xFFF & ~0xFFF) for _, _, vsize, va, _, _ in sections)
    out = bytearray(d[: struct.unpack_from("<I", d, opt + 60)[0]])
    stub = bytearray((TESTFILES / "clam-wwpack.exe").read_bytes()[0xC00 : 0xC00 + _TABLE_AT])
    entries = []
    for at, name, vsize, va, rsize, roff in sections:
        if name in rename:
            out[at : at + 8] = rename[name].ljust(8, b"\0")
        struct.pack_into("<II", out, at + 8, vsize, va)
        if rsize:
            stream = _ww_stream(bytes(src[roff : roff + min(rsize, vsize or rsize)]).rstrip(b"\0")
                                or b"\0")
            struct.pack_into("<II", out, at + 16, len(stream) + (-len(stream) % 0x200), len(out))
            out += stream + bytes(-len(stream) % 0x200)
            entries.append((va, vsize, stream))
        else:
            struct.pack_into("<II", out, at + 16, 0, len(out))
    for j, (va, vsize, stream) in enumerate(entries):
        stub += struct.pack("<IIIIB", ep - va, vsize - 4, len(stream) // 4, len(stream) - 4,
                            int(j < len(entries) - 1))
    stub += bytes(4) + bytes(-(len(stub) + 4) % 0x200)
    struct.pack_into("<i", stub, 0x295, old_ep - (ep + 0x299))
    struct.pack_into("<I", stub, 0x29D, base + ep)
    at = table + 40 * count
    out[at : at + 40] = b".WWP32\0\0" + struct.pack("<IIIIIIHHI", len(stub), ep, len(stub),
                                                     len(out), 0, 0, 0, 0, 0xC0000040)
    struct.pack_into("<H", out, lfanew + 6, count + 1)
    struct.pack_into("<I", out, opt + 16, ep)
    struct.pack_into("<I", out, opt + 56, ep + len(stub) + 0xFFF & ~0xFFF)
    return bytes(out + stub)


def test_r28_a_packed_program_that_wwpack_packed_is_unpacked_again(
        engine: Engine, clam_code_db: Path, tmp_path: Path) -> None:
    """Round 28, F1: clam-aspack.exe packed by WWPack (its `.aspack`/`.adata` sections renamed).
    The decoded image was never identified nor run again (it was in `ctx.decoded`), and a
    complete decode is no finding of its own: nothing at all, where clamscan unpacks WWPack,
    then ASPack, and finds clam.exe. The image is known by its entry point now; with the
    names kept, the outer file was taken for ASPack (names came first) and WWPack's stub run
    as ASPack's."""
    src = (TESTFILES / "clam-aspack.exe").read_bytes()
    for rename in ({b".aspack": b".data1", b".adata": b".data2"}, {}):
        data = _ww_wrap(src, rename, {b".aspack": 0x3000})
        sample = tmp_path / "w.exe"
        sample.write_bytes(data)
        out = subprocess.run(["clamscan", "--no-summary", "-d", str(clam_code_db), str(sample)],
                             capture_output=True, text=True, timeout=120).stdout
        assert "FOUND" in out
        report = engine.scan_bytes(data, name="w")
        assert {"Clam.Code", "Heuristics.Unsupported.Packer.ASPack"} <= set(report.names)
        assert Engine(load_database([clam_code_db])).scan_bytes(data, name="w").names[0] in (
            NAME, "Clam.Code")
    # MEW's inside WWPack's: its decompressor lies in the original headers, which the image
    # does not keep, but its section name says MEW (only WWPack's own name is left over)
    mew = _ww_wrap((TESTFILES / "clam-mew.exe").read_bytes(), {}, {})
    assert "Heuristics.Unsupported.Packer.MEW" in engine.scan_bytes(mew, name="w").names


def test_r28_a_zip_folder_entry_with_data_is_read(engine: Engine) -> None:
    """Round 28, F6: clam.exe as the data of a member named `dir/` (or `/`): skipped as a
    folder, while clamscan reads it."""
    for name in ("dir/", "/"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(zipfile.ZipInfo(name), CLAM_EXE.read_bytes())
        assert NAME in engine.scan_bytes(buf.getvalue(), name="z.zip").names, name
