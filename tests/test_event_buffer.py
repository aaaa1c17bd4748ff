"""A child's event buffer: bounded, losses counted never silent, flat JSON scalars; frames cut to a budget."""

from __future__ import annotations

import json
import math

import pytest

from keepalived_py.events import MAX_VALUE_CHARS, EventBuffer, encoded_size, scalar, take_batch


def test_events_are_stamped_flat_and_kept_in_order():
    woken = []
    buf = EventBuffer(on_emit=lambda: woken.append(1))
    buf.emit("vrrp_transition", instance="VI_1", to="MASTER", priority=100)
    buf.emit("check_verdict", up=False, weight=None)
    first, second = buf.pending()
    assert first["kind"] == "vrrp_transition" and first["to"] == "MASTER" and first["priority"] == 100
    assert isinstance(first["time"], float) and first["time"] <= second["time"]
    assert second == {"time": second["time"], "kind": "check_verdict", "up": False, "weight": None}
    assert len(woken) == 2 and len(buf) == 2 and buf.dropped == 0


def test_a_full_buffer_drops_the_oldest_and_counts_each_loss():
    buf = EventBuffer(maxlen=3)
    for i in range(10):
        buf.emit("n", i=i)
    assert [e["i"] for e in buf.pending()] == [7, 8, 9]
    assert buf.dropped == 7 and buf.dropped_total == 7 and buf.emitted == 10
    buf.consume(2, dropped=7)  # two events and the loss report reached the parent
    assert [e["i"] for e in buf.pending()] == [9] and buf.dropped == 0
    buf.emit("n", i=10)
    buf.emit("n", i=11)
    buf.emit("n", i=12)
    buf.emit("n", i=13)
    assert buf.dropped == 2 and buf.dropped_total == 9  # losses after the report are reported anew


def test_a_loss_reported_while_more_are_lost_keeps_the_rest_counted():
    buf = EventBuffer(maxlen=1)
    for _ in range(5):
        buf.emit("n")
    reported = buf.dropped
    buf.emit("n")  # lost between the frame being built and it being sent
    buf.consume(1, dropped=reported)
    assert buf.dropped == 1


def test_field_values_become_json_scalars_and_long_strings_are_cut():
    buf = EventBuffer()
    buf.emit("x", path=__import__("pathlib").Path("/etc"), text="y" * 10_000, inf=math.inf, n=3, f=0.5)
    (event,) = buf.pending()
    assert event["path"] == "/etc" and event["inf"] == "inf" and event["n"] == 3 and event["f"] == 0.5
    assert len(event["text"]) == MAX_VALUE_CHARS and event["text"].endswith("...")
    json.dumps(event, allow_nan=False)  # strict JSON
    assert scalar(True) is True and scalar(None) is None


@pytest.mark.parametrize("name", ["seq", "source"])
def test_the_parents_field_names_are_reserved(name):
    with pytest.raises(TypeError, match="reserved"):
        EventBuffer().emit("x", **{name: 1})


def test_a_batch_takes_as_many_events_as_fit_the_budget():
    events = [{"kind": "k", "time": 1.0, "text": "x" * 100} for _ in range(50)]
    size = encoded_size(events[0])
    count, used = take_batch(events, 10 * size + size // 2)
    assert count == 10 and used == 10 * size
    assert take_batch(events, size - 1) == (0, 0)  # not even one: the caller drops it
    assert take_batch([], 100) == (0, 0)
    assert len(json.dumps(events[:10], separators=(",", ":"))) == used + 1  # the brackets, one comma less


def test_an_event_too_large_for_any_frame_is_discarded_and_counted():
    buf = EventBuffer()
    buf.emit("a")
    buf.emit("b")
    buf.discard(1)
    assert [e["kind"] for e in buf.pending()] == ["b"] and buf.dropped == 1 and buf.dropped_total == 1
