"""Scale from zero without overshoot, shown by replaying metric traces through the real template.

devtools/scaling_simulator.py models the documented alarm, step-scaling, cooldown and
target-tracking semantics (its docstring cites the pages); the alarms, policies and
capacities come from each environment's synthesized template.
"""

from __future__ import annotations

import copy
import itertools

import pytest

from app_config import load_environment
from devtools.scaling_simulator import Minute, Simulation, StepPolicy, one_request_at_zero
from tests.infra.conftest import ASYNC_ENVIRONMENTS

COLD_START_MINUTES = 10  # instance launch + image pull + model download: minutes


@pytest.fixture(params=ASYNC_ENVIRONMENTS)
def env_name(request: pytest.FixtureRequest) -> str:
    """This module is about async endpoints' scaling: the async environments only
    (real-time and serverless scaling: tests/infra/test_hosting_modes.py)."""
    return request.param


@pytest.fixture
def raw(synthesized, env_name: str) -> dict:
    return copy.deepcopy(synthesized.templates[env_name].to_json())


def _run(template: dict, arrivals: list[int], cold_start: int = COLD_START_MINUTES) -> list[Minute]:
    return Simulation(template, cold_start_minutes=cold_start).run(arrivals)


def _assert_no_scale_in_with_backlog(trace: list[Minute]) -> None:
    for before, now in itertools.pairwise(trace):
        if now.desired < before.desired:
            assert now.backlog == 0, (
                f"minute {now.minute}: scaled in {before.desired}->{now.desired} with backlog {now.backlog}"
            )


def test_one_request_at_zero_gets_exactly_one_instance_then_scales_back(raw: dict, env_name: str) -> None:
    scaling = load_environment(env_name).scaling
    trace = _run(raw, one_request_at_zero(COLD_START_MINUTES + scaling.idle_minutes_before_scale_in + 10))
    assert trace[0].desired == 1, "the first request wakes the endpoint at once"
    assert max(row.desired for row in trace) == 1, [(r.minute, r.desired, r.actions) for r in trace if r.actions]
    served = max(row.minute for row in trace if row.backlog)
    # Idle for idle_minutes_before_scale_in minutes after the last request: back to min_capacity, not before.
    scaled_in = next(row.minute for row in trace if row.minute > served and row.desired == scaling.min_capacity)
    assert scaled_in == served + scaling.idle_minutes_before_scale_in
    assert trace[-1].desired == scaling.min_capacity
    _assert_no_scale_in_with_backlog(trace)


@pytest.mark.parametrize("cold_start", [1, 5, 10, 30])
def test_cold_start_length_does_not_change_the_answer(raw: dict, cold_start: int) -> None:
    trace = _run(raw, one_request_at_zero(cold_start + 10), cold_start=cold_start)
    assert {row.desired for row in trace} == {1}
    assert trace[cold_start].in_service == 1


def test_a_burst_waits_for_target_tracking_which_acts_only_with_an_instance_in_service(
    raw: dict, env_name: str
) -> None:
    scaling = load_environment(env_name).scaling
    trace = _run(raw, [400] + [0] * 200)
    grown = [row for row in trace if row.desired > 1]
    if scaling.max_capacity > 1:
        assert grown, "a backlog that one instance cannot clear makes target tracking ask for more"
        assert grown[0].in_service >= 1 and grown[0].minute >= COLD_START_MINUTES
    assert max(row.desired for row in trace) <= scaling.max_capacity
    assert trace[-1].desired == scaling.min_capacity
    _assert_no_scale_in_with_backlog(trace)


@pytest.mark.parametrize(
    "arrivals",
    [
        [3, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 40, 0, 0, 1] + [0] * 60,
        ([2] * 5 + [0] * 20) * 4,
        [1 if minute % 7 == 0 else 0 for minute in range(150)],
    ],
)
def test_never_a_scale_in_while_requests_are_queued_or_in_flight(raw: dict, arrivals: list[int]) -> None:
    _assert_no_scale_in_with_backlog(_run(raw, arrivals))


# --------------------------------------------------------------------- the simulator can fail


def _policy(template: dict, prefix: str) -> dict:
    [policy] = [r["Properties"] for lid, r in template["Resources"].items() if lid.startswith(prefix)]
    return policy


def test_an_add_one_step_overshoots_during_the_cold_start(synthesized) -> None:
    """The defect: +1 on HasBacklogWithoutCapacity with a 120 s cooldown, applied again on
    every breach while the first instance is still starting."""
    template = copy.deepcopy(synthesized.templates["prod"].to_json())
    _policy(template, "ScalingScaleOutFromZero")["StepScalingPolicyConfiguration"].update(
        AdjustmentType="ChangeInCapacity", Cooldown=120
    )
    trace = _run(template, one_request_at_zero(40))
    assert max(row.desired for row in trace) == load_environment("prod").scaling.max_capacity


def test_tracking_the_age_through_a_cold_start_overshoots(synthesized) -> None:
    """Without blanking the tracked value while no instance serves, the waiting request's age
    alone asks target tracking for more instances."""
    template = copy.deepcopy(synthesized.templates["prod"].to_json())
    tracking = _policy(template, "ScalingTrackBacklog")["TargetTrackingScalingPolicyConfiguration"]
    tracked = next(q for q in tracking["CustomizedMetricSpecification"]["Metrics"] if q["Id"] == "tracked")
    tracking["CustomizedMetricSpecification"] = {
        "MetricName": tracked["MetricStat"]["Metric"]["MetricName"],
        "Namespace": "AWS/SageMaker",
        "Dimensions": tracked["MetricStat"]["Metric"]["Dimensions"],
        "Statistic": tracked["MetricStat"]["Stat"],
    }
    trace = _run(template, one_request_at_zero(40))
    assert max(row.desired for row in trace) > 1


def test_step_cooldown_counts_the_capacity_already_added() -> None:
    """The step-scaling guide's own example: +2, then during the cooldown a +3 adds only 1."""
    policy = StepPolicy("p", "ChangeInCapacity", [(0, 10, 2), (10, None, 3)], cooldown_minutes=5)
    assert policy.desired(current=4, breach=1, minute=0) == 6
    policy.cooldown_base, policy.cooldown_until = 4, 5
    assert policy.desired(current=6, breach=20, minute=3) == 7
    assert policy.desired(current=6, breach=20, minute=5) == 9


def test_backlog_per_instance_tracking_also_wakes_exactly_one_instance(tmp_path) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from app_config import parse_environment
    from app_config.environments import ENVIRONMENTS
    from stacks.async_inference_stack import AsyncInferenceStack
    from tests.infra.conftest import ROOT, cdk_context

    raw = {
        **ENVIRONMENTS["prod"],
        "scaling": {
            **ENVIRONMENTS["prod"]["scaling"],
            "metric": "ApproximateBacklogSizePerInstance",
            "target_value": 2,
        },
    }
    stack = AsyncInferenceStack(
        cdk.App(outdir=str(tmp_path), context=cdk_context()),
        "Backlog",
        config=parse_environment(raw),
        container_dir=ROOT / "container",
        build_dir=tmp_path / "build",
    )
    template = Template.from_stack(stack).to_json()
    assert {row.desired for row in _run(template, one_request_at_zero(COLD_START_MINUTES + 10))} == {1}
    burst = _run(template, [100] + [0] * 120)
    assert max(row.desired for row in burst) == 4 and all(row.in_service for row in burst if row.desired > 1)
    _assert_no_scale_in_with_backlog(burst)
