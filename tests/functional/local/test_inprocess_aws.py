"""The embedded AWS endpoint answers this process's clients in process, and everyone else over HTTP, from
the same backends: what one side writes the other reads."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from fleetwave.local import inprocess
from fleetwave.local.aws import MotoAws

TABLE = "fleetwave-inprocess"
HERE = {"pk": {"S": "here"}, "sk": {"S": "row"}}
THERE = {"pk": {"S": "there"}, "sk": {"S": "row"}}


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoAws]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws = MotoAws("127.0.0.1", 0, "us-east-1", TABLE, f"{TABLE}-idempotency", "bundles-inprocess")
    aws.start()
    yield aws
    aws.stop()


def _over_http(endpoint: MotoAws, code: str) -> object:
    """Run boto3 ``code`` in another process (so over HTTP); it prints one JSON value."""
    script = (
        "import boto3, json\n"
        f"def client(service): return boto3.client(service, endpoint_url={endpoint.url!r}, "
        "region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n" + code
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_in_process_writes_are_read_over_http_and_the_other_way_round(endpoint):
    # Given a client of this process on the embedded endpoint
    dynamodb = endpoint.client("dynamodb")
    answered_here = endpoint.route.requests

    # When it writes an item, and another process writes one over HTTP
    dynamodb.put_item(TableName=TABLE, Item={**HERE, "n": {"N": "1"}})
    _over_http(
        endpoint,
        f"client('dynamodb').put_item(TableName={TABLE!r}, Item={THERE})\nprint('null')",
    )

    # Then this process's request never left it, and each side reads what the other wrote
    assert endpoint.route.requests > answered_here
    seen_there = _over_http(
        endpoint,
        f"print(json.dumps(client('dynamodb').get_item(TableName={TABLE!r}, Key={HERE})['Item']))",
    )
    assert seen_there == {"pk": {"S": "here"}, "sk": {"S": "row"}, "n": {"N": "1"}}
    assert dynamodb.get_item(TableName=TABLE, Key=THERE)["Item"] == THERE


def test_in_process_s3_keeps_bodies_keys_and_metadata_as_http_does(endpoint):
    # Given an object uploaded over HTTP with an odd key, binary body and underscored metadata
    body = bytes(range(256)) * 10
    _over_http(
        endpoint,
        "client('s3').put_object(Bucket='bundles-inprocess', Key='app/x86 64/b+u n%dle.tar.gz', "
        f"Body={body!r}, Metadata={{'build_id': '42'}})\nprint('null')",
    )

    # When this process reads it, and writes one of its own with a streamed body
    s3 = endpoint.client("s3")
    fetched = s3.get_object(Bucket="bundles-inprocess", Key="app/x86 64/b+u n%dle.tar.gz")
    with open(__file__, "rb") as stream:
        s3.put_object(Bucket="bundles-inprocess", Key="here/file.py", Body=stream)

    # Then the bytes, the metadata name and the ETag are what HTTP sees
    assert fetched["Body"].read() == body
    assert fetched["Metadata"] == {"build_id": "42"}
    over_http = _over_http(
        endpoint,
        "o = client('s3').get_object(Bucket='bundles-inprocess', Key='here/file.py')\n"
        "print(json.dumps([len(o['Body'].read()), o['ETag']]))",
    )
    here = s3.head_object(Bucket="bundles-inprocess", Key="here/file.py")
    assert over_http == [here["ContentLength"], here["ETag"]]


def test_requests_for_any_other_address_are_sent_as_usual(endpoint):
    # Given the in-process route of a running endpoint
    route = endpoint.route

    # Then it answers only its own port on this machine
    assert route.handles(f"http://127.0.0.1:{endpoint.port}/")
    assert route.handles(f"http://localhost:{endpoint.port}/2015-03-31/functions")
    assert not route.handles(f"http://127.0.0.1:{endpoint.port + 1}/")
    assert not route.handles("https://dynamodb.us-east-1.amazonaws.com/")
    assert not route.handles(f"http://192.0.2.1:{endpoint.port}/")


def test_a_stopped_endpoint_answers_nothing_in_process():
    # Given an endpoint that ran and stopped
    aws = MotoAws("127.0.0.1", 0, "us-east-1", TABLE, f"{TABLE}-idempotency", "bundles-inprocess")
    aws.start()
    route, port = aws.route, aws.port
    made_while_running = aws.client("dynamodb")
    made_while_running.list_tables()
    aws.stop()

    # Then clients, old and new, go to the network, where nothing listens any more
    assert not route.handles(f"http://127.0.0.1:{port}/")
    made_after = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for client in (made_while_running, made_after):
        with pytest.raises(EndpointConnectionError):
            client.list_tables()


def test_in_process_dynamodb_answers_and_errors_are_what_http_gets(endpoint):
    # Given the same requests sent by this process (in process) and by another (over HTTP)
    code = f"""
import botocore.exceptions
c = client('dynamodb')
answers = []
def call(name, **kwargs):
    try:
        answer = getattr(c, name)(**kwargs)
        answer.pop('ResponseMetadata', None)
        answers.append(['ok', answer])
    except botocore.exceptions.ClientError as error:
        answers.append(['error', error.response['Error']['Code'], error.response['Error'].get('Message'),
                        error.response.get('CancellationReasons'),
                        error.response['ResponseMetadata']['HTTPStatusCode']])
key = {{'pk': {{'S': KEY}}, 'sk': {{'S': 'row'}}}}
call('put_item', TableName={TABLE!r}, Item={{**key, 'n': {{'N': '1'}}, 'b': {{'B': b'\\x00\\xff'}}}})
call('update_item', TableName={TABLE!r}, Key=key, UpdateExpression='SET n = n + :one',
     ConditionExpression='n = :n', ExpressionAttributeValues={{':one': {{'N': '1'}}, ':n': {{'N': '1'}}}},
     ReturnValues='ALL_NEW')
call('update_item', TableName={TABLE!r}, Key=key, UpdateExpression='SET n = :n',
     ConditionExpression='n = :old', ExpressionAttributeValues={{':n': {{'N': '5'}}, ':old': {{'N': '1'}}}})
call('get_item', TableName='no-such-table', Key=key)
call('get_item', TableName={TABLE!r}, Key={{'pk': {{'S': KEY}}}})
call('transact_write_items', TransactItems=[{{'ConditionCheck': {{'TableName': {TABLE!r}, 'Key': key,
     'ConditionExpression': 'attribute_not_exists(pk)'}}}}])
call('query', TableName={TABLE!r}, KeyConditionExpression='pk = :p',
     ExpressionAttributeValues={{':p': {{'S': KEY}}}})
"""
    here: dict = {"CLIENT": endpoint.client("dynamodb")}
    # The same script, run here with this process's (in-process) client
    exec("def client(service): return CLIENT\nKEY = 'here'\n" + code, here)  # noqa: S102
    there = _over_http(
        endpoint, "KEY = 'there'\n" + code + "\nimport json\nprint(json.dumps(answers, default=str))"
    )

    # Then every answer and every error (code, message, status) is the same, but for the key
    assert json.loads(json.dumps(here["answers"], default=str).replace("here", "there")) == there


def test_reads_answer_in_process_without_the_wire_exactly_as_over_it(endpoint):
    # Given items holding every attribute type (one also in an index), and two clients of this process:
    # one as the services have it, one told to take the wire route (the direct read handler removed)
    direct = endpoint.client("dynamodb")
    wire = endpoint.client("dynamodb")
    wire.meta.events.unregister(inprocess.DIRECT_EVENT, unique_id=inprocess.DIRECT_UNIQUE_ID)
    key = {"pk": {"S": "every-type"}, "sk": {"S": "row"}}
    item = {
        **key,
        "gsi1pk": {"S": "index"},
        "gsi1sk": {"S": "a"},
        "s": {"S": "text ü"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\xff"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"B": b"\x03"}}}]},
        "m": {"M": {"a": {"L": []}, "b": {"NULL": True}}},
    }
    direct.put_item(TableName=TABLE, Item=item)
    for n in range(5):
        direct.put_item(
            TableName=TABLE, Item={"pk": {"S": "every-type"}, "sk": {"S": f"row#{n}"}, "n": {"N": str(n)}}
        )
    sent: list[str] = []
    direct.meta.events.register(
        "before-send", lambda event_name, **kwargs: sent.append(event_name.rsplit(".", 1)[1])
    )
    other = {"pk": {"S": "every-type"}, "sk": {"S": "row#3"}}
    absent = {"pk": {"S": "absent"}, "sk": {"S": "row"}}
    partition = {
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": "every-type"}},
    }

    calls = [
        ("get_item", {"TableName": TABLE, "Key": key, "ConsistentRead": True}),
        ("get_item", {"TableName": TABLE, "Key": key, "ReturnConsumedCapacity": "TOTAL"}),
        ("get_item", {"TableName": TABLE, "Key": absent}),
        (
            "get_item",
            {
                "TableName": TABLE,
                "Key": key,
                "ProjectionExpression": "s, l[0], #m.a",
                "ExpressionAttributeNames": {"#m": "m"},
            },
        ),
        ("query", {"TableName": TABLE, **partition}),
        ("query", {"TableName": TABLE, **partition, "Limit": 2, "ScanIndexForward": False}),
        ("query", {"TableName": TABLE, **partition, "Limit": 2, "ExclusiveStartKey": other}),
        (
            "query",
            {
                "TableName": TABLE,
                **partition,
                "Select": "COUNT",
                "FilterExpression": "n > :one",
                "ExpressionAttributeValues": {":p": {"S": "every-type"}, ":one": {"N": "1"}},
            },
        ),
        (
            "query",
            {
                "TableName": TABLE,
                "IndexName": "gsi1",
                "KeyConditionExpression": "gsi1pk = :i AND begins_with(gsi1sk, :a)",
                "ExpressionAttributeValues": {":i": {"S": "index"}, ":a": {"S": "a"}},
            },
        ),
        ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [key, other, absent], "ConsistentRead": True}}}),
        (
            "batch_get_item",
            {
                "RequestItems": {TABLE: {"Keys": [other], "ProjectionExpression": "sk, n"}},
                "ReturnConsumedCapacity": "TOTAL",
            },
        ),
        # not taken directly: errors, a binary value in the request
        ("get_item", {"TableName": "no-such-table", "Key": key}),
        ("get_item", {"TableName": TABLE, "Key": {"pk": {"S": "every-type"}}}),
        (
            "query",
            {
                "TableName": TABLE,
                "KeyConditionExpression": "nope = :p",
                **{k: v for k, v in partition.items() if k != "KeyConditionExpression"},
            },
        ),
        ("batch_get_item", {"RequestItems": {TABLE: {"Keys": [key, key]}}}),
        (
            "query",
            {
                "TableName": TABLE,
                **partition,
                "FilterExpression": "b = :b",
                "ExpressionAttributeValues": {":p": {"S": "every-type"}, ":b": {"B": b"\x00\xff"}},
            },
        ),
        (
            "update_item",
            {
                "TableName": TABLE,
                "Key": other,
                "UpdateExpression": "SET n = :n",
                "ExpressionAttributeValues": {":n": {"N": "3"}},
            },
        ),
    ]

    def answer(client: object, name: str, request: dict) -> object:
        try:
            got = getattr(client, name)(**request)
        except ClientError as error:
            return ["error", error.response["Error"], error.response["ResponseMetadata"]["HTTPStatusCode"]]
        assert got.pop("ResponseMetadata")["HTTPStatusCode"] == 200
        return got

    # When each request goes both ways
    # Then the answers (and errors) are the same, and the plain reads never went to the wire
    for name, request in calls:
        assert answer(direct, name, request) == answer(wire, name, request), (name, request)
    assert answer(direct, *calls[0]) == {"Item": item}
    assert sent == ["GetItem", "GetItem", "Query", "BatchGetItem", "Query"]


def _writes(client: object, key: str) -> list[object]:
    """A sequence of writes (and reads of what they did) on the rows of ``key``; each answer, or error."""
    row = {"pk": {"S": key}, "sk": {"S": "row"}}
    second = {"pk": {"S": key}, "sk": {"S": "second"}}
    calls = [
        ("put_item", {"Item": {**row, "n": {"N": "1"}, "m": {"M": {"a": {"L": [{"S": "x"}]}}}}}),
        ("put_item", {"Item": {**row, "n": {"N": "9"}}, "ConditionExpression": "attribute_not_exists(pk)"}),
        (
            "put_item",
            {
                "Item": {**row, "n": {"N": "9"}},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        (
            "update_item",
            {
                "Key": row,
                "UpdateExpression": "SET n = n + :one, #s = :s REMOVE m",
                "ConditionExpression": "n = :n",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":n": {"N": "1"}, ":s": {"S": "InSync"}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        (
            "update_item",
            {
                "Key": row,
                "UpdateExpression": "SET n = :n",
                "ConditionExpression": "n = :old",
                "ExpressionAttributeValues": {":n": {"N": "5"}, ":old": {"N": "1"}},
            },
        ),
        ("update_item", {"Key": row, "UpdateExpression": "SET n = :n"}),  # a value that is not given
        (
            "update_item",
            {
                "Key": second,
                "UpdateExpression": "ADD c :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            },
        ),
        ("delete_item", {"Key": second, "ReturnValues": "ALL_OLD"}),
        ("delete_item", {"Key": second, "ConditionExpression": "attribute_exists(pk)"}),
        (
            "batch_write_item",
            {
                "RequestItems": {
                    TABLE: [
                        {"PutRequest": {"Item": {"pk": {"S": key}, "sk": {"S": f"b{n}"}, "n": {"N": str(n)}}}}
                        for n in range(3)
                    ]
                    + [{"DeleteRequest": {"Key": row}}]
                }
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": {**row, "n": {"N": "7"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": TABLE,
                            "Key": {"pk": {"S": key}, "sk": {"S": "b1"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            },
        ),
        (
            "transact_write_items",
            {
                "TransactItems": [
                    {"Put": {"TableName": TABLE, "Item": {**row, "n": {"N": "8"}}}},
                    {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": key}, "sk": {"S": "b2"}}}},
                ]
            },
        ),
        ("put_item", {"Item": {**row, "n": {"N": "1"}}, "TableName": "no-such-table"}),
        ("query", {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": key}}}),
    ]
    answers: list[object] = []
    for name, request in calls:
        try:
            table = {} if name in ("batch_write_item", "transact_write_items") else {"TableName": TABLE}
            got = getattr(client, name)(**{**table, **request})
        except ClientError as error:
            answers.append(
                ["error", {k: v for k, v in error.response.items() if k != "ResponseMetadata"},
                 error.response["ResponseMetadata"]["HTTPStatusCode"]]
            )  # fmt: skip
            continue
        assert got.pop("ResponseMetadata")["HTTPStatusCode"] == 200
        answers.append(got)
    return answers


def test_writes_answer_in_process_without_the_wire_exactly_as_over_it(endpoint):
    # Given two clients of this process: one as the services have it, one told to take the wire route
    direct = endpoint.client("dynamodb")
    wire = endpoint.client("dynamodb")
    wire.meta.events.unregister(inprocess.DIRECT_EVENT, unique_id=inprocess.DIRECT_UNIQUE_ID)
    sent: list[str] = []
    direct.meta.events.register(
        "before-send", lambda event_name, **kwargs: sent.append(event_name.rsplit(".", 1)[1])
    )

    # When the same writes go both ways, on rows of their own
    here, there = _writes(direct, "direct"), _writes(wire, "wire")

    # Then every answer and every error (code, message, the failed condition's item, status) is the same,
    # and only the reads that failed took the wire
    assert json.loads(json.dumps(here, default=str).replace("direct", "wire")) == json.loads(
        json.dumps(there, default=str)
    )
    assert [answer[1]["Error"]["Code"] for answer in here if isinstance(answer, list)] == [
        "ConditionalCheckFailedException",
        "ConditionalCheckFailedException",
        "ConditionalCheckFailedException",
        "ValidationException",
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ResourceNotFoundException",
    ]
    assert sent == []
