"""Replay every NHSRplotthedots unit case in rule_unit_cases.json (one test id per case)."""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.spc import assurance_type, xmr
from pipelines.spc.rules import (
    part_of_seven_trend,
    part_of_two_in_three,
    seven_point_one_side_mean,
    seven_point_trend,
    special_cause_codes,
    special_cause_labels,
    two_in_three,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "spc" / "nhsrplotthedots"
CASES = json.loads((FIXTURES / "rule_unit_cases.json").read_text())

RULE_CASES = CASES["rule_unit_cases"]
ALL_CASES = [
    *RULE_CASES,
    *CASES["special_cause_precedence"],
    *CASES["assurance_cases"],
    *CASES["integration_cases"],
]


def _pad(values: list[float], n: int) -> list[float]:
    # Upstream's R recycling/NA padding of a short `rtm` can never make |sum| == 3, which is
    # what padding with 0 (on the mean) gives too.
    return list(values) + [0] * (n - len(values))


def _run_rule(function: str, args: dict[str, Any], segment: np.ndarray | None = None) -> list:
    if function == "ptd_seven_point_one_side_mean":
        return seven_point_one_side_mean(args["v"], segment).tolist()
    if function == "ptd_part_of_seven_trend":
        return part_of_seven_trend(args["v"], segment).tolist()
    if function == "ptd_seven_point_trend":
        return seven_point_trend(args["y"], segment).tolist()
    if function == "ptd_two_in_three":
        v = args["v"]
        return two_in_three(v, _pad(args.get("rtm", []), len(v)), segment).tolist()
    if function == "two_in_three_then_part_of":
        close = args["close_to_limits"]
        windows = two_in_three(close, args["relative_to_mean"], segment)
        return part_of_two_in_three(windows, close).tolist()
    raise AssertionError(f"no runner for {function}")


def _run_case(case: dict[str, Any]) -> Any:
    function, args = case["function"], case.get("args", {})
    if function == "ptd_special_cause_type":
        mocked = case["mocked_components"]
        codes = special_cause_codes(
            args["y"],
            args["relative_to_mean"],
            args["outside_limits"],
            part_trend=mocked["part_of_seven_trend(trend)"],
            part_two_in_three=mocked["part_of_two_in_three"],
            part_shift=mocked["part_of_seven_trend(shift)"],
        )
        return special_cause_labels(codes)
    if function == "ptd_calculate_assurance_type":
        facets = args["f"]
        rows = range(len(facets))
        out = []
        for _, members in groupby(rows, key=lambda i: facets[i]):
            last = list(members)[-1]
            lpl = args["lpl"][last] if "lpl" in args else None
            upl = args["upl"][last] if "upl" in args else None
            out.append(assurance_type(lpl, upl, args["target"], args["improvement_direction"]))
        return out
    if function == "ptd_spc":
        direction = args["improvement_direction"].split()[0]
        result = xmr(
            args["data"],
            improvement_direction=direction,
            screen_outliers=args["screen_outliers"],
        )
        return {"point_type_last_2": result["point_type"].tail(2).to_list()}
    return _run_rule(function, args)


def test_every_case_is_replayed() -> None:
    """The fixture has cases of each kind, and each id is unique (one test per case)."""
    ids = [case["id"] for case in ALL_CASES]
    assert len(ids) == len(set(ids))
    assert len(RULE_CASES) >= 37
    assert len(ALL_CASES) >= 45


@pytest.mark.parametrize("case", ALL_CASES, ids=[case["id"] for case in ALL_CASES])
def test_rule_unit_case(case: dict[str, Any]) -> None:
    assert _run_case(case) == case["expected"], case.get("note") or case["rule"]


@pytest.mark.parametrize("case", RULE_CASES, ids=[case["id"] for case in RULE_CASES])
def test_rule_case_never_crosses_a_segment(case: dict[str, Any]) -> None:
    """The same case twice, as two segments of one flat array, gives the answer twice.

    This is what lets one vectorised pass analyse many series: no run or window reaches
    from one series (or rebase segment) into the next.
    """
    args = {key: list(value) * 2 for key, value in case["args"].items()}
    if case["function"] == "ptd_two_in_three":
        half = len(case["args"]["v"])
        args["rtm"] = _pad(case["args"].get("rtm", []), half) * 2
    n = len(next(iter(args.values())))
    segment = np.repeat([0, 1], n // 2)
    assert _run_rule(case["function"], args, segment) == case["expected"] * 2
