"""Unpacking by emulation: run a packed PE's own stub in a CPU emulator (unicorn) until the
program it unpacked starts, then scan that program's image as a rebuilt PE.

libclamav has a static unpacker per packer (aspack.c, mew.c, petite.c, spin.c, upack.c,
wwunpack.c, yc.c), each tied to the versions it knows. The stub itself knows its own format, so
one emulator unpacks all seven, and their versions, the same way: ASPack, MEW, Petite, PESpin,
Upack, WWPack and yC. It runs only on files `packers.identify` names.

The Windows a stub sees is written here rather than taken from speakeasy (the well-kept emulated
Windows): speakeasy pins unicorn 1.0.2 and builds a whole process model per run (a second or
more), where a stub needs a TEB and PEB with a loader list, a kernel32 with an export table it
can walk, a return address into kernel32 on the stack, and a dozen kernel32 calls. Every call a
stub makes to a function not modelled here stops the run: by then the program is usually running
(clam.exe's first call is GetCommandLineA).

Stubs also check for debuggers and jump through exception handlers: faults, int3 and invalid
instructions are dispatched to the thread's SEH chain with a CONTEXT the handler may change.

Bounded: 32-bit images of at most 64 MiB, at most 64 MiB allocated by the stub, and 5 seconds
(unicorn's own timeout; less if the scan's deadline is nearer). A fault with no handler, or a
call we do not model, ends the run; whatever the stub wrote by then is scanned.

The entry point of the rebuilt PE: pages of the image start without execute permission; the
first fetch from a page grants it, and every modelled call takes it back, so each jump into
another page is seen. The last jump into code outside the stub (another section, or a page
written since it was loaded) is the program's entry point (OEP). Nothing proves that a stub
finished, so the caller keeps the packer's `Heuristics.Unsupported.Packer.<Name>` finding:
emulation only adds what it finds. A run that changed nothing in the image returns nothing.
"""

from __future__ import annotations

import gc
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from unicorn import (
    UC_ARCH_X86,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_CODE,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_PROT,
    UC_MODE_32,
    UC_PROT_ALL,
    UC_PROT_READ,
    UC_PROT_WRITE,
)
from unicorn.unicorn import Uc, UcError
from unicorn.x86_const import (
    UC_X86_REG_EAX,
    UC_X86_REG_EBP,
    UC_X86_REG_EBX,
    UC_X86_REG_ECX,
    UC_X86_REG_EDI,
    UC_X86_REG_EDX,
    UC_X86_REG_EFLAGS,
    UC_X86_REG_EIP,
    UC_X86_REG_ESI,
    UC_X86_REG_ESP,
    UC_X86_REG_FS,
    UC_X86_REG_GDTR,
    UC_X86_REG_SS,
)

from zerohour.scan import pe
from zerohour.scan.limits import ScanContext
from zerohour.scan.unpack import image

__all__ = ["PACKERS", "STUBS", "Budget", "Unpacked", "emulate", "run_within"]

PAGE = image.PAGE
MAX_ALLOC = 64 << 20
#: Wall-clock bound of one run (unicorn runs 100-200 M instructions a second here, enough to
#: unpack tens of MB; an instruction budget would halve that); how often a run may resume
#: after a fetch from a new page or an exception.
MAX_SECONDS = 2.0
MAX_RESUMES = 4096
#: Imports written into the import address tables before the run (all descriptors).
MAX_IMPORTS = 16384

# The process around the image (the image must not overlap any of it).
_STACK, _STACK_SIZE = 0x00100000, 0x00100000
_HEAP = 0x30000000
_MODULES = 0x70000000  # fake DLLs, 1 MiB apart
_MODULE_SPAN = 0x00100000
_STUBS = 0x6F000000  # functions asked for by name (GetProcAddress)
_STUBS_SIZE = 0x00100000
_SEH_RETURN = _STUBS + _STUBS_SIZE - 16  # where an exception handler returns to
MAX_EXCEPTIONS = 4096
_GDT = 0x7FFC0000
_TEB = 0x7FFDE000
_PEB = 0x7FFDF000
_RESERVED = (
    (_STACK, _STACK + _STACK_SIZE),
    (_STUBS, _STUBS + _STUBS_SIZE),
    (_HEAP, _HEAP + MAX_ALLOC),
    (_MODULES, _MODULES + 16 * _MODULE_SPAN),
    (_GDT, 0x80000000),
)


@dataclass(frozen=True, slots=True)
class Budget:
    """What one kind of run may spend in a scan (`ScanContext.spent`): runs, seconds, and the
    bytes of the images scanned. Past any, a file of the seven packers is still reported
    (`Heuristics.Unsupported.Packer.*`). Images are not charged to the scan's size budget,
    which decides whether a container's later members are read (round 23)."""

    kind: str
    runs: int
    seconds: float
    image_bytes: int


#: Less time than this left is no run (`emulate`).
_MIN_SECONDS = 0.05
#: Files of the seven packers, and files no known packer made that only look packed
#: (`unpack._looks_packed`): budgets of their own, so that clean programs cannot use up
#: those of the seven (round 24).
PACKERS = Budget("packer", 16, 6.0, 64 << 20)
STUBS = Budget("stub", 16, 2.0, 32 << 20)


def run_within(budget: Budget, data: bytes, info: pe.PEInfo,
               ctx: ScanContext) -> tuple[Unpacked | None, bool]:
    """`emulate`, if `budget` has a run and seconds left, for what is left of its seconds;
    the image if it fits in what is left of its bytes (they are spent then). With it, whether
    the budget refused: no run, or an image it has no room for (the caller reports that; an
    unknown stub's file passed in silence, round 30)."""
    spent = ctx.spent
    runs, seconds, image_bytes = (f"{budget.kind}.{what}" for what in
                                  ("runs", "seconds", "bytes"))
    if (spent.get(runs, 0) >= budget.runs
            or budget.seconds - spent.get(seconds, 0.0) < _MIN_SECONDS):
        return None, True
    spent[runs] = spent.get(runs, 0) + 1
    started = time.monotonic()
    try:
        unpacked = emulate(data, info, ctx, budget.seconds - spent.get(seconds, 0.0))
    finally:
        spent[seconds] = spent.get(seconds, 0.0) + time.monotonic() - started
    if unpacked is None:
        return None, False
    if spent.get(image_bytes, 0) + len(unpacked.pe) > budget.image_bytes:
        return None, True
    spent[image_bytes] = spent.get(image_bytes, 0) + len(unpacked.pe)
    return unpacked, False


@dataclass(frozen=True, slots=True)
class Unpacked:
    """The unpacked program as a PE file whose sections lie where they lie in memory."""

    pe: bytes
    oep_rva: int
    #: the stub ran code it had written into the image (it unpacked code, not only data)
    ran_written: bool


# kernel32's exports (a stub walks them to find what it needs), then ntdll's.
_KERNEL32 = (
    "CheckRemoteDebuggerPresent", "CloseHandle", "CompareStringA", "CopyFileA", "CreateDirectoryA",
    "CreateEventA", "CreateEventW", "CreateFileA", "CreateFileMappingA", "CreateFileMappingW",
    "CreateFileW", "CreateMutexA", "CreateMutexW", "CreateProcessA", "CreateProcessW",
    "CreateThread", "CreateToolhelp32Snapshot", "DeleteCriticalSection", "DeleteFileA",
    "DeviceIoControl", "DuplicateHandle", "EnterCriticalSection", "ExitProcess", "ExitThread",
    "FileTimeToSystemTime", "FindClose", "FindFirstFileA", "FindNextFileA", "FindResourceA",
    "FlushInstructionCache", "FreeEnvironmentStringsA", "FreeEnvironmentStringsW", "FreeLibrary",
    "FreeResource", "GetACP", "GetCPInfo", "GetCommandLineA", "GetCommandLineW",
    "GetComputerNameA", "GetCurrentDirectoryA", "GetCurrentProcess", "GetCurrentProcessId",
    "GetCurrentThread", "GetCurrentThreadId", "GetDriveTypeA", "GetEnvironmentStrings",
    "GetEnvironmentStringsW", "GetEnvironmentVariableA", "GetEnvironmentVariableW",
    "GetExitCodeProcess", "GetExitCodeThread", "GetFileAttributesA", "GetFileSize",
    "GetFileSizeEx", "GetFileTime", "GetFileType", "GetLastError", "GetLocalTime",
    "GetLogicalDrives", "GetModuleFileNameA", "GetModuleFileNameW", "GetModuleHandleA",
    "GetModuleHandleExA", "GetModuleHandleExW", "GetModuleHandleW", "GetOEMCP", "GetProcAddress",
    "GetProcessHeap", "GetProcessVersion", "GetStartupInfoA", "GetStartupInfoW", "GetStdHandle",
    "GetStringTypeA", "GetSystemDirectoryA", "GetSystemInfo", "GetSystemTime",
    "GetSystemTimeAsFileTime", "GetTempFileNameA", "GetTempPathA", "GetThreadContext",
    "GetTickCount", "GetTimeZoneInformation", "GetVersion", "GetVersionExA", "GetVersionExW",
    "GetWindowsDirectoryA", "GlobalAlloc", "GlobalFree", "GlobalLock", "GlobalUnlock", "HeapAlloc",
    "HeapCreate", "HeapDestroy", "HeapFree", "HeapReAlloc", "InitializeCriticalSection",
    "InterlockedDecrement", "InterlockedExchange", "InterlockedIncrement", "IsBadCodePtr",
    "IsBadReadPtr", "IsBadWritePtr", "IsDebuggerPresent", "LCMapStringA", "LeaveCriticalSection",
    "LoadLibraryA", "LoadLibraryExA", "LoadLibraryExW", "LoadLibraryW", "LoadResource",
    "LocalAlloc", "LocalFree", "LockResource", "MapViewOfFile", "Module32First", "Module32Next",
    "MoveFileA", "MultiByteToWideChar", "OpenMutexA", "OpenProcess", "OutputDebugStringA",
    "Process32First", "Process32Next", "QueryPerformanceCounter", "QueryPerformanceFrequency",
    "RaiseException", "ReadFile", "ReadProcessMemory", "ReleaseMutex", "ResetEvent",
    "ResumeThread", "RtlUnwind", "SetCurrentDirectoryA", "SetEndOfFile", "SetEvent",
    "SetFileAttributesA", "SetFilePointer", "SetFileTime", "SetHandleCount", "SetLastError",
    "SetThreadContext", "SetUnhandledExceptionFilter", "SizeofResource", "Sleep", "SleepEx",
    "SuspendThread", "SystemTimeToFileTime", "TerminateProcess", "TerminateThread", "TlsAlloc",
    "TlsFree", "TlsGetValue", "TlsSetValue", "UnhandledExceptionFilter", "UnmapViewOfFile",
    "VirtualAlloc", "VirtualAllocEx", "VirtualFree", "VirtualProtect", "VirtualProtectEx",
    "VirtualQuery", "VirtualQueryEx", "WaitForMultipleObjects", "WaitForSingleObject",
    "WideCharToMultiByte", "WinExec", "WriteConsoleA", "WriteFile", "WriteProcessMemory",
    "lstrcatA", "lstrcmpA", "lstrcmpiA", "lstrcpyA", "lstrcpyW", "lstrlenA", "lstrlenW",
)
#: What every other DLL exports (user32, advapi32, shell32, gdi32, ws2_32, msvcrt, comctl32,
#: ole32, wininet, urlmon: all as one list): stubs walk a DLL's exports to resolve the
#: program's imports, and a name exported by the wrong DLL costs nothing here.
_OTHER = (
    "AdjustTokenPrivileges", "BitBlt", "CharLowerA", "CharUpperA", "CoCreateInstance",
    "CoInitialize", "CoInitializeEx", "CoUninitialize", "CreateCompatibleDC", "CreateWindowExA",
    "CreateWindowExW", "DefWindowProcA", "DefWindowProcW", "DeleteObject", "DialogBoxParamA",
    "DispatchMessageA", "EndDialog", "FindWindowA", "GetAsyncKeyState", "GetDC",
    "GetDesktopWindow", "GetDlgItem", "GetForegroundWindow", "GetKeyState", "GetMessageA",
    "GetStockObject", "GetSystemMetrics", "GetUserNameA", "GetWindowTextA", "InitCommonControls",
    "InitCommonControlsEx", "InternetCloseHandle", "InternetOpenA", "InternetOpenUrlA",
    "InternetReadFile", "KillTimer", "LoadCursorA", "LoadIconA", "LookupPrivilegeValueA",
    "MessageBeep", "MessageBoxA", "MessageBoxExA", "MessageBoxW", "OpenProcessToken",
    "PeekMessageA", "PostMessageA", "PostQuitMessage", "RegCloseKey", "RegCreateKeyExA",
    "RegOpenKeyExA", "RegOpenKeyExW", "RegQueryValueExA", "RegQueryValueExW", "RegSetValueExA",
    "RegisterClassA", "RegisterClassExA", "ReleaseDC", "SHGetFolderPathA",
    "SHGetSpecialFolderPathA", "SelectObject", "SendMessageA", "SetTimer", "SetWindowTextA",
    "ShellExecuteA", "ShellExecuteExA", "ShellExecuteW", "ShowWindow", "TextOutA",
    "TranslateMessage", "URLDownloadToFileA", "UpdateWindow", "WSACleanup", "WSAStartup",
    "__getmainargs", "__p___argc", "__p___argv", "__set_app_type", "_controlfp", "_exit",
    "_initterm", "_onexit", "atexit", "calloc", "closesocket", "connect", "exit", "free",
    "gethostbyname", "htons", "inet_addr", "malloc", "memcpy", "memmove", "memset", "printf",
    "realloc", "recv", "send", "socket", "sprintf", "strcmp", "strcpy", "strlen", "wsprintfA",
    "wsprintfW",
)
_NTDLL = ("NtContinue", "RtlZeroMemory", "ZwProtectVirtualMemory")


class _Stop(Exception):
    """The run ends (a call we do not model, or the process exits)."""


@dataclass
class _Process:
    uc: Uc
    base: int
    size: int
    loaded: bytes
    #: (module base, name) of the fake DLLs; stub address -> function name.
    modules: dict[str, int] = field(default_factory=dict)
    functions: dict[int, str] = field(default_factory=dict)
    exports: dict[tuple[int, str], int] = field(default_factory=dict)
    next_stub: int = _STUBS
    exceptions: int = 0
    #: CONTEXT records of the exceptions whose handlers are running (innermost last)
    contexts: list[int] = field(default_factory=list)
    heap: int = _HEAP
    allocated: int = 0
    granted: set[int] = field(default_factory=set)
    info: pe.PEInfo | None = None
    file: bytes = b""
    #: open handles of the program's own file -> read position
    handles: dict[int, int] = field(default_factory=dict)
    stub: int = -1
    oep: int | None = None
    ran_written: bool = False  # the stub ran code in a page of the image that it had written
    fault: int | None = None
    stopped: str = ""


def emulate(data: bytes, info: pe.PEInfo, ctx: ScanContext,
            seconds: float = MAX_SECONDS) -> Unpacked | None:
    """Run the stub of the packed 32-bit PE `data` for at most `seconds` (and MAX_SECONDS);
    the program it unpacked, or None. Raises nothing but the scan's own limits
    (ScanLimitExceeded)."""
    if info.machine != 0x14C or info.is_pe32_plus:
        return None
    placed = image.layout(data, info)
    if placed is None:
        return None
    base, size, mapped = placed
    if any(base < hi and lo < base + size for lo, hi in _RESERVED):
        return None
    ctx.check_time()
    started = time.monotonic()
    budget = min(MAX_SECONDS, seconds)
    if budget < _MIN_SECONDS:
        return None
    until = min(started + budget, ctx.deadline)
    uc = Uc(UC_ARCH_X86, UC_MODE_32)
    proc = _Process(uc, base, size, mapped, info=info, file=data)
    hooks: list[int] = []
    try:
        uc.mem_map(base, size, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_write(base, mapped)
        _process_blocks(proc)
        hooks += (uc.hook_add(UC_HOOK_MEM_FETCH_PROT, _fetch_hook(proc)),
                  uc.hook_add(UC_HOOK_INTR, _interrupt_hook(proc)),
                  uc.hook_add(UC_HOOK_CODE, _call_hook(proc), begin=_MODULES,
                              end=_MODULES + 16 * _MODULE_SPAN),
                  uc.hook_add(UC_HOOK_CODE, _call_hook(proc), begin=_STUBS,
                              end=_STUBS + _STUBS_SIZE - 1))
        _fill_imports(proc, ctx)
        proc.loaded = bytes(uc.mem_read(base, size))
        entry = base + info.entry_point_rva
        proc.stub = _section_of(info, info.entry_point_rva)
        # Registers at the entry point as Windows sets them (stubs use eax and ebx).
        for reg, value in ((UC_X86_REG_EAX, entry), (UC_X86_REG_EBX, _PEB), (UC_X86_REG_ECX, 0),
                           (UC_X86_REG_EDX, entry), (UC_X86_REG_ESI, 0), (UC_X86_REG_EDI, 0),
                           (UC_X86_REG_EBP, uc.reg_read(UC_X86_REG_ESP) + 0x10)):
            uc.reg_write(reg, value)
        _run(proc, entry, until)
        memory = bytes(uc.mem_read(base, size))
        changed = memory != proc.loaded
        oep = proc.oep if proc.oep is not None else entry
        ran_written = proc.ran_written
    except (_Stop, UcError):
        return None  # (the process could not be set up)
    finally:
        for hook in hooks:
            uc.hook_del(hook)
        _release(uc)
        proc.loaded = proc.file = b""
    ctx.check_time()
    if not changed:
        return None
    return Unpacked(image.rebuild(memory, oep - base), oep - base, ran_written)


def _release(uc: Uc) -> None:
    """Free the emulator's memory (the guest's, its translations) now. The binding wraps each
    hook in a ctypes callback that holds the Uc in a reference cycle, so it would otherwise
    live until a garbage collection: 20 mails of self-modifying stubs grew a scan worker to
    2.5 GB. The hooks' closures keep the `_Process` too, emptied by the caller."""
    finalizer = getattr(uc, "_Uc__finalizer", None)  # (the binding's own uc_close, run once)
    if callable(finalizer):
        finalizer()
    else:
        gc.collect()


def _outside_stub(proc: _Process, address: int) -> bool:
    """Whether code at `address` is the program's: in a page of the image written since it was
    loaded, or in another section than the entry point's."""
    if not proc.base <= address < proc.base + proc.size or proc.info is None:
        return False
    page = address & ~(PAGE - 1)
    offset = page - proc.base
    if bytes(proc.uc.mem_read(page, PAGE)) != proc.loaded[offset : offset + PAGE]:
        return True
    return _section_of(proc.info, address - proc.base) not in (proc.stub, -1)


def _section_of(info: pe.PEInfo, rva: int) -> int:
    """The index of the section that holds `rva` (-1: the headers or no section)."""
    for i, s in enumerate(info.sections):
        if s.virtual_address <= rva < s.virtual_address + max(s.virtual_size, s.raw_size, 1):
            return i
    return -1


def _run(proc: _Process, eip: int, until: float) -> None:
    """Emulate from `eip` until a stop, or the monotonic clock reaches `until`. unicorn 2.1
    crashes when a fetch hook changes a page's protection, so a fetch from a page of the image
    without execute permission ends the run; the page is checked and granted here, and the run
    goes on where it stopped."""
    clock = time.monotonic
    for _ in range(MAX_RESUMES):
        left = until - clock()
        if left <= 0:
            proc.stopped = "time"
            return
        try:
            proc.uc.emu_start(eip, 0, timeout=int(left * 1e6))
            return
        except UcError as exc:
            page, proc.fault = proc.fault, None
            code = _FAULTS.get(exc.errno)
            if code is not None and page is None:
                handler = _raise(proc, code, proc.uc.reg_read(UC_X86_REG_EIP))
                if handler is None:
                    proc.stopped = f"fault: {exc}"
                    return
                eip = handler
                continue
            if exc.errno != UC_ERR_FETCH_PROT or page is None:
                proc.stopped = f"fault: {exc}"
                return
        eip = proc.uc.reg_read(UC_X86_REG_EIP)
        offset = page - proc.base
        if bytes(proc.uc.mem_read(page, PAGE)) != proc.loaded[offset : offset + PAGE]:
            proc.ran_written = True
        if _outside_stub(proc, eip):
            proc.oep = eip
        proc.uc.mem_protect(page, PAGE, UC_PROT_ALL)
        proc.granted.add(page)
    proc.stopped = "resumes"


#: unicorn's errors -> the exception Windows raises for them (an access violation, an
#: illegal instruction)
_FAULTS = {
    **dict.fromkeys((UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED,
                     UC_ERR_READ_PROT, UC_ERR_WRITE_PROT), 0xC0000005),
    UC_ERR_INSN_INVALID: 0xC000001D,
}
#: CPU exceptions (interrupt vectors) -> the Windows exception code a handler sees
_CPU_EXCEPTIONS = {0: 0xC0000094, 1: 0x80000004, 3: 0x80000003, 6: 0xC000001D, 13: 0xC0000096}
#: CONTEXT (x86): where each register lies in it
_CONTEXT_REGS = (
    (0x9C, UC_X86_REG_EDI), (0xA0, UC_X86_REG_ESI), (0xA4, UC_X86_REG_EBX),
    (0xA8, UC_X86_REG_EDX), (0xAC, UC_X86_REG_ECX), (0xB0, UC_X86_REG_EAX),
    (0xB4, UC_X86_REG_EBP), (0xB8, UC_X86_REG_EIP), (0xC0, UC_X86_REG_EFLAGS),
    (0xC4, UC_X86_REG_ESP),
)


def _raise(proc: _Process, code: int, eip: int) -> int | None:
    """Dispatch an exception at `eip` to the first handler of the thread's SEH chain, as
    Windows does: an EXCEPTION_RECORD and a CONTEXT below the stack, then the handler called
    with them. Stubs use this to jump (to the OEP, or to their next stage) and to look for
    debuggers (in the debug registers of the CONTEXT). The handler's address, or None."""
    uc = proc.uc
    proc.exceptions += 1
    if proc.exceptions > MAX_EXCEPTIONS:
        return None
    try:
        frame = struct.unpack("<I", uc.mem_read(_TEB, 4))[0]
        if frame == 0xFFFFFFFF:
            return None
        handler = struct.unpack("<I", uc.mem_read(frame + 4, 4))[0]
        esp = uc.reg_read(UC_X86_REG_ESP)
        context = (esp - 0x400) & ~0xF
        record = context - 0x60
        ctx = bytearray(0x2CC)
        struct.pack_into("<I", ctx, 0, 0x1003F)  # CONTEXT_ALL
        for offset, reg in _CONTEXT_REGS:
            struct.pack_into("<I", ctx, offset, uc.reg_read(reg) & 0xFFFFFFFF)
        struct.pack_into("<I", ctx, 0xB8, eip)
        uc.mem_write(context, bytes(ctx))
        uc.mem_write(record, struct.pack("<IIIII", code, 0, 0, eip, 0) + bytes(0x3C))
        args = struct.pack("<IIIII", _SEH_RETURN, record, frame, context, 0)
        uc.mem_write(record - 20, args)
        uc.reg_write(UC_X86_REG_ESP, record - 20)
    except UcError:
        return None
    proc.contexts.append(context)
    uc.reg_write(UC_X86_REG_EIP, handler)
    return int(handler)


def _resume(proc: _Process) -> None:
    """A handler returned: ExceptionContinueExecution (0) goes on with its CONTEXT, which it
    may have changed (the usual way to move to the next stage); anything else ends the run."""
    uc = proc.uc
    if not proc.contexts or uc.reg_read(UC_X86_REG_EAX) != 0:
        raise _Stop("unhandled exception")
    context = proc.contexts.pop()
    saved = bytes(uc.mem_read(context, 0x2CC))
    for offset, reg in _CONTEXT_REGS:
        uc.reg_write(reg, struct.unpack_from("<I", saved, offset)[0])


def _interrupt_hook(proc: _Process) -> Callable[..., None]:
    def hook(uc: Uc, vector: int, _data: object) -> None:
        code = _CPU_EXCEPTIONS.get(vector)
        eip = uc.reg_read(UC_X86_REG_EIP)
        if vector == 3:
            eip -= 1  # Windows reports a breakpoint at the int3
        if code is None or _raise(proc, code, eip) is None:
            proc.stopped = f"interrupt {vector}"
            uc.emu_stop()

    return hook


# --- the process: stack, TEB, PEB and its loader list, kernel32 and ntdll --------------------


def _process_blocks(proc: _Process) -> None:
    uc = proc.uc
    uc.mem_map(_STACK, _STACK_SIZE)
    uc.mem_map(_STUBS, _STUBS_SIZE)
    uc.mem_write(_STUBS, b"\xc3" * _STUBS_SIZE)
    uc.mem_map(_GDT, PAGE)
    uc.mem_map(_TEB, 2 * PAGE)
    # fs: the TEB (a data segment in a GDT of our own); ss: flat.
    uc.mem_write(_GDT + 8 * 3, _descriptor(_TEB, 0xFFF, 0x93, 0x4))
    uc.mem_write(_GDT + 8 * 4, _descriptor(0, 0xFFFFF, 0x93, 0xC))
    uc.mem_protect(_GDT, PAGE, UC_PROT_READ)  # (marked accessed: loading one writes nothing)
    uc.reg_write(UC_X86_REG_GDTR, (0, _GDT, 8 * 16 - 1, 0))
    uc.reg_write(UC_X86_REG_FS, 3 << 3)
    uc.reg_write(UC_X86_REG_SS, 4 << 3)
    top = _STACK + _STACK_SIZE
    uc.mem_write(_TEB, struct.pack("<III", 0xFFFFFFFF, top, _STACK))
    uc.mem_write(_TEB + 0x18, struct.pack("<I", _TEB))
    uc.mem_write(_TEB + 0x20, struct.pack("<II", 0x1000, 0x1004))  # process, thread ids
    uc.mem_write(_TEB + 0x30, struct.pack("<I", _PEB))
    ntdll = _module(proc, "ntdll.dll", _NTDLL)
    kernel32 = _module(proc, "kernel32.dll", _KERNEL32)
    # PEB: ImageBaseAddress, Ldr; the loader lists: exe, ntdll, kernel32 (init: ntdll, kernel32).
    ldr = _PEB + 0x200
    uc.mem_write(_PEB + 0x08, struct.pack("<II", proc.base, ldr))
    entries = []
    at = _PEB + 0x300
    for name, base, size in (("program.exe", proc.base, proc.size),
                             ("ntdll.dll", ntdll, _MODULE_SPAN),
                             ("kernel32.dll", kernel32, _MODULE_SPAN)):
        text = name.encode("utf-16-le") + b"\x00\x00"
        uc.mem_write(at + 0x80, text)
        uni = struct.pack("<HHI", len(text) - 2, len(text), at + 0x80)
        uc.mem_write(at + 0x18, struct.pack("<III", base, base, size) + uni + uni)
        entries.append(at)
        at += 0x100
    for offset, members in ((0x00, entries), (0x08, entries), (0x10, entries[1:])):
        links = [ldr + 0x0C + offset] + [e + offset for e in members]
        for i, node in enumerate(links):
            uc.mem_write(node, struct.pack("<II", links[(i + 1) % len(links)], links[i - 1]))
    uc.mem_write(ldr, struct.pack("<II", 0x30, 1))
    # At the entry point the stack holds a return address into kernel32 (ExitThread): stubs
    # find kernel32 by walking down from it to its MZ header.
    esp = top - 0x100
    uc.mem_write(esp, struct.pack("<I", proc.exports[(kernel32, "ExitThread")]))
    uc.reg_write(UC_X86_REG_ESP, esp)


def _descriptor(base: int, limit: int, access: int, flags: int) -> bytes:
    value = (limit & 0xFFFF) | (base & 0xFFFFFF) << 16 | (access & 0xFF) << 40
    value |= ((limit >> 16) & 0xF) << 48 | (flags & 0xF) << 52 | ((base >> 24) & 0xFF) << 56
    return struct.pack("<Q", value)


def _module(proc: _Process, name: str, exports: tuple[str, ...]) -> int:
    """Map a DLL that exports `exports` (each a `ret` we intercept); its base address."""
    base = _MODULES + len(proc.modules) * _MODULE_SPAN
    proc.modules[name.lower()] = base
    names = sorted(exports)
    code = 0x2000
    head = bytearray(code)
    head[:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x40)
    struct.pack_into("<4sHHIIIHH", head, 0x40, b"PE\x00\x00", 0x14C, 0, 0, 0, 0, 0xE0, 0x2102)
    opt = 0x58
    struct.pack_into("<H", head, opt, 0x10B)
    struct.pack_into("<I", head, opt + 28, base)
    struct.pack_into("<II", head, opt + 32, PAGE, PAGE)
    struct.pack_into("<II", head, opt + 56, _MODULE_SPAN, PAGE)
    struct.pack_into("<I", head, opt + 92, 16)
    edir = 0x200
    funcs = edir + 40
    name_ptrs = funcs + 4 * len(names)
    ords = name_ptrs + 4 * len(names)
    strings = ords + 2 * len(names)
    blob = bytearray()
    dll_name = strings
    blob += name.encode() + b"\x00"
    for i, fn in enumerate(names):
        struct.pack_into("<I", head, funcs + 4 * i, code + 16 * i)
        struct.pack_into("<I", head, name_ptrs + 4 * i, strings + len(blob))
        struct.pack_into("<H", head, ords + 2 * i, i)
        blob += fn.encode() + b"\x00"
        proc.exports[(base, fn)] = base + code + 16 * i
        proc.functions[base + code + 16 * i] = fn
    if strings + len(blob) > code or 16 * len(names) > 0x2000:
        raise ValueError(f"{name}: too many exports for the module's layout")
    head[strings : strings + len(blob)] = blob
    struct.pack_into("<IIHHIIIIIII", head, edir, 0, 0, 0, 0, dll_name, 1, len(names),
                     len(names), funcs, name_ptrs, ords)
    struct.pack_into("<II", head, opt + 96, edir, strings + len(blob) - edir)
    proc.uc.mem_map(base, code + 0x2000)
    proc.uc.mem_write(base, bytes(head))
    proc.uc.mem_write(base + code, b"\xc3" * 0x2000)
    return base


def _function(proc: _Process, module: int, name: str) -> int:
    """The address GetProcAddress gives for `name` (a stub of our own if not exported)."""
    known = proc.exports.get((module, name))
    if known is not None:
        return known
    if proc.next_stub >= _STUBS + _STUBS_SIZE:
        raise _Stop("too many functions")
    addr = proc.next_stub
    proc.next_stub += 16
    proc.exports[(module, name)] = addr
    proc.functions[addr] = name
    return addr


def _load(proc: _Process, name: str) -> int:
    key = name.lower().rsplit("\\", 1)[-1]
    if not key.endswith(".dll"):
        key += ".dll"
    if key in proc.modules:
        return proc.modules[key]
    if len(proc.modules) >= 16:
        raise _Stop("too many modules")
    return _module(proc, key, _OTHER)


def _fill_imports(proc: _Process, ctx: ScanContext) -> None:
    """Write the address of each imported function into the import address table (at most
    MAX_IMPORTS, from at most 16 DLLs: the rest stay as the file has them)."""
    try:
        _write_imports(proc, ctx)
    except _Stop:
        return


def _write_imports(proc: _Process, ctx: ScanContext) -> None:
    loaded = proc.loaded
    lfanew = struct.unpack_from("<I", loaded, 0x3C)[0]
    at = lfanew + 24 + 104  # data directory 1: imports
    if at + 8 > len(loaded):
        return
    rva = struct.unpack_from("<I", loaded, at)[0]
    written = 0
    for _ in range(256):
        if not 0 < rva <= len(loaded) - 20:
            return
        lookup, _ts, _fwd, name_rva, iat = struct.unpack_from("<IIIII", loaded, rva)
        if not (name_rva or iat):
            return
        module = _load(proc, _cstr(loaded, name_rva) or "unknown.dll")
        walk = lookup or iat
        ctx.check_time()
        for i in range(4096):
            written += 1
            if written > MAX_IMPORTS:
                return
            entry = walk + 4 * i
            if not 0 < entry <= len(loaded) - 4 or not 0 < iat + 4 * i <= len(loaded) - 4:
                break
            thunk = struct.unpack_from("<I", loaded, entry)[0]
            if not thunk:
                break
            fn = f"#{thunk & 0xFFFF}" if thunk & 0x80000000 else _cstr(loaded, thunk + 2)
            address = _function(proc, module, fn)
            proc.uc.mem_write(proc.base + iat + 4 * i, struct.pack("<I", address))
        rva += 20


def _cstr(image: bytes, rva: int, limit: int = 256) -> str:
    if not 0 <= rva < len(image):
        return ""
    return image[rva : rva + limit].split(b"\x00", 1)[0].decode("latin-1")


# --- hooks ----------------------------------------------------------------------------------


def _fetch_hook(proc: _Process) -> Callable[..., bool]:
    def hook(_uc: Uc, _access: int, address: int, _size: int, _value: int, _data: object) -> bool:
        page = address & ~(PAGE - 1)
        if proc.base <= page < proc.base + proc.size:
            proc.fault = page
        return False

    return hook


def _call_hook(proc: _Process) -> Callable[..., None]:
    def hook(uc: Uc, address: int, _size: int, _data: object) -> None:
        name = proc.functions.get(address)
        esp = uc.reg_read(UC_X86_REG_ESP)
        if address == _SEH_RETURN:
            try:
                _resume(proc)
            except (_Stop, UcError) as stop:
                proc.stopped = str(stop)
                uc.emu_stop()
            return
        try:
            if name is None:
                raise _Stop(f"call to {address:#x}")
            ret, *args = struct.unpack("<8I", uc.mem_read(esp, 32))
            model = _MODELS.get(name)
            if model is None:
                raise _Stop(name)  # the program's first call, or the stub's we do not model
            nargs, fn = model
            try:
                result = fn(proc, args)
            except UcError:
                result = 0  # a pointer to nowhere: the call fails, as it does on Windows
        except (_Stop, UcError) as stop:
            proc.stopped = str(stop)
            uc.emu_stop()
            return
        # The stub returns to code it may have written since: take back execute permission.
        for page in proc.granted:
            uc.mem_protect(page, PAGE, UC_PROT_READ | UC_PROT_WRITE)
        proc.granted.clear()
        uc.reg_write(UC_X86_REG_EAX, result & 0xFFFFFFFF)
        uc.reg_write(UC_X86_REG_ESP, esp + 4 + 4 * nargs)
        uc.reg_write(UC_X86_REG_EIP, ret)

    return hook


# --- kernel32 as far as stubs use it -------------------------------------------------------


def _read_str(proc: _Process, addr: int, wide: bool = False) -> str:
    out = b""
    end = b"\x00\x00" if wide else b"\x00"
    for at in range(addr, addr + 512, 16):
        try:
            out += bytes(proc.uc.mem_read(at, 16))
        except UcError:
            break
        if end in out:
            break
    if wide:
        return out.decode("utf-16-le", "replace").split("\x00", 1)[0]
    return out.split(b"\x00", 1)[0].decode("latin-1")


def _module_handle(proc: _Process, name_addr: int, wide: bool) -> int:
    if name_addr == 0:
        return proc.base
    return _load(proc, _read_str(proc, name_addr, wide))


def _get_proc_address(proc: _Process, args: list[int]) -> int:
    module, name = args[0], args[1]
    fn = f"#{name}" if name <= 0xFFFF else _read_str(proc, name)
    return _function(proc, module, fn)


def _virtual_alloc(proc: _Process, args: list[int]) -> int:
    want, size = args[0], args[1]
    if want and proc.base <= want < proc.base + proc.size:
        return want
    size = -(-max(size, 1) // PAGE) * PAGE
    if proc.allocated + size + PAGE > MAX_ALLOC:
        raise _Stop("allocations over the bound")
    addr = proc.heap
    proc.uc.mem_map(addr, size)
    proc.heap += size + PAGE  # a guard page between blocks
    proc.allocated += size + PAGE
    return addr


def _virtual_protect(proc: _Process, args: list[int]) -> int:
    if args[3]:
        proc.uc.mem_write(args[3], struct.pack("<I", 0x40))
    return 1


def _exit(_proc: _Process, _args: list[int]) -> int:
    raise _Stop("exit")


def _module_file_name(proc: _Process, args: list[int], wide: bool) -> int:
    """GetModuleFileNameA/W: the program's path, as far as the buffer holds it."""
    own = args[0] in (0, proc.base)
    name = "C:\\Program Files\\program.exe" if own else "C:\\Windows\\system32\\module.dll"
    size = args[2]
    if not size:
        return 0
    text = name[: size - 1]
    proc.uc.mem_write(args[1], (text + "\x00").encode("utf-16-le" if wide else "latin-1"))
    return len(text)


# The program's own file, which stubs read to check it or to find data appended to it.
_OWN_FILE = 0x100
_INVALID = 0xFFFFFFFF


def _create_file(proc: _Process, args: list[int], wide: bool) -> int:
    path = _read_str(proc, args[0], wide).lower()
    if not path.endswith("program.exe") or len(proc.handles) >= 64:
        return _INVALID
    handle = _OWN_FILE + 4 * len(proc.handles)
    proc.handles[handle] = 0
    return handle


def _read_file(proc: _Process, args: list[int]) -> int:
    handle, buf, want, done = args[0], args[1], args[2], args[3]
    at = proc.handles.get(handle)
    if at is None:
        return 0
    chunk = proc.file[at : at + min(want, MAX_ALLOC)]
    proc.uc.mem_write(buf, chunk)
    proc.handles[handle] = at + len(chunk)
    if done:
        proc.uc.mem_write(done, struct.pack("<I", len(chunk)))
    return 1


def _set_file_pointer(proc: _Process, args: list[int]) -> int:
    handle, distance, method = args[0], struct.unpack("<i", struct.pack("<I", args[1]))[0], args[3]
    at = proc.handles.get(handle)
    if at is None or method > 2:
        return _INVALID
    origin = (0, at, len(proc.file))[method]
    proc.handles[handle] = max(0, origin + distance)
    return proc.handles[handle]


def _file_size(proc: _Process, args: list[int]) -> int:
    if args[0] not in proc.handles:
        return _INVALID
    if args[1]:
        proc.uc.mem_write(args[1], bytes(4))
    return len(proc.file)


def _map_view(proc: _Process, args: list[int]) -> int:
    """MapViewOfFile of a mapping of the program's file: the file's bytes at a new address."""
    if args[0] not in proc.handles:
        return 0
    addr = _virtual_alloc(proc, [0, len(proc.file)])
    proc.uc.mem_write(addr, proc.file)
    return addr


_Model = tuple[int, Callable[[_Process, list[int]], int]]
_MODELS: dict[str, _Model] = {
    "LoadLibraryA": (1, lambda p, a: _module_handle(p, a[0], False) if a[0] else 0),
    "LoadLibraryW": (1, lambda p, a: _module_handle(p, a[0], True) if a[0] else 0),
    "LoadLibraryExA": (3, lambda p, a: _module_handle(p, a[0], False) if a[0] else 0),
    "LoadLibraryExW": (3, lambda p, a: _module_handle(p, a[0], True) if a[0] else 0),
    "GetModuleHandleA": (1, lambda p, a: _module_handle(p, a[0], False)),
    "GetModuleHandleW": (1, lambda p, a: _module_handle(p, a[0], True)),
    "GetProcAddress": (2, _get_proc_address),
    "VirtualAlloc": (4, _virtual_alloc),
    "VirtualFree": (3, lambda p, a: 1),
    "VirtualProtect": (4, _virtual_protect),
    "FlushInstructionCache": (3, lambda p, a: 1),
    "FreeLibrary": (1, lambda p, a: 1),
    "GetCurrentProcess": (0, lambda p, a: 0xFFFFFFFF),
    "GetTickCount": (0, lambda p, a: 0x0123_4567),
    "GetVersion": (0, lambda p, a: 0x0A280105),  # Windows XP (5.1, build 2600)
    "IsDebuggerPresent": (0, lambda p, a: 0),
    "GetLastError": (0, lambda p, a: 0),
    "SetLastError": (1, lambda p, a: 0),
    "GetModuleFileNameA": (3, lambda p, a: _module_file_name(p, a, False)),
    "GetModuleFileNameW": (3, lambda p, a: _module_file_name(p, a, True)),
    "GlobalAlloc": (2, lambda p, a: _virtual_alloc(p, [0, a[1]])),
    "LocalAlloc": (2, lambda p, a: _virtual_alloc(p, [0, a[1]])),
    "HeapAlloc": (3, lambda p, a: _virtual_alloc(p, [0, a[2]])),
    "GetProcessHeap": (0, lambda p, a: 0x00150000),
    "GlobalFree": (1, lambda p, a: 0),
    "LocalFree": (1, lambda p, a: 0),
    "HeapFree": (3, lambda p, a: 1),
    "CreateFileA": (7, lambda p, a: _create_file(p, a, False)),
    "CreateFileW": (7, lambda p, a: _create_file(p, a, True)),
    "ReadFile": (5, _read_file),
    "SetFilePointer": (4, _set_file_pointer),
    "GetFileSize": (2, _file_size),
    "CloseHandle": (1, lambda p, a: 1),
    # A mapping of the file is the file's handle again; a view of it, the file's bytes.
    "CreateFileMappingA": (6, lambda p, a: a[0] if a[0] in p.handles else 0),
    "CreateFileMappingW": (6, lambda p, a: a[0] if a[0] in p.handles else 0),
    "MapViewOfFile": (5, _map_view),
    "UnmapViewOfFile": (1, lambda p, a: 1),
    "ExitProcess": (1, _exit),
    "ExitThread": (1, _exit),
}
