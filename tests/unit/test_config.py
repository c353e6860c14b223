"""Settings: defaults from the issue, env prefix, and errors that name the setting."""

import subprocess
import sys

import pytest

from app.config import Settings, SettingsError, load_settings
from tests.conftest import REPO


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    s = load_settings()
    assert s.dial_string_template == "PJSIP/{number}@trunk"
    assert s.user_devices == {"sip_phone": "PJSIP/userphone"}
    assert (s.max_hold_time, s.hold_check_interval, s.classifier_window_seconds) == (7200.0, 2.0, 3.0)
    assert s.default_transfer_device == "sip_phone"
    assert s.database_url.startswith("sqlite:///")
    assert s.dial_string("18005551234") == "PJSIP/18005551234@trunk"


def test_environment_and_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HOLDSLAYER_ARI_APP=fromdotenv\nHOLDSLAYER_MAX_HOLD_TIME=60\n")
    monkeypatch.setenv("HOLDSLAYER_DIAL_STRING_TEMPLATE", "Local/{number}@from-app")
    monkeypatch.setenv("HOLDSLAYER_USER_DEVICES", '{"desk": "PJSIP/desk", "cell": "Local/5551234@out"}')
    monkeypatch.setenv("HOLDSLAYER_DEFAULT_TRANSFER_DEVICE", "desk")
    s = load_settings()
    assert s.ari_app == "fromdotenv" and s.max_hold_time == 60
    assert s.dial_string("42") == "Local/42@from-app"
    assert s.user_devices["cell"] == "Local/5551234@out"


@pytest.mark.parametrize(
    "env, setting",
    [
        ({"HOLDSLAYER_MAX_HOLD_TIME": "forever"}, "HOLDSLAYER_MAX_HOLD_TIME"),
        ({"HOLDSLAYER_HOLD_CHECK_INTERVAL": "-1"}, "HOLDSLAYER_HOLD_CHECK_INTERVAL"),
        ({"HOLDSLAYER_DIAL_STRING_TEMPLATE": "PJSIP/trunk"}, "HOLDSLAYER_DIAL_STRING_TEMPLATE"),
        ({"HOLDSLAYER_ARI_URL": "ftp://pbx"}, "HOLDSLAYER_ARI_URL"),
        ({"HOLDSLAYER_USER_DEVICES": '{"x": "nodialstring"}'}, "HOLDSLAYER_USER_DEVICES"),
        ({"HOLDSLAYER_USER_DEVICES": '{"x": "PJSIP/ has a space"}'}, "HOLDSLAYER_USER_DEVICES"),
        ({"HOLDSLAYER_USER_DEVICES": '{"desk/2": "PJSIP/desk"}'}, "HOLDSLAYER_USER_DEVICES"),
        ({"HOLDSLAYER_USER_DEVICES": '{}'}, "HOLDSLAYER_USER_DEVICES"),
        ({"HOLDSLAYER_MEDIA_PORT_MIN": "70000"}, "HOLDSLAYER_MEDIA_PORT_MIN"),
        ({"HOLDSLAYER_DEFAULT_TRANSFER_DEVICE": "pager"}, "default_transfer_device"),
    ],
)
def test_bad_values_name_the_setting(monkeypatch, tmp_path, env, setting):
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert setting in str(err.value)


def test_cli_fails_at_startup_naming_the_setting(tmp_path):
    env = {"HOLDSLAYER_CLASSIFIER_WINDOW_SECONDS": "lots", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "HOLDSLAYER_CLASSIFIER_WINDOW_SECONDS" in result.stderr


def test_settings_object_is_the_single_source():
    assert set(Settings.model_fields) >= {
        "ari_url", "ari_user", "ari_password", "ari_app", "dial_string_template", "user_devices",
        "media_host", "media_port_min", "media_port_max", "database_url", "max_hold_time",
        "hold_check_interval", "default_transfer_device", "classifier_window_seconds",
    }


def test_whisper_model_is_configurable_and_never_downloaded(tmp_path):
    from app.calls.listening import stt_for_call
    from app.speech import SttUnavailable

    settings = Settings(whisper_model_size="base.en")
    with pytest.raises(SttUnavailable, match="never downloaded"):
        stt_for_call(settings)
    with pytest.raises(SttUnavailable, match="no model.bin"):
        stt_for_call(Settings(whisper_model_path=tmp_path))
    assert stt_for_call(Settings()).provider == "local"
