from datetime import UTC, datetime

import pytest
from vertex_cron_trigger.errors import BadRequest
from vertex_cron_trigger.placeholders import render

WHEN = datetime(2024, 5, 1, 23, 30, tzinfo=UTC)


def fill(value, time_zone=None):
    return render(value, schedule="nightly", logical_time=WHEN, time_zone=time_zone, field="parameter_values.p")


def test_placeholders_render():
    assert fill("{{schedule_time}}") == "2024-05-01T23:30:00Z"
    assert fill("run of {{ schedule }} at {{schedule_time:%Y-%m-%d}}") == "run of nightly at 2024-05-01"
    assert fill("plain text {not one}") == "plain text {not one}"


def test_formatted_time_uses_the_schedule_time_zone():
    assert fill("{{schedule_time:%Y-%m-%d %H:%M}}", time_zone="Asia/Tokyo") == "2024-05-02 08:30"
    assert fill("{{schedule_time}}", time_zone="Asia/Tokyo") == "2024-05-01T23:30:00Z"


@pytest.mark.parametrize("value", ["{{schedule_date}}", "{{schedule_time:}}", "{{schedule_time", "a {{ b", "{{}}"])
def test_malformed_placeholders_are_rejected(value):
    with pytest.raises(BadRequest) as caught:
        fill(value)
    assert caught.value.field == "parameter_values.p"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("{{schedule_time:%Q}}", "'%Q' is not a strftime code"),
        ("{{schedule_time:%-d}}", "'%-' is not a strftime code"),  # glibc-only: elsewhere it renders as text
        ("{{schedule_time:%Y%}}", "'%' is not a strftime code"),
        ("{{schedule_time:hello}}", "it has no strftime code"),
        ("{{schedule_time:%%}}", "it has no strftime code"),
    ],
)
def test_a_format_without_known_strftime_codes_is_rejected_not_rendered_as_text(value, words):
    """Before, each rendered as the same literal text at every firing (a 200)."""
    with pytest.raises(BadRequest) as caught:
        fill(value)
    assert caught.value.field == "parameter_values.p" and words in caught.value.message


def test_every_portable_code_and_a_literal_percent_render():
    assert fill("{{schedule_time:%a %A %b %B %d %H %I %j %m %M %p %S %U %w %W %y %Y %z %G %u %V 100%%}}") == (
        "Wed Wednesday May May 01 23 11 122 05 30 PM 00 17 3 18 24 2024 +0000 2024 3 18 100%"
    )
