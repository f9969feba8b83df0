"""`zerohour.notices` is shared by the provider and the gateway: it owns the verifier and its
interface (`notices.sink`) and imports nothing from `zerohour.gateway` (issue 9, section 5)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import zerohour.notices

NOTICES = Path(zerohour.notices.__file__).parent


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_no_notices_module_imports_the_gateway() -> None:
    offenders = {
        f"{p.name}: {name}"
        for p in sorted(NOTICES.glob("*.py"))
        for name in _imports(p)
        if name == "zerohour.gateway" or name.startswith("zerohour.gateway.")
    }
    assert not offenders


def test_importing_the_verifier_loads_no_gateway_module() -> None:
    code = (
        "import sys, zerohour.notices.verify, zerohour.notices.sink\n"
        "print(sorted(m for m in sys.modules if m.startswith('zerohour.gateway')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_sink_interface_lives_in_notices() -> None:
    from zerohour.notices import sink, verify

    assert verify.OutbreakSink is sink.OutbreakSink
    assert verify.Receipt is sink.Receipt
    assert not (NOTICES.parent / "gateway" / "listeners" / "apply.py").exists()
