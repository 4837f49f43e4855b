"""The guard that makes moto's DynamoDB operations atomic (fleetwave serve and in-process tests)."""

from __future__ import annotations

from moto.dynamodb.models import DynamoDBBackend

from fleetwave.local import moto_atomic


def test_moto_atomic_wraps_every_item_operation_and_restores_moto_on_uninstall():
    # Given moto's own methods
    originals = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}

    # When the guard is installed, then uninstalled
    moto_atomic.install()
    wrapped = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}
    moto_atomic.uninstall()

    # Then every operation was wrapped while installed, and moto's own methods are back afterwards
    assert all(getattr(wrapped[name], "__fleetwave_serialized__", False) for name in moto_atomic.METHODS)
    assert {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS} == originals
    assert not moto_atomic.is_installed()
    # and moto's table module copies with the standard module again
    import copy

    import moto.dynamodb.models.table as table_module

    assert table_module.copy is copy


def test_moto_atomic_installed_twice_stays_until_the_last_uninstall():
    # Given two users of the guard (e.g. an in-process test and an embedded endpoint), stopping out of order
    originals = {name: getattr(DynamoDBBackend, name) for name in moto_atomic.METHODS}
    moto_atomic.install()
    moto_atomic.install()

    # When the first one uninstalls, the guard stays, wrapped once (not twice)
    moto_atomic.uninstall()
    still = DynamoDBBackend.put_item
    assert moto_atomic.is_installed()
    assert still.__wrapped__ is originals["put_item"]

    # And when the last one uninstalls, moto's own methods are back
    moto_atomic.uninstall()
    assert DynamoDBBackend.put_item is originals["put_item"]
    assert not moto_atomic.is_installed()


def test_embedded_aws_endpoint_installs_the_guard_while_it_runs(monkeypatch):
    # Given the embedded AWS endpoint of `fleetwave serve` (tables, bucket and moto config are not under test)
    from fleetwave.local.aws import MotoAws

    monkeypatch.setattr(MotoAws, "_configure", lambda self: None)
    monkeypatch.setattr(MotoAws, "_provision", lambda self: None)
    endpoint = MotoAws("127.0.0.1", 0, "us-east-1", "table", "idempotency", "bucket")

    # When it starts, then stops
    endpoint.start()
    try:
        running = moto_atomic.is_installed()
    finally:
        endpoint.stop()

    # Then moto's DynamoDB was serialised while it ran, and is moto's own again afterwards
    assert running
    assert not moto_atomic.is_installed()


# --- scale: the patched operations answer exactly as moto's own ---------------------------------------------
TABLE = "scale"


def _make_table(client):
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    # Three partitions, and values of every attribute type (binary, sets, nested maps and lists).
    for partition in ("A", "B", "C"):
        for index in range(30):
            item = {
                "pk": {"S": partition},
                "sk": {"S": f"ROBOT#{index:03d}" if index % 3 else f"WAVE#{index:03d}"},
                "n": {"N": str(index)},
                "f": {"N": "0.1"},
                "b": {"B": bytes([index, 0, 255])},
                "flag": {"BOOL": index % 2 == 0},
                "none": {"NULL": True},
                "ss": {"SS": ["x", f"y{index}"]},
                "ns": {"NS": ["1", "2.5"]},
                "bs": {"BS": [b"\x00\x01", bytes([index])]},
                "m": {"M": {"step": {"S": "Launching"}, "l": {"L": [{"N": "1"}, {"M": {"b": {"B": b"1"}}}]}}},
            }
            if index % 2:
                item.update({"gsi1pk": {"S": "ALL"}, "gsi1sk": {"S": f"{partition}#{index:03d}"}})
            client.put_item(TableName=TABLE, Item=item)


def _queries(client):
    """Each query, paged through with a small Limit (as the stores page)."""
    shapes = [
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "B"}}},
        {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "A"}, ":s": {"S": "ROBOT#"}},
            "ScanIndexForward": False,
        },
        {
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "FilterExpression": "flag = :t",
            "ExpressionAttributeValues": {
                ":p": {"S": "C"},
                ":a": {"S": "ROBOT#005"},
                ":b": {"S": "ROBOT#020"},
                ":t": {"BOOL": True},
            },
            "ConsistentRead": True,
        },
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
        # Sort-key conditions that select a few items of a partition (the guard reads only those)
        {
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":p": {"S": "A"}, ":a": {"S": "WAVE#"}, ":b": {"S": "WAVE#999"}},
        },
        {
            "KeyConditionExpression": "pk = :p AND sk > :a",
            "ExpressionAttributeValues": {":p": {"S": "B"}, ":a": {"S": "ROBOT#025"}},
            "ScanIndexForward": False,
        },
        {
            "KeyConditionExpression": "pk = :p AND sk = :a",
            "ExpressionAttributeValues": {":p": {"S": "C"}, ":a": {"S": "WAVE#003"}},
        },
        {
            "KeyConditionExpression": "pk = :p AND sk <= :a",
            "ExpressionAttributeValues": {":p": {"S": "C"}, ":a": {"S": "NOPE"}},
        },
        # A projection (moto copies the items it projects; the stored ones keep every attribute)
        {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ProjectionExpression": "sk, m.step, ss",
            "ExpressionAttributeValues": {":p": {"S": "B"}, ":s": {"S": "ROBOT#"}},
        },
        {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :p AND begins_with(gsi1sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "ALL"}, ":s": {"S": "B#"}},
        },
        {
            "IndexName": "gsi1",
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": {"S": "ALL"}},
        },
    ]
    answers = []
    for shape in shapes:
        pages, start = [], None
        while True:
            paging = {"ExclusiveStartKey": start} if start else {}
            page = client.query(TableName=TABLE, Limit=7, **shape, **paging)
            pages.append((page["Items"], page["Count"], page["ScannedCount"], page.get("LastEvaluatedKey")))
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        answers.append(pages)
    # and the items stored are as they were: no answer shares anything a later write changes
    client.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "B"}, "sk": {"S": "ROBOT#001"}},
        UpdateExpression="SET m.step = :s ADD ss :x",
        ExpressionAttributeValues={":s": {"S": "Finished"}, ":x": {"SS": ["z"]}},
    )
    answers.append(client.scan(TableName=TABLE)["Items"])
    return answers


def _transactions(client):
    """A transaction that fails (every change undone) and one that succeeds, and the items afterwards."""
    failing = [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "A"}, "sk": {"S": "NEW"}, "n": {"N": "1"}}}},
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "A"}, "sk": {"S": "ROBOT#001"}},
                "UpdateExpression": "SET n = :n REMOVE m",
                "ExpressionAttributeValues": {":n": {"N": "99"}},
            }
        },
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "B"}, "sk": {"S": "ROBOT#002"}}}},
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "C"}, "sk": {"S": "ROBOT#001"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]
    errors = []
    try:
        client.transact_write_items(TransactItems=failing)
    except client.exceptions.TransactionCanceledException as error:
        errors.append([reason["Code"] for reason in error.response["CancellationReasons"]])
    client.transact_write_items(TransactItems=failing[:3])
    return errors, client.scan(TableName=TABLE)["Items"]


def _run(operations, patched: bool):
    import boto3
    from moto import mock_aws

    with mock_aws():
        if patched:
            moto_atomic.install()
        try:
            client = boto3.client("dynamodb", region_name="us-east-1")
            _make_table(client)
            return operations(client)
        finally:
            if patched:
                moto_atomic.uninstall()


def test_moto_atomic_queries_answer_as_moto_does_page_by_page():
    # Given the same items, queried on the table's key and on an index, with moto's code and with the guard
    # Then every page (items, counts, last key) is the same, binary values and nested types included
    assert _run(_queries, patched=True) == _run(_queries, patched=False)


def test_moto_atomic_a_failed_transaction_changes_nothing_and_a_good_one_applies():
    # Given a transaction whose last check fails, then the same changes without it
    patched = _run(_transactions, patched=True)

    # Then the failed one put back the item it updated, the one it deleted and removed the one it put,
    # as moto's own table copies do, and the good one applied every change
    assert patched == _run(_transactions, patched=False)
    errors, items = patched
    assert errors == [["None", "None", "None", "ConditionalCheckFailed"]]
    keys = {(item["pk"]["S"], item["sk"]["S"]) for item in items}
    assert ("A", "NEW") in keys and ("B", "ROBOT#002") not in keys


def _updates(client):
    """Plain updates over and over (what the fast path applies) and every kind it leaves to moto: a new item,
    a key attribute, a set, an empty set, a function, a path, a failed condition (with the old item back),
    an invalid expression, a missing placeholder, a counter added to."""
    answers = []

    def call(**request):
        try:
            answer = client.update_item(TableName=TABLE, **request)
            answers.append(answer.get("Attributes"))
        except client.exceptions.ClientError as error:
            answers.append([error.response["Error"]["Code"], error.response.get("Item")])

    names = {"#p": "progress", "#n": "n", "#s": "seq", "#g": "gone"}
    for index in range(6):
        key = {"pk": {"S": "U"}, "sk": {"S": f"ROBOT#{index % 3}"}}
        call(
            Key=key,
            UpdateExpression="SET #p = :p, #s = :s ADD #n :one REMOVE #g",
            ConditionExpression="attribute_not_exists(#s) OR #s < :s",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                ":p": {"M": {"s": {"N": str(index)}}},
                ":s": {"N": str(index)},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
        )
        call(
            Key=key,
            UpdateExpression="SET #s = :s",
            ConditionExpression="#s = :old",
            ExpressionAttributeNames={"#s": "seq"},
            ExpressionAttributeValues={":s": {"N": "9"}, ":old": {"N": "99"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        call(Key=key, UpdateExpression="SET = broken")
    new_key = {"pk": {"S": "U"}, "sk": {"S": "NEW"}}
    call(
        Key=new_key,
        UpdateExpression="SET #a = :a",
        ExpressionAttributeNames={"#a": "a"},
        ExpressionAttributeValues={":a": {"S": "x"}},
        ReturnValues="ALL_NEW",
    )
    key = {"pk": {"S": "U"}, "sk": {"S": "ROBOT#0"}}
    call(
        Key=key,
        UpdateExpression="SET #k = :k",
        ExpressionAttributeNames={"#k": "gsi1pk"},
        ExpressionAttributeValues={":k": {"S": ""}},
    )
    call(
        Key=key,
        UpdateExpression="SET #k = :k",
        ExpressionAttributeNames={"#k": "sk"},
        ExpressionAttributeValues={":k": {"S": "other"}},
    )
    call(
        Key=key,
        UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "tags"},
        ExpressionAttributeValues={":t": {"SS": []}},
    )
    call(
        Key=key,
        UpdateExpression="ADD #t :t",
        ExpressionAttributeNames={"#t": "tags"},
        ExpressionAttributeValues={":t": {"SS": ["a"]}},
        ReturnValues="UPDATED_NEW",
    )
    call(
        Key=key,
        UpdateExpression="SET #n = #n + :one",
        ExpressionAttributeNames={"#n": "n"},
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_OLD",
    )
    call(
        Key=key,
        UpdateExpression="SET #p.#s = :s",
        ExpressionAttributeNames={"#p": "progress", "#s": "step"},
        ExpressionAttributeValues={":s": {"S": "Launching"}},
        ReturnValues="ALL_NEW",
    )
    call(Key=key, UpdateExpression="SET #a = :missing", ExpressionAttributeNames={"#a": "a"})
    call(
        Key=key,
        UpdateExpression="SET #a = :a",
        ExpressionAttributeNames={"#a": "a", "#unused": "b"},
        ExpressionAttributeValues={":a": {"S": "x"}},
    )
    call(
        Key=key,
        UpdateExpression="SET #a = :a",
        ExpressionAttributeNames={"#a": "a"},
        ExpressionAttributeValues={":a": {"S": "x" * 410_000}},
    )
    answers.append(client.get_item(TableName=TABLE, Key=key)["Item"])
    return answers


def _conditions(client):
    """The same condition texts over and over with other values and other names (what a kept parse must not
    mix up), and the ones moto refuses: a placeholder missing, a name or a value unused, a text that does not
    parse (the first and the last raise moto's own KeyError and ValueError), each twice."""
    answers = []

    def call(method, **request):
        try:
            answer = getattr(client, method)(TableName=TABLE, **request)
            answers.append(answer.get("Attributes"))
        except client.exceptions.ClientError as error:
            answers.append([error.response["Error"]["Code"], error.response["Error"]["Message"]])
        except (KeyError, ValueError) as error:  # moto's own, for a missing placeholder or a bad text
            answers.append([type(error).__name__, str(error)])

    for index in range(3):
        item = {"pk": {"S": "C"}, "sk": {"S": f"R#{index}"}, "st": {"S": "a"}, "other": {"S": "b"}}
        for _ in range(2):
            call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")
    for index in range(3):
        key = {"pk": {"S": "C"}, "sk": {"S": f"R#{index}"}}
        for want, name in (("a", "st"), ("b", "st"), ("b", "other"), ("a", "other"), ("a", "st")):
            call(
                "update_item",
                Key=key,
                UpdateExpression="SET #n = :n",
                ConditionExpression="#x = :want",
                ExpressionAttributeNames={"#n": "n", "#x": name},
                ExpressionAttributeValues={":n": {"N": str(index)}, ":want": {"S": want}},
                ReturnValues="ALL_NEW",
            )
        for allowed in (["a", "c"], ["c", "d"], ["a-b"]):
            values = {f":v-{position}": {"S": value} for position, value in enumerate(allowed)}
            call(
                "update_item",
                Key=key,
                UpdateExpression="SET #n = :n",
                ConditionExpression=f"#x IN ({', '.join(values)}) AND attribute_exists(pk)",
                ExpressionAttributeNames={"#n": "n", "#x": "st"},
                ExpressionAttributeValues={**values, ":n": {"N": str(len(allowed))}},
                ReturnValues="ALL_NEW",
            )
        for _ in range(2):
            condition = {"ConditionExpression": "#x = :want", "ExpressionAttributeNames": {"#x": "st"}}
            call("delete_item", Key=key, **condition, ExpressionAttributeValues={":want": {"S": "z"}})
            call("delete_item", Key=key, **condition)  # the value missing
            call(
                "delete_item",
                Key=key,
                ConditionExpression="#x = :want",
                ExpressionAttributeNames={"#x": "st", "#unused": "b"},
                ExpressionAttributeValues={":want": {"S": "a"}},
            )
            call(
                "delete_item",
                Key=key,
                **condition,
                ExpressionAttributeValues={":want": {"S": "a"}, ":unused": {"S": "b"}},
            )
            broken = "attribute_exists(pk) AND"
            call("put_item", Item={"pk": {"S": "C"}, "sk": {"S": "X"}}, ConditionExpression=broken)
        call("put_item", Item={"pk": {"S": "C"}, "sk": {"S": f"R#{index}"}, "st": {"S": "a"}})
    answers.append(client.scan(TableName=TABLE)["Items"])
    return answers


def test_moto_atomic_repeated_conditions_hold_as_moto_checks_them():
    # Given conditions repeated with other values and names, and ones moto refuses, each more than once
    # Then every answer and error is moto's own, and the items end the same
    assert _run(_conditions, patched=True) == _run(_conditions, patched=False)


def test_moto_atomic_keeps_a_conditions_parse_for_the_same_text_names_and_values():
    from moto.dynamodb.comparisons import ConditionExpressionParser

    def parsed(names, values):
        return ConditionExpressionParser("#x = :v AND attribute_exists(pk)", names, values).parse()

    with moto_atomic.serialized_dynamodb():
        first = parsed({"#x": "st"}, {":v": {"S": "a"}, ":other": {"N": "1"}})
        # The same text, names and used value: the same tree, whatever else the request's values hold
        assert parsed({"#x": "st"}, {":v": {"S": "a"}, ":other": {"N": "2"}}) is first
        # Another value or another name: parsed anew
        assert parsed({"#x": "st"}, {":v": {"S": "b"}}) is not first
        assert parsed({"#x": "other"}, {":v": {"S": "a"}}) is not first
    # moto's own parse is back: a tree per call
    assert parsed({"#x": "st"}, {":v": {"S": "a"}}) is not parsed({"#x": "st"}, {":v": {"S": "a"}})


def test_moto_atomic_repeated_update_expressions_apply_as_moto_applies_them():
    assert _run(_updates, patched=True) == _run(_updates, patched=False)


def test_moto_atomic_reads_racing_writes_on_the_same_item_never_fail():
    # Given one item that two threads keep growing and resetting (UpdateItem adding attributes, PutItem)
    # while two threads read it (GetItem, Query): moto's handlers read the item's attributes outside its
    # backend operations (answers, UpdateItem's copy of the item), which failed with "dictionary changed
    # size during iteration" (a 500) before the whole request ran under the guard
    import threading

    import boto3
    from moto import mock_aws

    with mock_aws():
        moto_atomic.install()
        try:
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="race",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            key = {"pk": {"S": "robot"}}
            client.put_item(TableName="race", Item=key)
            errors: list[str] = []
            writing = threading.Event()

            def writer() -> None:
                try:
                    for index in range(600):
                        client.update_item(
                            TableName="race",
                            Key=key,
                            UpdateExpression="SET #a = :v",
                            ExpressionAttributeNames={"#a": f"a{index % 200}"},
                            ExpressionAttributeValues={":v": {"S": "v" * 40}},
                        )
                        if index % 200 == 199:
                            client.put_item(TableName="race", Item=key)
                except Exception as error:  # noqa: BLE001 - the test collects what a client would get
                    errors.append(repr(error))

            def reader() -> None:
                while writing.is_set():
                    try:
                        client.get_item(TableName="race", Key=key)
                        client.query(
                            TableName="race",
                            KeyConditionExpression="pk = :p",
                            ExpressionAttributeValues={":p": key["pk"]},
                        )
                    except Exception as error:  # noqa: BLE001
                        errors.append(repr(error))

            writing.set()
            readers = [threading.Thread(target=reader) for _ in range(2)]
            writers = [threading.Thread(target=writer) for _ in range(2)]
            for thread in readers + writers:
                thread.start()
            for thread in writers:
                thread.join()
            writing.clear()
            for thread in readers:
                thread.join()
        finally:
            moto_atomic.uninstall()

    # Then no request failed
    assert errors == []


def test_moto_atomic_answers_items_as_plain_values_as_moto_does():
    import datetime
    from decimal import Decimal

    import moto.dynamodb.models.utilities as utilities
    import moto.dynamodb.responses as responses
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    # Given an answer with every kind of attribute value, nested, binary ones as text and as bytes, items,
    # a datetime, an item's attributes (a dict subclass) and plain values
    attributes = {
        "s": {"S": "x"},
        "n": {"N": "1.5"},
        "b": {"B": "AAE="},
        "bs": {"BS": ["AAE=", "AgM="]},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "null": {"NULL": True},
        "bool": {"BOOL": False},
        "l": {"L": [{"S": "y"}, {"M": {"deep": {"B": "BAU="}, "n": {"N": "2"}}}]},
        "m": {"M": {"inner": {"L": [{"BOOL": True}, {"NULL": True}]}}},
    }
    item = Item(
        DynamoType({"S": "pk"}), DynamoType({"S": "sk"}), {"pk": {"S": "pk"}, "sk": {"S": "sk"}, **attributes}
    )
    raw_bytes = DynamoType({"B": "AAE="})
    raw_bytes.value = b"\x00\x01"  # after a projection's round trip moto holds bytes
    answer = {
        "Responses": {"t": [item.to_json()["Attributes"], item.attrs]},
        "Items": [item, {"x": raw_bytes}],
        "Count": 2,
        "ScannedCount": Decimal("2"),
        "When": datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC),
        "Plain": ["text", 1, 1.5, True, None, b"bytes"],
    }
    expected = utilities.dynamo_to_dict(answer)

    # When the guard converts it
    with moto_atomic.serialized_dynamodb():
        converted = responses.dynamo_to_dict(answer)
        recursed = utilities.dynamo_to_dict(answer)

    # Then it is moto's answer exactly, types included, and moto's function is back afterwards
    assert converted == expected and recursed == expected
    assert repr(converted) == repr(expected)
    assert responses.dynamo_to_dict is utilities.dynamo_to_dict
    assert getattr(utilities.dynamo_to_dict, "__wrapped__", None) is None
