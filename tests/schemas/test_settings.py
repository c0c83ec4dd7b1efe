"""The settings as an operator meets them: every one documented in README.md with its
default, and a bad value named without being echoed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.settings import Settings, settings_table
from tests.conftest import ROOT


def test_the_readme_lists_every_setting_with_its_default() -> None:
    """README's settings table is the one `python -m schemas.settings` writes from the
    settings model: a setting added, renamed or given a new default shows there."""
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("-->\n", readme.index("<!-- settings:")) + len("-->\n")
    table = readme[start : readme.index("<!-- /settings -->")]
    assert table == settings_table(), "run: python -m schemas.settings, and paste its table"
    for name, field in Settings.model_fields.items():
        assert f"`LOOPTRACK_{name.upper()}`" in table
        assert field.description, f"{name} has no description"


def test_a_bad_setting_is_named_and_its_value_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOOPTRACK_MQTT_URL", "http://user:s3cret@broker:1883")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "mqtt_url" in str(refused.value)
    assert "s3cret" not in str(refused.value)
