"""PNG plots of a run's table (matplotlib, Agg backend: no display): req/s and p99 per workload, ours
beside its baseline (the ceilings, scimledger in one workspace, the peer ``scim2-server``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported: no display
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

COLORS = {
    "ours": "#1f77b4",
    "ceiling": "#7f7f7f",
    "read-ceiling": "#7f7f7f",
    "one-workspace": "#9ecae1",
    "peer": "#ff7f0e",
}
LABELS = {
    "ours": "scimledger",
    "ceiling": "ceiling (one INSERT / one SELECT)",
    "one-workspace": "scimledger, one workspace",
    "peer": "scim2-server (peer)",
}


def plot(rows: Sequence[dict[str, Any]], metric: str, title: str, unit: str, path: Path) -> None:
    """One horizontal bar per measured value: ours, and below it the row's baseline when it has one. A
    measurement with errors is hatched and says so: its figures are not those of working requests."""
    labels: list[str] = []
    values: list[float] = []
    colors: list[str] = []
    hatches: list[str] = []
    kinds_shown: dict[str, str] = {}
    for row in rows:
        pairs = [("ours", "ours", row["workload"])]
        if row["baseline"] is not None:
            pairs.append(("baseline", row["baseline_kind"], f"  vs {row['baseline_name']}"))
        for side, kind, label in pairs:
            value, errors = row[f"{side}_{metric}"], row[f"{side}_errors"]
            labels.append(label + (f" ({errors:,} errors)" if errors else ""))
            values.append(float(value) if value is not None else 0.0)
            colors.append(COLORS[kind])
            hatches.append("//" if errors else "")
            kinds_shown.setdefault("ceiling" if kind == "read-ceiling" else kind, COLORS[kind])
    height = max(3.0, 0.32 * len(labels) + 1.2)
    fig, ax = plt.subplots(figsize=(11, height))
    y = list(range(len(labels)))
    for bar, hatch in zip(ax.barh(y, values, color=colors), hatches, strict=True):
        bar.set_hatch(hatch)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    top = max(values, default=0.0) or 1.0
    for i, value in enumerate(values):
        ax.text(value + top * 0.01, i, f"{value:,.0f}" if metric == "rps" else f"{value:,.1f}", va="center",
                fontsize=7)  # fmt: skip
    ax.set_xlim(0, top * 1.15)
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in kinds_shown.values()]
    ax.legend(handles, [LABELS[k] for k in kinds_shown], fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(rows: Sequence[dict[str, Any]], out_dir: Path, stamp: str, subtitle: str) -> list[Path]:
    """``<stamp>-throughput.png`` and ``<stamp>-p99.png``, copied to ``latest-*.png``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metric, name, title, unit in (
        ("rps", "throughput", f"Throughput, {subtitle}", "requests per second (higher is better)"),
        ("p99_ms", "p99", f"99th percentile latency, {subtitle}", "milliseconds (lower is better)"),
    ):
        path = out_dir / f"{stamp}-{name}.png"
        plot(rows, metric, title, unit, path)
        latest = out_dir / f"latest-{name}.png"
        latest.write_bytes(path.read_bytes())
        written += [path, latest]
    return written
