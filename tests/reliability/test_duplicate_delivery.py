"""One firing delivered many times, concurrently, to two instances: exactly one PipelineJob."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reliability_stack import PARENT, body_for, fire, job_names

DELIVERIES = 16


def test_one_firing_delivered_concurrently_to_two_instances_makes_exactly_one_job(start_function, emulator, spec_uri):
    instances = [start_function(), start_function()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda i: fire(instances[i % 2].url, body_for(spec_uri)), range(DELIVERIES)))

    assert [r.status_code for r in responses] == [200] * DELIVERIES
    outcomes = sorted(r.json()["outcome"] for r in responses)
    assert outcomes == ["created"] + ["duplicate"] * (DELIVERIES - 1)
    assert {r.json()["job"] for r in responses} == {f"{PARENT}/pipelineJobs/nightly-20240501-020000"}
    assert job_names(emulator) == [f"{PARENT}/pipelineJobs/nightly-20240501-020000"]
    lines = [line for instance in instances for line in instance.log_lines()]
    assert sorted(line["outcome"] for line in lines) == outcomes
    assert all(line["severity"] == "INFO" for line in lines)


def test_concurrent_deliveries_of_distinct_firings_make_one_job_each(start_function, emulator, spec_uri):
    instances = [start_function(), start_function()]
    firings = [f"2024-05-0{day}T02:00:00Z" for day in range(1, 5)]
    deliveries = [(firing, instance) for firing in firings for instance in instances for _ in range(2)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda d: fire(d[1].url, body_for(spec_uri), schedule_time=d[0]), deliveries))

    assert {r.status_code for r in responses} == {200}
    assert sorted(r.json()["outcome"] for r in responses).count("created") == len(firings)
    assert job_names(emulator) == [f"{PARENT}/pipelineJobs/nightly-2024050{day}-020000" for day in range(1, 5)]
