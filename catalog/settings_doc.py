"""Render the configuration reference (docs/operations/configuration.md) from the settings model.

``python -m catalog.settings_doc`` rewrites the file; a test fails when it is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from catalog.config import Settings

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "operations" / "configuration.md"

HEADER = """# Configuration reference

Every setting is an environment variable with the `DATLAKE_` prefix. With none set, the
catalog runs embedded: SQLite and a `file://` warehouse under `./.datlake/`, jobs in-process.
This page is generated from `catalog/config.py` by `python -m catalog.settings_doc`.

| variable | default | description |
|---|---|---|
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `DATLAKE_{name.upper()}` | {shown} | {description} |")
    return HEADER + "\n".join(rows) + "\n"


def main() -> int:
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render())
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
