"""The database kinds beyond hashes, body and logical signatures: what loads, what is skipped.

Loaded: `.cdb` (container metadata), `.yar`/`.yara` (YARA), `.imp` (PE import hashes), `.ftm`
(file type magic). Known kinds we do not evaluate are counted as skipped, by record, under a
name saying what they are (`--db-info` shows them): bytecode (`.cbc`, one per file), phishing
(`.pdb .gdb .wdb`), certificate trust (`.crb`, and `.cat` per file), icons (`.idb`), the
container index (`.info`), engine configuration (`.cfg`), and PUA signatures (`.hdu .hsu .mdu
.msu .ndu .ldu`, which clamscan loads only with --detect-pua).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zerohour.errors import SignatureSyntaxError
from zerohour.scan.hashindex import HashIndex, HashIndexBuilder
from zerohour.scan.signatures.cdb import CdbSig, UnknownHere, parse_cdb_line
from zerohour.scan.signatures.ftm import FtmSig, SkippedFtm, parse_ftm_line
from zerohour.scan.signatures.hdb import iter_lines, parse_hash_line
from zerohour.scan.signatures.ign2 import IgnoreList
from zerohour.scan.signatures.yara_rules import YaraRules, check_source

LOADED_EXT = frozenset({".cdb", ".yar", ".yara", ".imp", ".ftm"})
#: Skipped kinds: extension -> what --db-info calls them.
SKIPPED_EXT = {
    ".cbc": "bytecode", ".pdb": "phishing", ".gdb": "phishing", ".wdb": "phishing",
    ".crb": "certificate trust", ".cat": "certificate trust", ".idb": "icons",
    ".info": "info", ".cfg": "cfg", ".hdu": "pua", ".hsu": "pua", ".mdu": "pua",
    ".msu": "pua", ".ndu": "pua", ".ldu": "pua",
}
#: Skipped kinds counted per file, not per line (binary or one record per file).
_PER_FILE = frozenset({".cbc", ".cat"})

Bad = Callable[[Path, int, str], None]


@dataclass(slots=True)
class Extras:
    """The compiled extra kinds a `Database` carries (empty by default)."""

    cdb: tuple[CdbSig, ...] = ()
    yara: YaraRules | None = None
    imports: HashIndex = field(default_factory=lambda: HashIndexBuilder().build())
    ftm: tuple[FtmSig, ...] = ()


def count_skipped(ext: str, data: bytes, skipped: Counter[str]) -> None:
    """Count the records of a kind we know but do not evaluate."""
    what = SKIPPED_EXT[ext]
    if ext in _PER_FILE:
        skipped[what] += 1
        return
    text = data.decode("utf-8", "surrogateescape")
    skipped[what] += sum(1 for _ in iter_lines(text))


def build(files: list[tuple[Path, str, str]], ignores: IgnoreList, bad: Bad,
          counts: Counter[str], skipped: Counter[str]) -> Extras:
    """Parse every file of the loaded extra kinds (`(path, ext, text)`) into `Extras`."""
    cdb: list[CdbSig] = []
    ftm: list[FtmSig] = []
    imports = HashIndexBuilder()
    yara_sources: list[str] = []
    yara_dropped: set[str] = set()
    for p, ext, text in files:
        if ext in (".yar", ".yara"):
            try:
                names = check_source(text)
            except SignatureSyntaxError as exc:
                bad(p, 0, str(exc))
                continue
            yara_sources.append(text)
            for rule in names:
                if ignores.drops(rule, rule):
                    yara_dropped.add(rule)
                    skipped["ignored"] += 1
            continue
        for no, line in iter_lines(text):
            try:
                if ext == ".cdb":
                    sig = parse_cdb_line(line)
                    if sig is None:
                        skipped["flevel"] += 1
                        continue
                    if ignores.drops(sig.name, sig.name):  # ClamAV hashes only the name here
                        skipped["ignored"] += 1
                        continue
                    cdb.append(sig)
                elif ext == ".imp":
                    parsed = parse_hash_line(line, wildcard_needs_flevel=False)
                    if parsed is None:
                        skipped["flevel"] += 1
                        continue
                    kind, dig, size, name = parsed
                    if ignores.drops(name, line):
                        skipped["ignored"] += 1
                        continue
                    imports.add(kind, dig, size, name)
                else:
                    magic = parse_ftm_line(line)
                    if magic is None:
                        skipped["flevel"] += 1
                        continue
                    ftm.append(magic)
                counts[ext[1:]] += 1
            except UnknownHere as exc:
                skipped[f"cdb container type {exc}"] += 1
            except SkippedFtm as exc:
                skipped[f"ftm {exc}"] += 1
            except SignatureSyntaxError as exc:
                bad(p, no, str(exc))
    yara_rules = None
    if yara_sources:
        yara_rules = YaraRules.compile(yara_sources, frozenset(yara_dropped))
        if yara_rules.count:
            counts["yara"] += yara_rules.count
    return Extras(tuple(cdb), yara_rules, imports.build(), tuple(ftm))
