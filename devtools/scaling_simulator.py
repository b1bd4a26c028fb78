"""Replay a metric trace through the scaling alarms and policies of a synthesized template.

    .venv/bin/python -m devtools.scaling_simulator cdk.out/AsyncInference-prod.template.json

The alarms, policies, thresholds, cooldowns and capacities come from the template
itself; only the service's documented behaviour is modelled here, minute by minute:

CloudWatch alarms (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html,
"Evaluating an alarm", "Configuring how CloudWatch alarms treat missing data"):
  ALARM when DatapointsToAlarm of the last EvaluationPeriods datapoints breach; OK when
  fewer do. Every minute here publishes a datapoint, so missing-data treatment never applies.
Step scaling (https://docs.aws.amazon.com/autoscaling/application/userguide/step-scaling-policy-overview.html):
  the adjustment of the step interval containing (value - threshold) is applied when the
  alarm breaches, and again on every further breach "until the alarm state returns to OK";
  the policy responds "even while a scaling activity is in progress". ChangeInCapacity
  adds, ExactCapacity sets; the result is clamped to [MinCapacity, MaxCapacity].
  Scale-out cooldown: it starts when the scale-out activity completes (here: when the
  instances it added are in service) and while it runs, capacity added by the initiating
  activity counts towards the next scale-out's desired capacity.
Target tracking (https://docs.aws.amazon.com/autoscaling/application/userguide/target-tracking-scaling-policy-overview.html):
  scale out when the tracked value stayed above the target for 3 one-minute datapoints;
  new capacity = ceil(current x value / target) (proportional: target tracking assumes
  the metric falls in proportion to capacity), never from 0; a larger scale-out is
  allowed during the scale-out cooldown; DisableScaleIn: never scales in. Metric-math
  specifications are evaluated (IF, FILL and arithmetic).
SageMaker async endpoint (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-monitor.html):
  an added instance serves after `cold_start_minutes`; each serves
  MaxConcurrentInvocationsPerInstance requests at a time (from the template);
  ApproximateBacklogSize counts queued and in-flight requests, HasBacklogWithoutCapacity
  is 1 when requests wait and no instance is in service.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
# Target tracking's own high alarm: 3 of 3 one-minute datapoints above the target.
TRACKING_DATAPOINTS = 3


@dataclass
class Alarm:
    logical_id: str
    metric: str
    threshold: float
    comparison: str
    periods: int
    datapoints: int
    policy: str
    history: deque = field(default_factory=deque)
    in_alarm: bool = False

    def evaluate(self, value: float) -> bool:
        self.history.append(_COMPARE[self.comparison](value, self.threshold))
        while len(self.history) > self.periods:
            self.history.popleft()
        self.in_alarm = sum(self.history) >= self.datapoints
        return self.in_alarm


@dataclass
class StepPolicy:
    logical_id: str
    adjustment_type: str
    steps: list[tuple[float | None, float | None, int]]
    cooldown_minutes: int
    cooldown_from: int = 0
    cooldown_until: int = -1
    cooldown_base: int = 0

    def in_cooldown(self, minute: int) -> bool:
        return self.cooldown_from <= minute < self.cooldown_until

    def desired(self, current: int, breach: float, minute: int) -> int:
        matching = [
            step
            for lower, upper, step in self.steps
            if (lower is None or breach >= lower) and (upper is None or breach < upper)
        ]
        if not matching:
            return current
        adjustment = matching[0]
        if self.adjustment_type == "ExactCapacity":
            return adjustment
        if self.in_cooldown(minute) and adjustment > 0:
            # Capacity added by the activity that started the cooldown counts towards this one.
            return max(current, self.cooldown_base + adjustment)
        return current + adjustment


@dataclass
class TrackingPolicy:
    logical_id: str
    target: float
    spec: dict[str, Any]
    cooldown_minutes: int
    disable_scale_in: bool
    history: deque = field(default_factory=deque)
    cooldown_from: int = 0
    cooldown_until: int = -1
    last_scale_out_to: int = 0


@dataclass
class Minute:
    minute: int
    arrivals: int
    backlog: int
    in_service: int
    desired: int
    alarms: list[str]
    actions: list[str]


class Simulation:
    def __init__(self, template: dict[str, Any], *, cold_start_minutes: int, service_minutes: int = 1) -> None:
        resources = template["Resources"]
        [target] = [
            r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"
        ]
        self.min, self.max = int(target["MinCapacity"]), int(target["MaxCapacity"])
        [config] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SageMaker::EndpointConfig"]
        self.concurrency = int(config["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"])
        self.cold_start, self.service = cold_start_minutes, service_minutes
        self.steps: dict[str, StepPolicy] = {}
        self.tracking: list[TrackingPolicy] = []
        for lid, resource in resources.items():
            if resource["Type"] != "AWS::ApplicationAutoScaling::ScalingPolicy":
                continue
            props = resource["Properties"]
            if props["PolicyType"] == "StepScaling":
                step = props["StepScalingPolicyConfiguration"]
                self.steps[lid] = StepPolicy(
                    lid,
                    step["AdjustmentType"],
                    [
                        (
                            s.get("MetricIntervalLowerBound"),
                            s.get("MetricIntervalUpperBound"),
                            int(s["ScalingAdjustment"]),
                        )
                        for s in step["StepAdjustments"]
                    ],
                    math.ceil(int(step.get("Cooldown", 0)) / 60),
                )
            else:
                tracking = props["TargetTrackingScalingPolicyConfiguration"]
                self.tracking.append(
                    TrackingPolicy(
                        lid,
                        float(tracking["TargetValue"]),
                        tracking["CustomizedMetricSpecification"],
                        math.ceil(int(tracking.get("ScaleOutCooldown", 300)) / 60),
                        bool(tracking.get("DisableScaleIn")),
                    )
                )
        self.alarms = [
            Alarm(
                lid,
                p["MetricName"],
                float(p["Threshold"]),
                p["ComparisonOperator"],
                int(p["EvaluationPeriods"]),
                int(p.get("DatapointsToAlarm", p["EvaluationPeriods"])),
                action["Ref"],
            )
            for lid, r in resources.items()
            if r["Type"] == "AWS::CloudWatch::Alarm"
            for p in [r["Properties"]]
            for action in p.get("AlarmActions", [])
            if isinstance(action, dict) and action.get("Ref") in self.steps
        ]

    def run(self, arrivals: list[int]) -> list[Minute]:
        queue: deque[int] = deque()  # arrival minute of each queued request
        running: list[int] = []  # finish minute of each in-flight request
        instances: list[int] = []  # minute each instance is in service from
        desired = 0
        trace = []
        for minute, arriving in enumerate(arrivals):
            queue.extend([minute] * arriving)
            running = [end for end in running if end > minute]
            in_service = sum(1 for start in instances if start <= minute)
            while queue and len(running) < in_service * self.concurrency:
                queue.popleft()
                running.append(minute + self.service)
            backlog = len(queue) + len(running)
            metrics = {
                "ApproximateBacklogSize": backlog,
                "ApproximateBacklogSizePerInstance": backlog / in_service if in_service else backlog,
                "ApproximateAgeOfOldestRequest": (minute - queue[0]) * 60 if queue else 0,
                "HasBacklogWithoutCapacity": 1 if backlog and not in_service else 0,
            }
            actions: list[str] = []
            new = desired
            for alarm in self.alarms:
                if alarm.evaluate(metrics[alarm.metric]):
                    policy = self.steps[alarm.policy]
                    wanted = min(
                        self.max, max(self.min, policy.desired(new, metrics[alarm.metric] - alarm.threshold, minute))
                    )
                    if wanted != new:
                        actions.append(f"{policy.logical_id}: {new}->{wanted}")
                        if wanted > new:
                            # The cooldown starts when the activity completes: when the added
                            # instances are in service. Until then every breach applies again.
                            policy.cooldown_base = new
                            policy.cooldown_from = minute + self.cold_start
                            policy.cooldown_until = policy.cooldown_from + policy.cooldown_minutes
                        new = wanted
            for tracker in self.tracking:
                value = _evaluate(tracker.spec, metrics)
                tracker.history.append(value is not None and value > tracker.target)
                while len(tracker.history) > TRACKING_DATAPOINTS:
                    tracker.history.popleft()
                if (
                    value is not None
                    and len(tracker.history) == TRACKING_DATAPOINTS
                    and all(tracker.history)
                    and new > 0
                ):
                    wanted = min(self.max, math.ceil(new * value / tracker.target))
                    # During the cooldown only a larger scale-out than the last one proceeds.
                    blocked = (
                        tracker.cooldown_from <= minute < tracker.cooldown_until and wanted <= tracker.last_scale_out_to
                    )
                    if wanted > new and not blocked:
                        actions.append(f"{tracker.logical_id}: {new}->{wanted}")
                        tracker.cooldown_from = minute + self.cold_start
                        tracker.cooldown_until = tracker.cooldown_from + tracker.cooldown_minutes
                        tracker.last_scale_out_to = wanted
                        new = wanted
            if new > len(instances):
                instances += [minute + self.cold_start] * (new - len(instances))
            elif new < len(instances):
                # Instances not yet in service go first; then the newest.
                instances = sorted(instances)[:new]
            desired = new
            trace.append(
                Minute(
                    minute,
                    arriving,
                    backlog,
                    in_service,
                    desired,
                    [a.metric for a in self.alarms if a.in_alarm],
                    actions,
                )
            )
        return trace


def _evaluate(spec: dict[str, Any], metrics: dict[str, float]) -> float | None:
    """The value a target-tracking specification sees this minute (a single metric or metric math)."""
    if "MetricName" in spec:
        return metrics[spec["MetricName"]]
    values: dict[str, float | None] = {}
    result: float | None = None
    for query in spec["Metrics"]:
        if "MetricStat" in query:
            values[query["Id"]] = metrics[query["MetricStat"]["Metric"]["MetricName"]]
        else:
            functions = {
                "IF": lambda c, a, b: None if c is None else (a if c else b),
                "FILL": lambda m, v: v if m is None else m,
            }
            values[query["Id"]] = eval(query["Expression"], {"__builtins__": {}}, {**functions, **values})  # noqa: S307
        if query.get("ReturnData", True):
            result = values[query["Id"]]
    return result


def one_request_at_zero(minutes: int = 60) -> list[int]:
    return [1] + [0] * (minutes - 1)


def render(trace: list[Minute]) -> str:
    lines = ["minute  arrivals  backlog  in service  desired  alarms in ALARM / actions"]
    for row in trace:
        if row.arrivals or row.actions or row.backlog or row.minute % 10 == 0:
            notes = ", ".join(row.actions) or ", ".join(row.alarms)
            lines.append(
                f"{row.minute:6}  {row.arrivals:8}  {row.backlog:7}  {row.in_service:10}  {row.desired:7}  {notes}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.scaling_simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--cold-start-minutes", type=int, default=10)
    parser.add_argument("--burst", type=int, default=0, help="instead of one request: this many at minute 0")
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args(argv)
    simulation = Simulation(json.loads(args.template.read_text()), cold_start_minutes=args.cold_start_minutes)
    arrivals = [args.burst] + [0] * (args.minutes - 1) if args.burst else one_request_at_zero(args.minutes)
    print(render(simulation.run(arrivals)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
