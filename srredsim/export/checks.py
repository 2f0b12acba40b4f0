"""The one result type of every package check (``srredsim validate``, the JVM harness, fiji-check).

A check has a stable dotted name (``spec``, ``dij.onnx.opset``, ``jvm.onnx``, ...), a status and
a one-line detail that says what to fix when it fails. Both :mod:`srredsim.export.validate` and
:mod:`srredsim.export.jvm` build these rows, and neither needs the other to do so.
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass
from typing import Any

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUSES = (PASS, FAIL, WARN, SKIP)


@dataclass
class CheckResult:
    """One row of a validation table."""

    name: str
    status: str  # one of STATUSES
    detail: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"check {self.name!r}: unknown status {self.status!r} (one of {', '.join(STATUSES)})")

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def failed_checks(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.failed]


def format_table(results: list[CheckResult], width: int = 100) -> str:
    """A plain-text table: check, status, seconds, detail (wrapped), and a one-line verdict."""
    name_w = max([len("check")] + [len(r.name) for r in results])
    head = f"{'check':<{name_w}}  status  time    detail"
    detail_w = max(40, width - name_w - 18)
    lines = [head, "-" * (name_w + 18 + detail_w)]
    for r in results:
        wrapped = textwrap.wrap(r.detail, detail_w) or [""]
        lines.append(f"{r.name:<{name_w}}  {r.status.upper():<6}  {r.seconds:5.1f}s  {wrapped[0]}")
        for cont in wrapped[1:]:
            lines.append(" " * (name_w + 18) + cont)
    fails = failed_checks(results)
    warns = sum(r.status == WARN for r in results)
    lines.append("")
    lines.append(f"FAILED: {', '.join(r.name for r in fails)}" if fails
                 else f"all {len(results)} checks passed" + (f" ({warns} warnings)" if warns else ""))
    return "\n".join(lines)
