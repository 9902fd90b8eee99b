"""The docs stay honest: every setting is documented, and the README's commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

from artifact_fs import settings

REPO = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_settings_doc() -> None:
    text = (REPO / "docs" / "settings.md").read_text()
    missing = [s.name for s in settings.ALL if f"`{s.name}`" not in text]
    assert not missing, f"document these in docs/settings.md: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme)
    assert "bash scripts/test-all.sh" in commands
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test-all.sh" in ci
