"""Generated documentation must match the code it is generated from."""

from __future__ import annotations

from catalog.settings_doc import DOC_PATH, render


def test_configuration_reference_is_current() -> None:
    assert DOC_PATH.read_text() == render(), "run `python -m catalog.settings_doc` and commit the result"


def test_every_setting_is_documented() -> None:
    from catalog.config import Settings

    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
