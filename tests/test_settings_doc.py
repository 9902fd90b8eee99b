"""docs/settings.md says what settings.py does: one row per variable, with its default and meaning."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from artifact_fs import settings

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def render_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value in ([], {}):
        return "empty"
    return f"`{value}`"


def render_row(setting: settings.Setting[Any]) -> str:
    return f"| `{setting.name}` | {render_default(setting.default)} | {setting.doc} |"


def documented_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `([A-Z][A-Z0-9_]*)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_setting_has_its_row() -> None:
    rows = documented_rows()
    wrong = [render_row(s) for s in settings.ALL if rows.get(s.name) != render_row(s)]
    assert not wrong, "docs/settings.md should have these rows:\n" + "\n".join(wrong)


def test_the_doc_names_no_variable_settings_py_lacks() -> None:
    known = {s.name for s in settings.ALL}
    assert not set(documented_rows()) - known
