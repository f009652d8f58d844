"""The NDJSON file sink and routing of unconfigured channels to it."""

from __future__ import annotations

import json

from cairn.channels import Dispatcher, load_channel_config


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_no_config_writes_every_channel_to_data_dir_sent_ndjson(outbox, clock, tmp_path, make_effect):
    data = tmp_path / "data" / "nested"  # parent dirs are created on first write
    effects = [make_effect(channel=ch) for ch in ("email", "push", "in_app", "ads")]
    for effect in effects:
        outbox.put(effect)
    dispatcher = Dispatcher([outbox], load_channel_config(None), data, clock)
    try:
        assert await dispatcher.drain_once() == 4
    finally:
        await dispatcher.close()

    lines = _lines(data / "sent.ndjson")
    assert [line["id"] for line in lines] == [e["id"] for e in effects]
    first = lines[0]
    assert first["message"] == {"text": "Hi Ann"}
    assert first["channel"] == "email" and first["to"] == "ann@example.com"
    assert isinstance(first["sent_ms"], int) and "context" not in first
    assert set(dispatcher.stats) == {"email", "push", "in_app", "ads"}


async def test_unknown_channels_route_to_default_and_listed_ones_do_not(outbox, clock, tmp_path, make_effect):
    config = load_channel_config({"channels": {
        "push": {"type": "file", "path": "push.ndjson"},
        "default": {"type": "file", "path": str(tmp_path / "abs" / "other.ndjson")},
    }})
    outbox.put(make_effect(channel="push"))
    outbox.put(make_effect(channel="web_push"))
    outbox.put(make_effect(channel="inbox"))
    dispatcher = Dispatcher([outbox], config, tmp_path / "data", clock)
    await dispatcher.drain_once()
    await dispatcher.close()
    assert [l["channel"] for l in _lines(tmp_path / "data" / "push.ndjson")] == ["push"]
    assert [l["channel"] for l in _lines(tmp_path / "abs" / "other.ndjson")] == ["web_push", "inbox"]


async def test_appends_across_dispatchers(outbox, clock, tmp_path, make_effect):
    for _ in range(2):
        outbox.put(make_effect(channel="web"))
        dispatcher = Dispatcher([outbox], load_channel_config(None), tmp_path, clock)
        await dispatcher.drain_once()
        await dispatcher.close()
    assert len(_lines(tmp_path / "sent.ndjson")) == 2
