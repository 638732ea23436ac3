"""The human-readable access package: one self-contained HTML page (no scripts, no external
resources), every value escaped, readable printed or offline."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy.sources import Section
    from privacy.subject_rights import AccessPackage

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 72rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
dl { display: grid; grid-template-columns: 12rem 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; }
table { border-collapse: collapse; margin-top: .5rem; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } .empty { color: #777; font-style: italic; }
"""


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="empty">—</span>'
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return _table(value)
        return escape(", ".join(str(item) for item in value))
    if isinstance(value, dict):
        return _table([value])
    return escape(str(value))


def _table(records: list[dict[str, Any]]) -> str:
    if not records:
        return '<p class="empty">Nothing held.</p>'
    columns: list[str] = []
    for record in records:
        columns.extend(key for key in record if key not in columns)
    head = "".join(f"<th>{escape(column)}</th>" for column in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(record.get(column))}</td>" for column in columns) + "</tr>"
        for record in records
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _section(section: Section) -> str:
    facts = [
        ("Source", section.source_system),
        ("Purposes", "; ".join(section.purposes)),
        ("Legal basis", section.legal_basis),
        ("Recipients", "; ".join(section.recipients)),
        ("Retention", section.retention),
        ("Records", str(len(section.records))),
    ]
    listed = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in facts)
    return (
        f'<section id="{escape(section.name)}"><h2>{escape(section.title)}</h2>'
        f"<dl>{listed}</dl>{_table(section.records)}</section>"
    )


def render(package: AccessPackage) -> str:
    """The package as a complete HTML document (UTF-8)."""
    generated = escape(package.generated_at.isoformat())
    contents = "".join(
        f'<li><a href="#{escape(s.name)}">{escape(s.title)}</a> ({len(s.records)})</li>'
        for s in package.sections
    )
    body = "".join(_section(section) for section in package.sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Your personal data</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>Personal data we hold about you</h1>"
        f"<p>Subject id {escape(str(package.subject_id))}, prepared {generated} (UTC), under "
        "Federal Law 152-FZ art. 14. Each section says where the data came from, why we "
        "process it, on what legal basis, who receives it and how long it is kept.</p>"
        f"<ul>{contents}</ul>{body}</body></html>"
    )
