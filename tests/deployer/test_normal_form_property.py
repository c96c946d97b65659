"""Property: whatever schedules are deployed, reading them back and planning again shows no
change, against the emulator storing every field in the real servers' normal form
(docs/fidelity.md). A field a server stores in its own way must never look like drift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vertex_cron import api, function_source, planner
from vertex_cron import desired as desired_state
from vertex_cron.gcp import GoogleCloud
from vertex_cron.models import ScheduleInput
from vertex_cron.observe import observe
from vertex_cron_trigger.time_zones import place_zones

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline.json"
ZONES = sorted(place_zones())  # every name a schedule may use
START = datetime(2025, 1, 1, tzinfo=UTC)
# Text a parameter may hold: anything printable but the braces of placeholders.
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="{}", exclude_categories=("Cs", "Cc")), max_size=40)


@st.composite
def schedules(draw):
    names = draw(st.lists(st.sampled_from(["nightly", "hourly", "weekly", "q-report"]), min_size=1, unique=True))
    result = []
    for name in names:
        parameters = {
            "run_date": draw(st.one_of(TEXT, st.just("{{schedule_time:%Y-%m-%d}}"), st.just("{{schedule}}"))),
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "sample_rows": st.integers(-(2**53), 2**53),
                        "learning_rate": st.floats(allow_nan=False, allow_infinity=False, width=32),
                        "dry_run": st.booleans(),
                    },
                )
            ),
        }
        start_days, end_days = draw(st.none() | st.integers(0, 400)), draw(st.none() | st.integers(1, 400))
        start = START + timedelta(days=start_days) if start_days is not None else None
        end = (start or START) + timedelta(days=end_days) if end_days is not None else None
        result.append(
            ScheduleInput(
                name,
                EXAMPLE,
                f"{draw(st.integers(0, 59))} {draw(st.sampled_from(['*', '3', '0-23/6']))} * * "
                f"{draw(st.sampled_from(['*', '1-5', '0']))}",
                draw(st.sampled_from(ZONES)),
                parameters,
                max_concurrent_runs=draw(st.none() | st.integers(1, 1000)),
                start_time=start.isoformat().replace("+00:00", "Z") if start else None,
                end_time=end.isoformat().replace("+00:00", "Z") if end else None,
                enable_caching=draw(st.none() | st.booleans()),
            )
        )
    return result


@pytest.fixture
def cloud_settings(make_settings, emulator_env, spec_bucket):
    """One emulator for all of a test's examples: each deploys over what the last left."""
    return make_settings(
        bucket=spec_bucket,
        emulator_host=emulator_env["VERTEX_CRON_EMULATOR_HOST"],
        storage_emulator_host=emulator_env["STORAGE_EMULATOR_HOST"],
        poll_seconds=0.02,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(generated=schedules())
def test_deploy_then_read_back_then_plan_changes_nothing(cloud_settings, emulator, generated):
    cloud = GoogleCloud(cloud_settings)
    api.apply(cloud_settings, generated, cloud=cloud)

    wanted = desired_state.build(cloud_settings.deployment(), generated, source=function_source.build())
    observed = observe(cloud, wanted)
    wanted = desired_state.with_catch_up(wanted, observed.jobs, now=START)  # as apply resolves it
    plan = planner.plan(planner.with_invokers(wanted, observed), observed, now=START)

    assert plan.mutations == ()
