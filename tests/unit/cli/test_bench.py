"""`fleetwave.bench` figures: what the table prints, computed from histories, counts and times."""

from __future__ import annotations

import math

import pytest

from fleetwave.bench import (
    BenchResult,
    ControlResult,
    WriteCounter,
    count_holds,
    count_state_transitions,
    format_table,
    makespan_seconds,
    transact_writes,
    waves_for,
)


def result(**overrides) -> BenchResult:
    values = dict(
        robots=100,
        waves=4,
        status="Succeeded",
        state_transitions=18,
        dynamodb_writes=1030,
        mqtt_messages=500,
        makespan_seconds=21.4,
        robot_seconds=1.0,
    )
    return BenchResult(**{**values, **overrides})


def test_bench_state_transitions_count_only_states_entered():
    # Given an execution history with entries, exits and other events
    history = [
        {"type": "ExecutionStarted"},
        {"type": "TaskStateEntered"},
        {"type": "LambdaFunctionScheduled"},
        {"type": "TaskStateExited"},
        {"type": "ChoiceStateEntered"},
        {"type": "ChoiceStateExited"},
        {"type": "SucceedStateEntered"},
        {"type": "ExecutionSucceeded"},
    ]
    # Then only the three states entered count
    assert count_state_transitions(history) == 3


def test_bench_transact_writes_skip_condition_checks():
    items = [
        {"Put": {"TableName": "t"}},
        {"Update": {"TableName": "t"}},
        {"ConditionCheck": {"TableName": "t"}},
        {"Delete": {"TableName": "t"}},
    ]
    assert transact_writes(items) == 3


@pytest.mark.parametrize(
    ("robots", "percent", "waves"),
    [
        (10, 25, 4),
        (100, 25, 4),
        (1000, 25, 4),
        (6, 25, 3),
        (10, None, 1),
        (10, 10, 10),
        (3, 100, 1),
        (0, 25, 0),
    ],
)
def test_bench_waves_follow_the_engines_rule(robots, percent, waves):
    assert waves_for(robots, percent) == waves


def test_bench_per_robot_figures_and_makespan_ratio():
    # Given 100 robots, 4 waves of robots that take 1 s each, a 21.4 s makespan
    figures = result()
    # Then writes and messages are per robot, and the ideal is waves x robot time
    assert figures.writes_per_robot == pytest.approx(10.3)
    assert figures.messages_per_robot == pytest.approx(5.0)
    assert figures.ideal_seconds == pytest.approx(4.0)
    assert figures.makespan_ratio == pytest.approx(5.35)


def test_bench_makespan_runs_from_creation_to_the_last_finish():
    assert makespan_seconds(1000.0, [1003.5, None, 1010.25, 1002.0]) == pytest.approx(10.25)
    assert makespan_seconds(1000.0, [None]) == 0.0


def test_bench_ratio_without_an_ideal_is_infinite():
    assert math.isinf(result(robot_seconds=0.0).makespan_ratio)


def test_bench_table_prints_one_row_per_fleet_size():
    # When two results are formatted
    text = format_table([result(robots=10, dynamodb_writes=129, mqtt_messages=50, makespan_seconds=6.1,
                                peak_rss=300 * 1024 * 1024),
                         result(robots=1000, dynamodb_writes=10300, mqtt_messages=5000,
                                peak_rss=1536 * 1024 * 1024)])  # fmt: skip
    lines = text.splitlines()
    # Then a header, a rule and one row per size with the per-robot figures and the ratio
    assert "makespan/ideal" in lines[0] and "DynamoDB writes/robot" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    # and the engine's own time per robot, (makespan - ideal) / N in ms, and the peak memory in MiB
    assert "engine ms/robot" in lines[0] and "peak RSS MiB" in lines[0]
    assert lines[2].split() == [
        "10",
        "4",
        "Succeeded",
        "18",
        "12.90",
        "5.0",
        "6.1",
        "4.0",
        "1.52",
        "210.0",
        "300",
    ]
    assert lines[3].split() == [
        "1,000", "4", "Succeeded", "18", "10.30", "5.0", "21.4", "4.0", "5.35", "17.4", "1,536",
    ]  # fmt: skip


def test_bench_engine_time_per_robot_is_never_negative():
    # A rollout faster than the ideal (robots a little quicker than planned) costs the engine nothing
    assert result(makespan_seconds=3.9).engine_ms_per_robot == 0.0
    assert result(robots=0).engine_ms_per_robot == 0.0


def test_bench_imports_are_measured_per_lambda_function_as_the_runtime_looks_them_up():
    from fleetwave_service.lambdas import LAMBDAS

    from fleetwave.bench import ColdImport, format_imports, handler_modules

    # Every function of the one table, by its handler (module.attribute)
    handlers = handler_modules(first_requests=False)
    assert set(handlers) == {function.name for function in LAMBDAS}
    assert handlers["api"] == "fleetwave_service.handlers.api_handler"
    # and the API function again with a first request of each front door
    assert handler_modules() == {
        **handlers,
        "api + first robomaker request": "fleetwave_service.handlers.api_handler+robomaker",
        "api + first greengrass request": "fleetwave_service.handlers.api_handler+greengrass",
    }
    # And the ratio to import boto3 is printed per function
    text = format_imports(0.2, {"api": ColdImport("fleetwave_service.handlers.api_handler", 0.3, 1.5)})
    assert "import boto3 200 ms" in text.splitlines()[0]
    assert "300 ms = 1.50 x import boto3" in text.splitlines()[1]


@pytest.mark.parametrize("front_door", ["robomaker", "greengrass"])
def test_bench_an_api_cold_start_with_a_first_request_runs_it_in_the_child(front_door):
    from fleetwave.bench import import_seconds

    # The child imports the API function, looks its handler up and serves a first request of the front door,
    # which that front door's validation refuses (a 400, no AWS call): anything else fails the child
    assert import_seconds(f"fleetwave_service.handlers.api_handler+{front_door}") > 0


def test_bench_cold_imports_pair_each_function_with_the_import_boto3_around_it():
    from fleetwave.bench import cold_imports

    # Given a machine whose speed changes from one round to the next (other work came and went), where f's
    # import costs 1.4 x import boto3 and g's 1.2 x at any speed
    cost = {"boto3": 0.1, "m.f": 0.14, "m.g": 0.12}
    calls: list[str] = []

    def measure(handler: str) -> float:
        calls.append(handler)
        slowdown = (1, 3, 2)[(len(calls) - 1) // 5]  # each round: boto3, f, boto3, g, boto3
        return cost[handler] * slowdown

    boto3_seconds, imports = cold_imports({"f": "m.f", "g": "m.g"}, runs=3, measure=measure)
    # Each function between two imports of boto3; the ratio is the function's against them
    assert calls == ["boto3", "m.f", "boto3", "m.g", "boto3"] * 3
    assert imports["f"].ratio == pytest.approx(1.4)
    assert imports["g"].ratio == pytest.approx(1.2)
    # while the medians of the raw times, taken across rounds, are what they are
    assert imports["f"].seconds == pytest.approx(0.28)  # 0.14, 0.42, 0.28
    assert boto3_seconds == pytest.approx(0.2)


def test_bench_write_counter_counts_item_writes_at_moto_and_restores_it():
    # Given moto's DynamoDB in this process with the counter installed
    import boto3
    from moto import mock_aws
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.put_item
    counter = WriteCounter()
    counter.install()
    try:
        with mock_aws():
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ddb.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            # When items are put, updated, batch-written, written in a transaction and read
            ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
            ddb.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET x = :x",
                            ExpressionAttributeValues={":x": {"N": "1"}})  # fmt: skip
            ddb.batch_write_item(
                RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": k}}}} for k in "bc"]}
            )
            ddb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "d"}}}},
                    {"Delete": {"TableName": "t", "Key": {"pk": {"S": "b"}}}},
                    {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "a"}},
                                        "ConditionExpression": "attribute_exists(pk)"}},
                ]
            )  # fmt: skip
            ddb.get_item(TableName="t", Key={"pk": {"S": "a"}})
        # Then 1 + 1 + 2 + 2 item writes were counted, and reset returns and clears them
        assert counter.reset() == 6
        assert counter.count == 0
        # and keeps them by the row written (here rows of no known kind: named by their partition key)
        assert counter.last_by_row == {"a": 2, "b": 2, "c": 1, "d": 1}
    finally:
        counter.uninstall()
    # And moto is as it was
    assert DynamoDBBackend.put_item is original


@pytest.mark.parametrize(
    ("pk", "sk", "kind"),
    [
        ("ROBOT#r1", "ROBOT", "robot"),
        ("JOB#deployment-1", "JOB", "job"),
        ("JOB#deployment-1", "ROBOT#r1", "job's robot row"),
        ("JOB#deployment-1", "WAVE#000001", "wave"),
        ("JOB#deployment-1", "QUEUE#000000001", "queue"),
        ("FLEET#f", "FLEET", "fleet"),
    ],
)
def test_bench_writes_are_broken_down_by_the_kind_of_row_written(pk, sk, kind):
    from fleetwave.bench import row_kind

    assert row_kind(pk, sk) == kind


def test_bench_rollout_control_counts_holds_and_states_the_expected_transitions():
    # Given a history that entered the hold twice, among other states
    history = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Evaluate the rollout"}},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Hold the rollout"}},
        {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Hold the rollout"}},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Hold the rollout"}},
    ]
    assert count_holds(history) == 2
    # And the line names the figure and the formula it should match
    result = ControlResult(robots=10, waves=4, holds=4, status="Succeeded", state_transitions=30)
    assert result.expected_transitions == 30
    assert result.line().endswith(
        "job Succeeded, 4 holds, 30 state transitions (6 + 3 x 4 waves + 3 x 4 holds = 30)"
    )
