"""The limit policy file: the default loads; every kind of mistake is named by its path."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.limits.policy import (
    ACTIONS,
    POLICY_PATH,
    LimitPolicy,
    PolicyError,
    load_policy,
    parse_policy,
)

DEFAULT: dict[str, Any] = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))


def write_policy(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """The default policy with `change` applied, written as YAML to a fresh file."""
    config = copy.deepcopy(DEFAULT)
    change(config)
    path = tmp_path / "limit_policy.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_the_default_policy_loads_with_version_and_fingerprint():
    policy = load_policy()
    assert isinstance(policy, LimitPolicy)
    assert policy.version == DEFAULT["version"] == "2026.12-2"
    assert re.fullmatch(r"[0-9a-f]{64}", policy.fingerprint)
    assert load_policy(POLICY_PATH).fingerprint == policy.fingerprint
    assert set(policy.priority_weights) == set(ACTIONS)


def test_the_default_policy_keeps_the_documented_numbers():
    policy = load_policy()
    assert policy.lgd == 0.7
    assert policy.cancel.events == ["insolvency", "liquidation"]
    assert policy.cancel.grade == 9
    assert policy.capacity.max_statement_age_months == 24
    assert policy.capacity.payment_grace_days == 30
    assert policy.country_caps == {5: 2_000_000, 6: 500_000, 7: 0}
    assert 9 not in policy.capacity.equity_multiple  # grades 9-10: no capacity


def test_the_policy_is_frozen():
    policy = load_policy()
    with pytest.raises(ValueError):
        policy.lgd = 0.5  # type: ignore[misc]


def test_a_rewritten_copy_loads_to_the_same_rules_with_another_fingerprint(tmp_path: Path):
    path = write_policy(tmp_path, lambda c: None)
    copy_ = load_policy(path)
    default = load_policy()
    assert copy_.model_dump(exclude={"fingerprint"}) == default.model_dump(exclude={"fingerprint"})
    assert copy_.fingerprint != default.fingerprint  # comments are gone: other bytes


def test_sections_left_out_take_their_defaults(tmp_path: Path):
    minimal = {
        "version": "v1",
        **{k: DEFAULT[k] for k in ("capacity", "authority", "notice", "queue")},
    }
    path = tmp_path / "minimal.yaml"
    path.write_text(yaml.safe_dump(minimal), encoding="utf-8")
    policy = load_policy(path)
    assert policy.decrease.max_step == 0.5
    assert policy.country_caps == {}
    assert policy.excess_of_loss.respect_discretionary_limit


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting config[k1][k2]... = value."""

    def change(config: dict[str, Any]) -> None:
        target = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda config: config.pop(key)


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (
            _set("capacity", "equity_multiple", 3, value=-0.5),
            "capacity.equity_multiple.3",
            "greater than or equal to 0",
        ),
        (_set("capacity", "payment_multiple", 1, value=11), "capacity.payment_multiple.1", "10"),
        (_set("decrease", "max_stp", value=0.4), "decrease.max_stp", "Extra inputs"),
        (_set("bonus", value=1), "bonus", "Extra inputs"),
        (
            _set("cancel", "events", value=["insolvency", "bankruptcy"]),
            "cancel.events",
            "bankruptcy",
        ),
        (
            _set("capacity", "turnover_multiple", 6, value=0.5),
            "capacity.turnover_multiple",
            "worse grade",
        ),
        (
            _set("capacity", "equity_multiple", 10, value=0.1),
            "capacity.equity_multiple",
            "performing grades",
        ),
        (_set("country_caps", 9, value=100_000), "country_caps", "0..7"),
        (_set("country_caps", 5, value=-1), "country_caps.5", "greater than or equal to 0"),
        (_set("decrease", "max_step", value=0), "decrease.max_step", "greater than 0"),
        (_set("decrease", "overdue_cut", value=1.5), "decrease.overdue_cut", "1"),
        (_set("cancel", "grade", value=11), "cancel.grade", "at most 10"),
        (_set("lgd", value="high"), "lgd", "number"),
        (_set("priority_weights", "approve", value=1), "priority_weights.approve.[key]", "cancel"),
        (_drop("capacity"), "capacity", "Field required"),
        (_drop("version"), "version", "Field required"),
        (_set("version", value=""), "version", "at least 1"),
    ],
)
def test_a_bad_field_is_named_by_its_path(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], path: str, words: str
):
    file = write_policy(tmp_path, change)
    with pytest.raises(PolicyError) as error:
        load_policy(file)
    message = str(error.value)
    assert str(file) in message
    line = next((x for x in message.splitlines() if x.strip().startswith(f"{path}:")), None)
    assert line is not None, message
    assert words.lower() in line.lower(), message


def test_every_bad_field_is_listed_at_once(tmp_path: Path):
    def change(config: dict[str, Any]) -> None:
        config["lgd"] = 2
        config["decrease"]["max_stp"] = 0.4
        config["hysteresis"]["min_change_share"] = -0.1

    message = str(_error(load_policy, write_policy(tmp_path, change)))
    for path in ("lgd:", "decrease.max_stp:", "hysteresis.min_change_share:"):
        assert path in message


def _error(fn: Callable[..., Any], *args: Any) -> PolicyError:
    with pytest.raises(PolicyError) as error:
        fn(*args)
    return error.value


def test_text_that_is_not_yaml_is_refused(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: '1\ncapacity: [unclosed\n", encoding="utf-8")
    message = str(_error(load_policy, path))
    assert "not valid YAML" in message and str(path) in message


def test_a_yaml_list_is_not_a_policy(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([DEFAULT]), encoding="utf-8")
    message = str(_error(load_policy, path))
    assert "expected a mapping" in message and "list" in message


def test_an_empty_file_is_not_a_policy(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert "expected a mapping" in str(_error(load_policy, path))


def test_a_missing_file_is_named(tmp_path: Path):
    path = tmp_path / "nowhere.yaml"
    message = str(_error(load_policy, path))
    assert "cannot read the limit policy" in message and str(path) in message


def test_parse_policy_names_its_source():
    message = str(_error(parse_policy, {"version": "x"}, "from the API"))
    assert message.startswith("from the API is invalid")
    assert "capacity: Field required" in message


def test_a_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)
