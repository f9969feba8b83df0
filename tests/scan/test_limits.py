"""The scan budget: ClamAV's defaults and every limit's ClamAV name."""

from __future__ import annotations

import pytest

from zerohour.errors import ScanLimitExceeded
from zerohour.scan.limits import Limits, ScanContext


def test_defaults_are_clamav_defaults() -> None:
    lim = Limits()
    assert lim.max_recursion == 17
    assert lim.max_files == 10_000
    assert lim.max_scan_size == 400 * 1024 * 1024
    assert lim.max_file_size == 100 * 1024 * 1024
    assert lim.max_scan_time == 120
    assert lim.alert_exceeds_max
    assert lim.alert_encrypted


def test_recursion() -> None:
    ctx = ScanContext(Limits(max_recursion=2))
    with ctx.descend(), ctx.descend():
        assert ctx.depth == 2
        with pytest.raises(ScanLimitExceeded) as exc, ctx.descend():
            pass
        assert exc.value.which == "MaxRecursion"
    assert ctx.depth == 0


def test_files_bytes_and_file_size() -> None:
    ctx = ScanContext(Limits(max_files=5, max_scan_size=90, max_file_size=60))
    ctx.charge_child(40)
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx.charge_child(61)
    assert exc.value.which == "MaxFileSize"
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx.charge_child(60)
    assert exc.value.which == "MaxScanSize"
    ctx2 = ScanContext(Limits(max_files=2))
    ctx2.charge_file()
    ctx2.charge_file()
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx2.charge_file()
    assert exc.value.which == "MaxFiles"


def test_output_bound_and_check() -> None:
    ctx = ScanContext(Limits(max_scan_size=100, max_file_size=60))
    assert ctx.output_bound() == 60
    ctx.charge_bytes(70)
    assert ctx.output_bound() == 30
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx.check_output(31)
    assert exc.value.which == "MaxScanSize"


def test_ratio_only_above_min_size() -> None:
    ctx = ScanContext(Limits(max_compression_ratio=10, ratio_min_size=1000))
    ctx.check_ratio(1, 1000)  # tiny output: any ratio is fine
    ctx.check_ratio(200, 2000)
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx.check_ratio(100, 2000)
    assert exc.value.which == "CompressionRatio"


def test_time_uses_injected_clock() -> None:
    now = [0.0]
    ctx = ScanContext(Limits(max_scan_time=5), clock=lambda: now[0])
    ctx.check_time()
    now[0] = 5.5
    with pytest.raises(ScanLimitExceeded) as exc:
        ctx.check_time()
    assert exc.value.which == "MaxScanTime"


def test_oversized_member_skipped_only_when_alerts_are_off() -> None:
    on = ScanContext(Limits(max_file_size=10))
    assert on.skip_oversized(10) is False
    with pytest.raises(ScanLimitExceeded) as exc:
        on.skip_oversized(11)
    assert exc.value.which == "MaxFileSize"
    off = ScanContext(Limits(max_file_size=10, alert_exceeds_max=False))
    assert off.skip_oversized(11) is True
    assert off.tolerate(ScanLimitExceeded("MaxFileSize")) is True
    assert off.tolerate(ScanLimitExceeded("MaxScanSize")) is False
    assert off.skipped == ["MaxFileSize", "MaxFileSize"]
