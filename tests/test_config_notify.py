"""[metrics], [notify], [notify.targets.<name>] and [watchdog]: what a file may say, and every mistake named
with its fix (a target's URL is refused: its tokens live in the keyring or an env var)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.config.settings import ConfigError, load_config


def problems(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.render()


def test_targets_load_with_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[metrics]\nlisten = "127.0.0.1:9464"\n'
        '[notify.targets.phone]\nmin_severity = "critical"\n'
        '[notify.targets.team]\nkinds = ["feed", "drawdown"]\nsummary = true\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.metrics.listen == "127.0.0.1:9464"
    phone, team = config.notify.targets["phone"], config.notify.targets["team"]
    assert (phone.min_severity, phone.kinds, phone.rate_per_hour, phone.summary) == (
        "critical",
        ("all",),
        30,
        False,
    )
    assert (team.min_severity, team.kinds, team.summary) == ("warning", ("feed", "drawdown"), True)


def test_a_target_url_in_the_file_is_refused_and_never_shown(tmp_path: Path) -> None:
    text = problems(tmp_path, '[notify.targets.team]\nurl = "tgram://123456:SECRETTOKEN/42"\n')
    assert "SECRETTOKEN" not in text
    assert "notify.targets.team.url = <redacted>" in text
    assert "cockpit keys set notify:team" in text and "COCKPIT_NOTIFY_TEAM" in text


def test_each_mistake_is_named_with_its_fix(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        '[metrics]\nlisten = "localhost"\n'
        '[notify]\nsummary_at = "8am"\n'
        '[notify.targets.team]\nkinds = ["feed", "exchnge"]\nrate = 3\nmin_severity = "info"\n'
        "[watchdog]\nevery_s = 0\n",
    )
    assert "metrics.listen = 'localhost': is not HOST:PORT" in text
    assert "notify.summary_at = '8am': is not a time of day HH:MM" in text
    assert "notify.targets.team.kinds[1] = 'exchnge': is not an incident kind" in text
    assert "did you mean 'exchange'?" in text
    assert "notify.targets.team.rate: unknown key" in text
    assert "did you mean notify.targets.team.rate_per_hour?" in text
    assert 'notify.targets.team.min_severity = \'info\': must be "warning" or "critical"' in text
    assert "watchdog.every_s = 0: must be a number of seconds from 1 to 600" in text


def test_a_target_name_that_cannot_be_an_env_var_is_refused(tmp_path: Path) -> None:
    text = problems(tmp_path, "[notify.targets.My-Phone]\n")
    assert "has a target named 'My-Phone'" in text
    assert "COCKPIT_NOTIFY_PHONE" in text
