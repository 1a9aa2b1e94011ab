"""The override report as text (terminal), JSON (machines) or HTML with an inline SVG chart
(a committee's slide: no external assets, prints in colour and in grey)."""
from __future__ import annotations

import json
from html import escape

ACCEPTED, OVERRIDDEN, NO_FEEDBACK = "#2e7d32", "#c62828", "#bdbdbd"
SHOWN = "#1565c0"
BAR_WIDTH, ROW_HEIGHT, LABEL_WIDTH, RATE_WIDTH = 420, 34, 260, 210
BAR_HEIGHT = ROW_HEIGHT - 10


def render(report: dict, form: str) -> str:
    return {"json": render_json, "text": render_text, "html": render_html}[form](report)


def render_json(report: dict) -> str:
    return json.dumps(report, indent=2) + "\n"


def render_text(report: dict) -> str:
    lines = [f"Override report (since {_since(report)}; "
             f"generated {report['generated_at']})", ""]
    for topic in report["topics"]:
        lines += _text_topic(topic)
    totals = report["totals"]
    lines.append(f"All topics: {totals['cards_shown']} shown, {totals['accepted']} accepted, "
                 f"{totals['overridden']} overridden ({_percent(totals['override_rate'])})")
    lines.append(f"Feedback for cards not issued here: {report['feedback_for_unknown_cards']}")
    return "\n".join(lines + _text_burden(report["burden"])) + "\n"


def _text_burden(burden: dict) -> list[str]:
    lines = ["", f"Alert burden: {burden['baclofen_orders']} baclofen orders, "
                 f"{burden['cards_shown']} cards shown ({_per_100(burden['cards_per_100_orders'])} "
                 f"per 100 orders), {burden['suppressed']} suppressed"]
    for week in burden["weeks"]:
        lines.append(f"  week of {week['week']}: {week['baclofen_orders']} orders, {week['shown']} shown "
                     f"({_per_100(week['cards_per_100_orders'])} per 100), {week['suppressed']} suppressed")
    return lines


def _per_100(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _suppressed_by(topic: dict) -> str:
    parts = [f"{why} {count}" for why, count in sorted(topic["suppressed_by"].items())]
    return f" ({', '.join(parts)})" if parts else ""


def _text_topic(topic: dict) -> list[str]:
    lines = [f"{topic['topic']['display']} [{topic['topic']['code']}]",
             f"  shown {topic['cards_shown']}, accepted {topic['accepted']}, "
             f"overridden {topic['overridden']}, no feedback {topic['no_feedback']}, "
             f"override rate {_percent(topic['override_rate'])}",
             f"  suppressed {topic['suppressed']}{_suppressed_by(topic)}, "
             f"{_per_100(topic['cards_per_100_orders'])} cards per 100 baclofen orders"]
    for reason in topic["override_reasons"]:
        lines.append(f"    {reason['count']:>5}  {reason['display']} ({reason['code'] or '-'})")
    return lines + [""]


def render_html(report: dict) -> str:
    rows = "".join(_html_topic_rows(topic) for topic in report["topics"])
    totals = report["totals"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Baclofen CDS override report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#212121}}
table{{border-collapse:collapse;margin-top:1.5rem}} td,th{{border-bottom:1px solid #ddd;padding:.35rem .7rem;text-align:left;vertical-align:top}}
td.n{{text-align:right}} .muted{{color:#616161}}
</style></head><body>
<h1>Baclofen CDS: how often each card is overridden</h1>
<p class="muted">Since {escape(_since(report))}; generated {escape(report['generated_at'])}.
{totals['cards_shown']} cards shown, {totals['overridden']} overridden ({_percent(totals['override_rate'])}).</p>
{chart_svg(report['topics'])}
<table><thead><tr><th>Topic</th><th>Shown</th><th>Accepted</th><th>Overridden</th><th>No feedback</th>
<th>Override rate</th><th>Suppressed</th><th>Per 100 orders</th><th>Top override reasons</th></tr></thead><tbody>{rows}</tbody></table>
<p class="muted">Feedback for cards not issued here: {report['feedback_for_unknown_cards']}.</p>
<h2>Alert burden by week</h2>
<p class="muted">{report['burden']['baclofen_orders']} baclofen orders; {report['burden']['cards_shown']} cards shown
({_per_100(report['burden']['cards_per_100_orders'])} per 100 orders), {report['burden']['suppressed']} suppressed as already overridden.</p>
{burden_svg(report['burden']['weeks'])}
</body></html>
"""


def _html_topic_rows(topic: dict) -> str:
    reasons = "<br>".join(f"{r['count']} &times; {escape(r['display'])}"
                          for r in topic["override_reasons"]) or "&ndash;"
    return (f"<tr><td>{escape(topic['topic']['display'])}</td><td class=n>{topic['cards_shown']}</td>"
            f"<td class=n>{topic['accepted']}</td><td class=n>{topic['overridden']}</td>"
            f"<td class=n>{topic['no_feedback']}</td><td class=n>{_percent(topic['override_rate'])}</td>"
            f"<td class=n>{topic['suppressed']}{escape(_suppressed_by(topic))}</td>"
            f"<td class=n>{_per_100(topic['cards_per_100_orders'])}</td>"
            f"<td>{reasons}</td></tr>")


def chart_svg(topics: list[dict]) -> str:
    """One stacked bar per topic: accepted, overridden, no feedback, as shares of cards shown."""
    height = 40 + ROW_HEIGHT * len(topics)
    width = LABEL_WIDTH + BAR_WIDTH + RATE_WIDTH
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" '
             f'font-size="13"><title>Outcome of cards shown, by topic</title>', _legend()]
    for index, topic in enumerate(topics):
        parts.append(_chart_row(topic, 30 + ROW_HEIGHT * index))
    parts.append("</svg>")
    return "\n".join(parts)


def _legend(items=(("Accepted", ACCEPTED), ("Overridden", OVERRIDDEN), ("No feedback", NO_FEEDBACK))) -> str:
    return "".join(
        f'<rect x="{LABEL_WIDTH + 130 * i}" y="4" width="12" height="12" fill="{colour}"/>'
        f'<text x="{LABEL_WIDTH + 130 * i + 17}" y="15">{label}</text>'
        for i, (label, colour) in enumerate(items))


def _chart_row(topic: dict, y: int) -> str:
    shown = topic["cards_shown"] or 1
    segments, x = [], LABEL_WIDTH
    for name, colour in (("accepted", ACCEPTED), ("overridden", OVERRIDDEN), ("no_feedback", NO_FEEDBACK)):
        width = BAR_WIDTH * topic[name] / shown
        segments.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                        f'fill="{colour}"><title>{name.replace("_", " ")}: {topic[name]}</title></rect>')
        x += width
    label = escape(topic["topic"]["display"][:40])
    text_y = y + BAR_HEIGHT / 2
    return (f'<text x="{LABEL_WIDTH - 8}" y="{text_y:.0f}" text-anchor="end" '
            f'dominant-baseline="central">{label}</text>'
            + "".join(segments)
            + f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{text_y:.0f}" dominant-baseline="central">'
              f'{_percent(topic["override_rate"])} overridden (n={topic["cards_shown"]})</text>')


def burden_svg(weeks: list[dict]) -> str:
    """One bar per week: cards shown and cards suppressed, per 100 baclofen orders."""
    rates = [(w, w["cards_per_100_orders"] or 0.0, _suppressed_per_100(w)) for w in weeks]
    top = max((shown + hidden for _, shown, hidden in rates), default=0.0) or 1.0
    height = 40 + ROW_HEIGHT * len(weeks)
    width = LABEL_WIDTH + BAR_WIDTH + RATE_WIDTH
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" '
             f'font-size="13"><title>Cards per 100 baclofen orders, by week</title>',
             _legend([("Shown", SHOWN), ("Suppressed", NO_FEEDBACK)])]
    for index, (week, shown, hidden) in enumerate(rates):
        y = 30 + ROW_HEIGHT * index
        shown_width, hidden_width = BAR_WIDTH * shown / top, BAR_WIDTH * hidden / top
        text_y = y + BAR_HEIGHT / 2
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y:.0f}" text-anchor="end" dominant-baseline="central">'
            f'week of {week["week"]}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{shown_width:.1f}" height="{BAR_HEIGHT}" fill="{SHOWN}">'
            f'<title>shown: {week["shown"]}</title></rect>'
            f'<rect x="{LABEL_WIDTH + shown_width:.1f}" y="{y}" width="{hidden_width:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{NO_FEEDBACK}"><title>suppressed: {week["suppressed"]}</title></rect>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{text_y:.0f}" dominant-baseline="central">'
            f'{_per_100(week["cards_per_100_orders"])} per 100 orders (n={week["baclofen_orders"]})</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _suppressed_per_100(week: dict) -> float:
    orders = week["baclofen_orders"]
    return 100 * week["suppressed"] / orders if orders else 0.0


def _since(report: dict) -> str:
    return report["since"][:10] if report["since"] else "the start"


def _percent(rate: float) -> str:
    return f"{rate * 100:.1f}%"
