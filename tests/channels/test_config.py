"""Channel configuration loading, defaults and validation errors."""

from __future__ import annotations

import pytest

from cairn.channels import ConfigError, load_channel_config
from cairn.channels.config import AdsSettings, FileSettings, RetryPolicy, SmtpSettings, WebhookSettings

YAML = """
engine: {shards: 4}   # unrelated sections are ignored
channels:
  email:   {type: smtp, host: 127.0.0.1, port: 2525, sender: "Cairn <noreply@cairn.local>", starttls: false, username: null, password: null, timeout_s: 10}
  sms:     {type: webhook, url: "http://127.0.0.1:9000/sms", headers: {X-Token: abc}, timeout_s: 5}
  default: {type: file, path: "out/sent.ndjson"}
ads: {url: "https://ads.example.com/audiences", headers: {X-Key: k}, batch_size: 200, sync_delay_s: 5}
retry: {max_attempts: 4, base_ms: 100, max_ms: 1000}
"""


def test_defaults_send_everything_to_the_file_sink():
    config = load_channel_config(None)
    assert config.channels == {}
    assert config.default == FileSettings(path="sent.ndjson")
    assert config.retry == RetryPolicy(max_attempts=6, base_ms=500, max_ms=300_000)
    assert config.settings_for("email") == ("default", FileSettings())
    assert config.ads == AdsSettings(url=None, batch_size=500, sync_delay_s=30.0)


def test_loads_yaml_file(tmp_path):
    path = tmp_path / "cairn.yaml"
    path.write_text(YAML)
    config = load_channel_config(path)
    assert config.channels["email"] == SmtpSettings(port=2525, timeout_s=10.0)
    assert config.channels["sms"] == WebhookSettings(url="http://127.0.0.1:9000/sms",
                                                     headers={"X-Token": "abc"}, timeout_s=5.0)
    assert config.default == FileSettings(path="out/sent.ndjson")
    assert config.ads == AdsSettings(url="https://ads.example.com/audiences", headers={"X-Key": "k"},
                                     batch_size=200, sync_delay_s=5.0)
    assert config.retry == RetryPolicy(max_attempts=4, base_ms=100, max_ms=1000)


def test_unknown_channels_route_to_default():
    config = load_channel_config({"channels": {"sms": {"type": "webhook", "url": "http://x/sms"}}})
    assert config.settings_for("sms")[0] == "sms"
    assert config.settings_for("push") == ("default", FileSettings())
    assert config.settings_for(None)[0] == "default"


@pytest.mark.parametrize("raw, message", [
    ({"channels": {"sms": {"type": "webhook"}}}, "channels.sms.url: required for type webhook"),
    ({"channels": {"sms": {"type": "webhook", "url": "ftp://x"}}}, "channels.sms.url: must start with http"),
    ({"channels": {"sms": {"url": "http://x"}}}, "channels.sms.type: must be one of file, smtp, webhook"),
    ({"channels": {"sms": {"type": "fax"}}}, "channels.sms.type: must be one of"),
    ({"channels": {"email": {"type": "smtp", "port": "25"}}}, "channels.email.port: expected an integer"),
    ({"channels": {"email": {"type": "smtp", "port": 70000}}}, "channels.email.port: must be <= 65535"),
    ({"channels": {"email": {"type": "smtp", "starttls": "yes"}}}, "channels.email.starttls: expected true or false"),
    ({"channels": {"email": {"type": "smtp", "timeout_s": 0}}}, "channels.email.timeout_s: must be > 0"),
    ({"channels": {"email": {"type": "smtp", "hots": "x"}}}, "channels.email.hots: unknown key for type smtp"),
    ({"channels": {"sms": {"type": "webhook", "url": "http://x", "headers": {"A": 1}}}}, "channels.sms.headers.A"),
    ({"channels": {"email": {"type": "smtp", "starttls": True, "use_tls": True}}}, "channels.email.starttls: cannot"),
    ({"channels": {"default": "file"}}, "channels.default: expected a mapping"),
    ({"channels": ["email"]}, "channels: expected a mapping"),
    ({"retry": {"max_attempts": 0}}, "retry.max_attempts: must be >= 1"),
    ({"retry": {"base_ms": 1000, "max_ms": 10}}, "retry.max_ms: must be >= retry.base_ms"),
    ({"retry": {"tries": 3}}, "retry.tries: unknown key"),
    ({"ads": {"batch_size": 0}}, "ads.batch_size: must be >= 1"),
    ({"ads": {"batch_size": 10.5}}, "ads.batch_size: expected an integer"),
    ({"ads": {"sync_delay_s": "30s"}}, "ads.sync_delay_s: expected a number"),
    ({"ads": {"sync_delay_s": -1}}, "ads.sync_delay_s: must be >= 0"),
    ({"ads": {"url": "ads.example.com"}}, "ads.url: must start with http:// or https://"),
    ({"ads": {"timeout_s": 0}}, "ads.timeout_s: must be > 0"),
    ({"ads": {"delay": 3}}, "ads.delay: unknown key"),
    ({"ads": ["vip"]}, "ads: expected a mapping"),
    ({"channels": {"webhook": {"type": "file"}}}, "channels.webhook: reserved"),
])
def test_validation_errors_name_the_key(raw, message):
    with pytest.raises(ConfigError) as info:
        load_channel_config(raw)
    assert str(info.value).startswith(message)


def test_unreadable_yaml_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read channel config"):
        load_channel_config(tmp_path / "missing.yaml")
