"""The flash-crash figures, before and after, as a table and a chart (docs/benchmarks/storm.png).

Reads what `bench/storm.py` recorded (`storm_<label>_<levels>` in .cache/bench/):

    python -m bench.storm_report        # prints the markdown section, writes the chart
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from bench.results import load

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("before", 1200), ("after", 1200), ("before", 10000), ("after", 10000)]
ROWS = [
    ("first mark (its commit time)", "first_mark_ms", 1 / 1000),
    ("first mark acknowledged to the worker (histogram bucket, ≤)",
     "internal_first_mark_le_ms", 1 / 1000),
    ("all marked", "all_marked_s", 1.0),
    ("all settled", "all_settled_s", 1.0),
    ("all liquidations marked", "marked_liquidation_s", 1.0),
    ("all stop-losses marked", "marked_stop_loss_s", 1.0),
    ("all positions marked", "marked_positions_s", 1.0),
    ("all triggers marked", "marked_trigger_s", 1.0),
    ("half of the levels settled", "settled_p50_s", 1.0),
    ("the whale settled", "settled_whale_s", 1.0),
]
RATES = [("marks/s", "marks_per_s", 1.0), ("settlements/s", "settlements_per_s", 1.0)]
TARGETS = {1200: {"all_marked_s": 2.0, "all_settled_s": 15.0},
           10000: {"all_marked_s": 10.0, "all_settled_s": 60.0, "first_mark_ms": 100.0}}


def figures() -> dict[tuple[str, int], dict[str, Any]]:
    found = {}
    for label, levels in RUNS:
        run = load(f"storm_{label}_{levels}")
        if run is not None:
            found[(label, levels)] = run["figures"]
    return found


def seconds(value: float | None, key: str) -> str:
    if value is None:
        return "not run"
    if key.endswith("_ms"):
        return f"{value:,.0f} ms"
    return f"{value:,.1f} s"


def section() -> str:
    """Return the markdown table: each figure before, after, and the ratio."""
    runs = figures()
    lines = []
    for levels in (1200, 10000):
        before, after = runs.get(("before", levels)), runs.get(("after", levels))
        if before is None and after is None:
            continue
        shape = after or before
        assert shape is not None
        lines.append(f"\n{levels:,} levels ({shape['users']:,} users + a {shape['whale']}-level "
                     f"whale):\n")
        lines.append("| | before | after | before / after | target |")
        lines.append("|---|---|---|---|---|")
        for name, key, _ in [*ROWS, *RATES]:
            old = before.get(key) if before else None
            new = after.get(key) if after else None
            ratio = "—"
            if old and new:
                ratio = f"{(new / old if key.endswith('per_s') else old / new):,.1f}×"
            if key.endswith("per_s"):
                show = [f"{v:,.0f}" if v is not None else "not run" for v in (old, new)]
            else:
                show = [seconds(old, key), seconds(new, key)]
            target = TARGETS.get(levels, {}).get(key)
            wanted = "—" if target is None else seconds(target, key)
            lines.append(f"| {name} | {show[0]} | {show[1]} | {ratio} | ≤ {wanted} |"
                         if target is not None else
                         f"| {name} | {show[0]} | {show[1]} | {ratio} | |")
        for label, run in (("before", before), ("after", after)):
            if run is not None:
                lines.append(f"\n{label}: subscribe/unsubscribe messages during the storm "
                             f"{run.get('subscription_messages', '—')}, marks settled by the "
                             f"reconciler {run.get('reconciled', '—')}.")
    return "\n".join(lines) + "\n"


def chart(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = figures()
    keys = [("all_marked_s", "all marked"), ("all_settled_s", "all settled"),
            ("marked_positions_s", "positions marked"), ("marked_trigger_s", "triggers marked")]
    sizes = [levels for levels in (1200, 10000)
             if ("before", levels) in runs or ("after", levels) in runs]
    figure, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
    for axis, levels in zip(axes[0], sizes, strict=True):
        width = 0.38
        for offset, label, colour in ((-width / 2, "before", "#bbbbbb"),
                                      (width / 2, "after", "#2a7ab9")):
            run = runs.get((label, levels))
            if run is None:
                continue
            values = [run.get(key) or 0 for key, _ in keys]
            bars = axis.bar([i + offset for i in range(len(keys))], values, width, label=label,
                            color=colour)
            axis.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
        axis.set_xticks(range(len(keys)), [name for _, name in keys])
        axis.set_ylabel("seconds after the crash tick")
        axis.set_title(f"flash crash, {levels:,} levels, one tick")
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> int:
    print(section())
    docs = Path(os.environ.get("COGMORA_DOCS_DIR") or ROOT / "docs")
    chart(docs / "benchmarks" / "storm.png")
    print(f"chart: {docs / 'benchmarks' / 'storm.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
