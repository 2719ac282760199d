"""A monitoring report as files: ``report.json``, ``report.html`` and the PNG plots it shows."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from application.monitoring.monitor_report import GroupReport, MonitorReport


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _name(group: GroupReport) -> str:
    return f"v{group.version} ({group.variant})"


def _plots(report: MonitorReport, folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    from matplotlib import pyplot as plt

    written: list[str] = []
    groups = report.groups
    if not groups:
        return written

    figure, axis = plt.subplots(figsize=(8, 4))
    classes = sorted({c for g in groups for c in g.by_class})
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        total = max(group.predictions, 1)
        axis.bar(
            [c + i * width for c in range(len(classes))],
            [group.by_class.get(name, 0) / total for name in classes],
            width,
            label=_name(group),
        )
    axis.set_xticks([c + 0.4 - width / 2 for c in range(len(classes))], classes)
    axis.set_ylabel("share of predictions")
    axis.set_title("Predicted classes")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "predictions.png")
    plt.close(figure)
    written.append("predictions.png")

    for group in groups:
        if group.drift is None or not group.drift.features:
            continue
        figure, axis = plt.subplots(figsize=(8, 0.5 + 0.4 * len(group.drift.features)))
        features = group.drift.features
        axis.barh(
            [f"{d.feature} ({d.method})" for d in features],
            [d.score for d in features],
            color=["tab:red" if d.drifted else "tab:blue" for d in features],
        )
        axis.set_xlabel("drift score (red: drifted)")
        axis.set_title(f"Feature drift, {_name(group)}, window {group.drift.window}")
        figure.tight_layout()
        file = f"drift_{group.variant}_v{group.version}.png"
        figure.savefig(folder / file)
        plt.close(figure)
        written.append(file)

    labelled = [g for g in groups if g.labelled]
    if labelled:
        figure, axis = plt.subplots(figsize=(8, 4))
        for group in labelled:
            hours = [h for h in group.hours if h.labelled]
            axis.plot(
                # matplotlib plots datetimes; its stubs only admit numbers
                [datetime.fromtimestamp(h.start, UTC) for h in hours],  # type: ignore[arg-type]
                [h.correct / h.labelled for h in hours],
                marker="o",
                label=_name(group),
            )
        axis.axhline(report.thresholds.min_accuracy, color="tab:red", linestyle="--")
        axis.set_ylabel("accuracy from feedback (hourly)")
        axis.set_title("Accuracy")
        axis.legend()
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(folder / "accuracy.png")
        plt.close(figure)
        written.append("accuracy.png")
    return written


def _html(report: MonitorReport, plots: list[str]) -> str:
    rows = []
    for group in report.groups:
        latency = group.latency
        drift = group.drift
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    group.variant,
                    group.version,
                    group.predictions,
                    ", ".join(f"{k}: {v}" for k, v in sorted(group.by_class.items())),
                    "" if group.mean_confidence is None else f"{group.mean_confidence:.3f}",
                    ""
                    if latency.p50_ms is None
                    else f"{latency.p50_ms:.1f} / {latency.p99_ms:.1f}",
                    group.labelled,
                    "" if group.accuracy is None else f"{group.accuracy:.3f}",
                    group.drift_note
                    if drift is None
                    else ", ".join(d.feature for d in drift.features if d.drifted) or "none",
                )
            )
            + "</tr>"
        )
    flags = "".join(f"<li>{html.escape(flag)}</li>" for flag in report.flags)
    verdict = (
        f"<p class='bad'>Flagged:</p><ul>{flags}</ul>"
        if report.flags
        else "<p class='good'>Nothing crossed its threshold.</p>"
    )
    images = "".join(f"<img src='{p}' alt='{p}'>" for p in plots)
    thresholds = report.thresholds
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(report.model)}: monitoring report</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse}}.bad{{color:#b00;font-weight:bold}}.good{{color:#070}}
img{{display:block;max-width:900px;margin:1em 0}}</style></head><body>
<h1>{html.escape(report.model)}</h1>
<p>{_stamp(report.since)} to {_stamp(report.until)}: {report.records} predictions in the log.
Thresholds: drifted share above {thresholds.max_drifted_share}, accuracy below
{thresholds.min_accuracy} with at least {thresholds.min_labels} labels.</p>
{verdict}
<table><tr><th>variant</th><th>version</th><th>predictions</th><th>classes</th>
<th>mean confidence</th><th>latency p50 / p99 ms</th><th>labels</th><th>accuracy</th>
<th>drifted features</th></tr>{"".join(rows)}</table>
{images}
</body></html>
"""


def write_report(report: MonitorReport, folder: Path) -> list[Path]:
    """Writes the report's files into ``folder``; returns them."""
    folder.mkdir(parents=True, exist_ok=True)
    plots = _plots(report, folder)
    (folder / "report.json").write_text(report.model_dump_json(indent=2))
    (folder / "report.html").write_text(_html(report, plots))
    return [folder / "report.json", folder / "report.html", *(folder / p for p in plots)]
