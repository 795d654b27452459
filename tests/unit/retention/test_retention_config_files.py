"""The 90-day floor and the committed policy files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config import ConfigError, ShipperSettings, load_settings
from sidecar.retention import RetentionConfigError, check_retention_days, generated_files
from sidecar.retention.generate import main as generate_main

REPO = Path(__file__).resolve().parents[3]
RETENTION_DIR = REPO / "retention"


def test_floor_refuses_below_90_without_override() -> None:
    assert check_retention_days(90) == 90
    assert check_retention_days(365) == 365
    with pytest.raises(RetentionConfigError, match=r"SIDECAR_RETENTION_DAYS=89.*SIDECAR_ALLOW_SHORT_RETENTION"):
        check_retention_days(89)
    assert check_retention_days(30, allow_short=True) == 30
    for bad in (0, -5):
        with pytest.raises(RetentionConfigError):
            check_retention_days(bad, allow_short=True)


def test_settings_refuse_below_90_without_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SIDECAR_RETENTION_DAYS", "30")
    with pytest.raises(ConfigError, match="SIDECAR_RETENTION_DAYS"):
        load_settings(ShipperSettings, spool_dir=tmp_path)
    monkeypatch.setenv("SIDECAR_ALLOW_SHORT_RETENTION", "true")
    assert load_settings(ShipperSettings, spool_dir=tmp_path).retention_days == 30
    assert ShipperSettings(spool_dir=tmp_path, retention_days=120).retention_days == 120


def test_committed_files_are_the_generator_output() -> None:
    expected = generated_files()
    assert sorted(p.name for p in RETENTION_DIR.glob("*.json")) == sorted(expected)
    for name, content in expected.items():
        assert (RETENTION_DIR / name).read_text(encoding="utf-8") == content, (
            f"retention/{name} is stale: run `python -m sidecar.retention.generate`"
        )


def test_generate_command_writes_the_same_files(tmp_path: Path) -> None:
    assert generate_main(["--out", str(tmp_path)]) == 0
    for name, content in generated_files().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == content
    assert generate_main(["--out", str(tmp_path / "x"), "--days", "400", "--prefix", "acme"]) == 0
    assert '"min_age": "401d"' in (tmp_path / "x" / "ilm-policy.json").read_text()
    assert '"acme-2*"' in (tmp_path / "x" / "opensearch-ism-policy.json").read_text()


def test_generate_command_refuses_short_retention(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate_main(["--out", str(tmp_path), "--days", "30"]) == 2
    assert "SIDECAR_ALLOW_SHORT_RETENTION" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    assert generate_main(["--out", str(tmp_path), "--days", "30", "--allow-short-retention"]) == 0
    assert '"data_retention": "30d"' in (tmp_path / "data-stream-lifecycle.json").read_text()
