"""Make moto's DynamoDB apply each operation atomically, as DynamoDB itself does, and at DynamoDB's cost.

Atomicity. moto checks a condition and applies the write in separate steps, and undoes a failed
transaction by restoring backups. Requests on different threads (the local API Gateway serves each request
on its own thread, and the state machine's Lambda steps and the status path run beside them) can therefore
both pass the same condition, or lose each other's writes: two racing CreateDeploymentJob calls could both
take a fleet's job lock. Real DynamoDB never does either, and Fleetwave's one-job-per-fleet rule,
idempotency and exactly-once report handling rely on it (docs/decisions.md). The guard wraps the operations
of moto's ``DynamoDBBackend`` in one process-wide re-entrant lock. (Per-table locks would buy nothing: every
operation is pure Python under the GIL, and almost all of them go to the one Fleetwave table.)

Cost. Two of moto's operations cost what the whole table holds, not what they touch, which made a local
rollout quadratic in fleet size (docs/performance.md):

- a Query gathers and sorts every item of the table before it keeps the partition it was asked for; here a
  query on the table's own key reads its partition only, and one on an index skips the first sort (the
  index query sorts its matches itself); and it deep-copies every match, which only a projection needs:
  here a query on the table's key without one copies the list of matches (``_CopyDuringQuery``);
- TransactWriteItems backs up every table it touches with a deep copy of the whole table, once per action,
  to roll back on failure; here it backs up the items the transaction names (what it can change), and puts
  exactly those back when it fails.

And one that costs what the answer holds, but slowly: moto serialises every attribute value of a response
by walking botocore's shape model member by member (the largest share of a rollout's time in the profile,
docs/performance.md). Attribute values are already in their wire form when they reach the serialiser
(moto's ``dynamo_to_dict``, binary as bytes), so here they are written out directly (binary base64-encoded,
as the serialiser does).

And UpdateItem, a rollout's commonest request, costs moto more than anything else: it parses the update
expression from its text (twice) and runs ten validation passes over the parsed tree, then the condition is
lexed and parsed (twice). Here the parse of each update text is kept (moto's validator works on a copy of
the tree, never on the parsed one), the lexing of each condition text is kept (the values are looked up
again each time), so is each condition's parsed tree, per text, names and the values it uses (a PutItem's
condition is parsed twice too), and an update that only assigns, adds to a number or removes top-level
attributes named by placeholders (``SET #a = :a, ... ADD #n :n REMOVE #r``: what core/dynamo.py writes) of
an existing item is applied directly after moto's own condition check. Anything else (a new item, a key
attribute, a set, a path, a function, a missing placeholder, a table with a stream) goes through moto's own
code, which also raises every error.

And every answer's items are turned into plain values by moto's ``dynamo_to_dict``, which asks every string
and number whether it is a datetime, an attribute value or has a ``to_json`` before returning it unchanged;
here plain values, dicts, lists and non-binary attribute values are converted directly.

All of them give the answers moto gives; the tests of this module compare them with moto's own on the same
data.

Everything is reference-counted: the embedded AWS endpoint (``fleetwave serve``) and in-process tests may
both install it, in any order, and moto's own code comes back when the last one uninstalls. It patches
moto internals, which is why moto is pinned exactly (pyproject); a missing attribute fails loudly.
"""

from __future__ import annotations

import copy
import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Every backend operation that reads or writes items (what a condition can race with).
METHODS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
)

# moto's request handlers read items outside the backend's operations too (the answer built from an item,
# UpdateItem's copy of the item before the update): the whole request runs under the same lock, or a write
# on another thread changes an item's attributes while they are read ("dictionary changed size during
# iteration", a 500 to the caller). DynamoDB reads and writes are atomic per item.
HANDLER_ACTIONS = METHODS

_operations_lock = threading.RLock()
_install_lock = threading.Lock()
_installed = 0
_originals: dict[str, Any] = {}
_handler_originals: dict[str, Any] = {}
_table_originals: dict[str, Any] = {}
_module_copy: Any = None
_moto_originals: dict[str, Any] = {}
# Per thread: which items the Table.query in progress needs (``all_items`` reads it), and whether a
# transaction is in progress (moto's table backups become item backups).
_scope = threading.local()


def _serialized(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _operations_lock:
            return method(*args, **kwargs)

    wrapper.__fleetwave_serialized__ = True  # type: ignore[attr-defined]
    return wrapper


# --- Query: the partition, not the table -----------------------------------------------------------------
def _scoped_query(query: Any) -> Any:
    @functools.wraps(query)
    def wrapper(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # Table.query(hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
        #             projection_expressions, index_name=None, ...): the backend passes index_name 8th.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        projection = args[5] if len(args) > 5 else kwargs.get("projection_expressions")
        previous = getattr(_scope, "query", None)
        previous_shallow = getattr(_scope, "shallow_results", False)
        _scope.shallow_results = not index_name and not projection
        if index_name:
            _scope.query = ("index",)
        else:
            # The key condition's sort-key part: (range_comparison, range_objs, the attributes it names).
            comparison = args[0] if args else kwargs.get("range_comparison")
            objs = args[1] if len(args) > 1 else kwargs.get("range_objs")
            named = [condition[0] for condition in kwargs.get("range_key_conditions") or []]
            _scope.query = ("partition", hash_key, (comparison, objs, named) if comparison else None)
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _scope.query = previous
            _scope.shallow_results = previous_shallow

    return wrapper


class _CopyDuringQuery:
    """moto.dynamodb.models.table's ``copy`` while this module is installed: a Table.query on the table's own
    key without a projection (what the stores ask) copies its list of matches, not every item in it. moto
    deep-copies each match (most of a query's cost: a job's 1,000 robot rows took finalize half a second)
    so that a projection cannot change the stored item; without one the matches are only read (the filter,
    their size, the answer: ``DynamoResult`` turns them into plain values at once), and the request's lock
    (``_serialized``) keeps writes away until the answer is built."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if type(value) is list and getattr(_scope, "shallow_results", False):
            return list(value)
        return copy.deepcopy(value, memo)


def _scoped_all_items(all_items: Any) -> Any:
    @functools.wraps(all_items)
    def wrapper(self: Any) -> Any:
        scope = getattr(_scope, "query", None)
        if scope is None:
            return all_items(self)
        if scope[0] == "partition":
            # The non-index query keeps ``item.hash_key == hash_key`` and sorts by range key itself.
            partition = self.items.get(scope[1])
            if partition is None:
                return []
            if not self.range_key_attr:
                return [partition]
            if scope[2] is None or scope[2][2] not in ([], [self.range_key_attr]):
                return list(partition.values())
            # Only the items the sort-key condition selects, as DynamoDB reads them: moto's query would size
            # every item of the partition (its 1 MB page limit) and sort them all before comparing their
            # sort keys, O(partition) per query (a job's wave rows, under 10,000 robot rows). moto compares
            # the matches again, the same way.
            # moto's DynamoType.compare casts the condition's values again for every item; cast once here, and
            # read a string sort key's value directly (what its cast gives for type S).
            comparison, objs, _ = scope[2]
            from moto.dynamodb.comparisons import get_comparison_func

            matches = get_comparison_func(comparison)
            if matches is None:
                return [item for item in partition.values() if item.range_key.compare(comparison, objs)]
            values = [obj.cast_value for obj in objs]
            return [
                item
                for item in partition.values()
                if matches(
                    item.range_key.value if item.range_key.type == "S" else item.range_key.cast_value, *values
                )
            ]
        # An index query filters every item on the index keys, then sorts its matches (sorted_items).
        items: list[Any] = []
        for hash_set in self.items.values():
            if self.range_key_attr:
                items.extend(hash_set.values())
            else:
                items.append(hash_set)
        return items

    return wrapper


# --- TransactWriteItems: item backups, not table copies --------------------------------------------------
class _CopyDuringTransaction:
    """moto.dynamodb.models' ``copy`` while this module is installed: inside a transaction, the backup of
    a whole table is the table itself (the transaction's own item backups undo a failure)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        if isinstance(value, Table) and getattr(_scope, "transaction", False):
            return value
        return copy.deepcopy(value, memo)


def _item_key(table: Any, op_type: str, op: dict[str, Any]) -> tuple[Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    attributes = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(attributes, dict) or table.hash_key_attr not in attributes:
        return None  # moto rejects it; nothing of it was applied
    hash_value = DynamoType(attributes[table.hash_key_attr])
    if table.range_key_attr is None:
        return hash_value, None
    if table.range_key_attr not in attributes:
        return None
    return hash_value, DynamoType(attributes[table.range_key_attr])


def _backups(backend: Any, transact_items: Any) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash, range, deep copy of the item or None) for every item the transaction names."""
    saved = []
    for entry in transact_items or []:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        if op_type not in ("Put", "Update", "Delete") or not isinstance(op, dict):
            continue
        table = backend.tables.get(op.get("TableName"))
        key = _item_key(table, op_type, op) if table is not None else None
        if key is None:
            continue
        hash_value, range_value = key
        try:
            current = table.get_item(hash_value, range_value)
        except Exception:  # noqa: BLE001 - a key moto refuses: moto raises it again, nothing applied
            continue
        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
    return saved


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            partition = table.items.get(hash_value)
            if partition is not None:
                partition.pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


def _item_backed_transaction(transact: Any) -> Any:
    @functools.wraps(transact)
    def wrapper(self: Any, transact_items: Any, *args: Any, **kwargs: Any) -> Any:
        saved = _backups(self, transact_items)
        _scope.transaction = True
        try:
            return transact(self, transact_items, *args, **kwargs)
        except BaseException:
            # moto "restored" each table from its backup, which was the table itself; undo item by item.
            _restore(saved)
            raise
        finally:
            _scope.transaction = False

    return wrapper


# --- responses: attribute values written as they are ------------------------------------------------------
def _wire(value: Any) -> Any:
    """An attribute value (moto's ``dynamo_to_dict`` form) as DynamoDB's JSON writes it; None: not one."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    (kind, inner), *_ = value.items()
    if kind in ("S", "N", "BOOL", "NULL", "SS", "NS"):
        return {kind: inner}
    if kind == "M" and isinstance(inner, dict):
        members = {}
        for name, member in inner.items():
            wired = _wire(member)
            if wired is None:
                return None
            members[name] = wired
        return {"M": members}
    if kind == "L" and isinstance(inner, list):
        elements = []
        for element in inner:
            wired = _wire(element)
            if wired is None:
                return None
            elements.append(wired)
        return {"L": elements}
    if kind == "B":
        return {"B": _base64(inner)}
    if kind == "BS" and isinstance(inner, list):
        return {"BS": [_base64(element) for element in inner]}
    return None


def _base64(value: Any) -> Any:
    import base64

    return base64.b64encode(value).decode("utf-8") if isinstance(value, bytes | bytearray) else value


def _direct_attribute_values(serialize_structure: Any) -> Any:
    @functools.wraps(serialize_structure)
    def wrapper(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and self.operation_model.service_model.service_name == ("dynamodb")
        ):
            wired = _wire(value)
            if wired is not None:
                self._default_serialize(serialized, wired, shape, key)
                return
        serialize_structure(self, serialized, value, shape, key)

    return wrapper


# --- UpdateItem: plain updates applied directly, condition lexing kept -------------------------------------
_PLAIN_PART = {
    "SET": re.compile(r"^\s*(#\w+)\s*=\s*(:\w+)\s*$"),
    "ADD": re.compile(r"^\s*(#\w+)\s+(:\w+)\s*$"),
    "REMOVE": re.compile(r"^\s*(#\w+)()\s*$"),
}


@functools.lru_cache(maxsize=1024)
def _plain_update(expression: str) -> tuple[tuple[str, str, str], ...] | None:
    """(action, name placeholder, value placeholder) of a plain update expression; None for any other."""
    parts = re.split(r"\b(SET|ADD|REMOVE)\b", expression.strip())
    if parts[0].strip() or len(parts) < 3:
        return None
    actions: list[tuple[str, str, str]] = []
    seen_clauses: set[str] = set()
    for keyword, body in zip(parts[1::2], parts[2::2], strict=True):
        if keyword in seen_clauses:
            return None
        seen_clauses.add(keyword)
        for part in body.split(","):
            match = _PLAIN_PART[keyword].match(part)
            if match is None:
                return None
            actions.append((keyword, match.group(1), match.group(2)))
    names = [name for _, name, _ in actions]
    return tuple(actions) if len(set(names)) == len(names) else None


def _plain_update_item(update_item: Any) -> Any:
    @functools.wraps(update_item)
    def wrapper(
        self: Any, table_name: str, key: dict[str, Any], update_expression: str, *args: Any, **kwargs: Any
    ) -> Any:
        from moto.dynamodb.comparisons import create_condition_expression_parser
        from moto.dynamodb.exceptions import ConditionalCheckFailed, ItemSizeTooLarge
        from moto.dynamodb.models.dynamo_type import DynamoType

        names = kwargs.get("expression_attribute_names") or {}
        values = kwargs.get("expression_attribute_values") or {}
        plan = _plain_update(update_expression) if update_expression and not args else None
        table = self.tables.get(table_name)
        if plan is None or table is None or table.stream_shard is not None:
            return update_item(self, table_name, key, update_expression, *args, **kwargs)
        if kwargs.get("attribute_updates") or kwargs.get("expected"):
            return update_item(self, table_name, key, update_expression, *args, **kwargs)
        hash_key, range_key = table.hash_key_attr, table.range_key_attr
        if hash_key not in key or (range_key is not None and range_key not in key):
            return update_item(self, table_name, key, update_expression, *args, **kwargs)
        item = table.get_item(DynamoType(key[hash_key]), DynamoType(key[range_key]) if range_key else None)
        changes = []
        for action, name_placeholder, value_placeholder in plan:
            name = names.get(name_placeholder)
            value = values.get(value_placeholder) if value_placeholder else None
            if (
                item is None
                or name is None
                or name in (hash_key, range_key)
                or (
                    value_placeholder
                    and not _plain_value(value, action, item.attrs.get(name), name in table.attribute_keys)
                )
            ):
                return update_item(self, table_name, key, update_expression, *args, **kwargs)
            changes.append((action, name, value))
        condition = kwargs.get("condition_expression")
        if condition and not create_condition_expression_parser(condition, names, values).parse().expr(item):
            if kwargs.get("return_values_on_condition_check_failure") == "ALL_OLD":
                raise ConditionalCheckFailed(item=item.to_json()["Attributes"])
            raise ConditionalCheckFailed
        before = {name: item.attrs.get(name) for _, name, _ in changes}
        try:
            for action, name, value in changes:
                if action == "REMOVE":
                    item.attrs.pop(name, None)
                elif action == "ADD" and item.attrs.get(name) is not None:
                    item.attrs[name] = item.attrs[name] + DynamoType(value)
                else:
                    item.attrs[name] = DynamoType(value)
        except ItemSizeTooLarge:
            for name, old in before.items():
                if old is None:
                    item.attrs.pop(name, None)
                else:
                    dict.__setitem__(item.attrs, name, old)
            return update_item(self, table_name, key, update_expression, *args, **kwargs)
        return item

    return wrapper


def _plain_value(value: Any, action: str, current: Any, is_key_of_an_index: bool) -> bool:
    """A value moto's validation passes would accept unchanged for this action (else moto decides)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (kind, inner), *_ = value.items()
    if action == "ADD":
        return kind == "N" and (current is None or current.type == "N")
    if kind in ("SS", "NS", "BS") and not inner:
        return False  # an empty set: moto refuses it
    if is_key_of_an_index and kind in ("S", "B") and inner == "":
        return False
    return kind in ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS")


def _kept_lexing(lex: Any) -> Any:
    cache: dict[tuple[Any, ...], list[Any]] = {}

    @functools.wraps(lex)
    def wrapper(self: Any) -> Any:
        from collections import deque

        names = self.expression_attribute_names or {}
        key = (self.condition_expression, tuple(sorted(names.items())))
        nodes = cache.get(key)
        if nodes is None:
            lexed = lex(self)
            if len(cache) < 1024:
                cache[key] = list(lexed)
            return lexed
        value_kind = self.Kind.EXPRESSION_ATTRIBUTE_VALUE
        return deque(
            node._replace(value=self._lookup_expression_attribute_value(node.text))
            if node.kind == value_kind
            else node
            for node in nodes
        )

    return wrapper


# A value placeholder: ':' and a run of what moto's lexer takes for an operand (comparisons.py
# ``_lex_one_node``).
_VALUE_PLACEHOLDER = re.compile(r":[A-z0-9\-_]+")
_PARSES_KEPT = 4096


def _kept_parsing(parse: Any) -> Any:
    """moto parses a condition into a tree of operations twice per request (the handler checks it, the
    backend evaluates it). A condition's tree is a function of its text, its names and the values of the
    placeholders it uses (what the tree embeds), and evaluating it changes nothing in it: kept per those, with
    the names and values the parse found (which the handler checks for unused ones). A text that fails to
    parse, or uses a placeholder it was not given, goes to moto every time (it raises)."""
    cache: dict[tuple[Any, ...], tuple[Any, list[str], list[str]]] = {}

    @functools.wraps(parse)
    def wrapper(self: Any) -> Any:
        expression = self.condition_expression
        if not expression:
            return parse(self)
        values = self.expression_attribute_values or {}
        try:
            used = tuple((name, repr(values[name])) for name in _VALUE_PLACEHOLDER.findall(expression))
        except KeyError:
            return parse(self)
        names = self.expression_attribute_names or {}
        key = (expression, tuple(sorted(names.items())), used)
        kept = cache.get(key)
        if kept is None:
            names_before, values_before = len(self.expr_attr_names_found), len(self.expr_attr_values_found)
            op = parse(self)
            if len(cache) >= _PARSES_KEPT:
                cache.clear()
            cache[key] = kept = (
                op,
                self.expr_attr_names_found[names_before:],
                self.expr_attr_values_found[values_before:],
            )
            return op
        op, names_found, values_found = kept
        self.expr_attr_names_found.extend(names_found)
        self.expr_attr_values_found.extend(values_found)
        return op

    return wrapper


def _quick_results(to_dict: Any) -> Any:
    """moto turns every answer's items into plain values (``dynamo_to_dict``), asking each string and number
    whether it is a datetime, an attribute value or has a ``to_json`` before it returns it unchanged: about a
    sixteenth of a 1,000-robot rehearsal's time, mostly the status path's batch reads. Here plain values,
    plain dicts and lists and non-binary attribute values are converted directly, and anything else (binary
    values, items, datetimes, subclasses) goes to moto's own, whose recursion comes back here."""
    from decimal import Decimal

    from moto.dynamodb.models.dynamo_type import DynamoType

    plain = {str, int, float, bool, type(None), Decimal, bytes}

    def convert(obj: Any) -> Any:
        kind = type(obj)
        if kind in plain:
            return obj
        if kind is dict:
            return {key: convert(value) for key, value in obj.items()}
        if kind is list:
            return [convert(item) for item in obj]
        if kind is DynamoType and obj.type != "B" and obj.type != "BS":
            return {obj.type: convert(obj.value)}
        return to_dict(obj)

    convert.__wrapped__ = to_dict  # type: ignore[attr-defined]
    return convert


# --- install -----------------------------------------------------------------------------------------------
def install() -> None:
    """Serialise moto's DynamoDB operations and scope its queries and transactions (until ``uninstall``)."""
    global _installed, _module_copy
    import moto.dynamodb.models as models
    import moto.dynamodb.models.table as table_module
    import moto.dynamodb.models.utilities as utilities
    import moto.dynamodb.responses as responses_module
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.responses import DynamoHandler

    with _install_lock:
        if _installed == 0:
            for name in HANDLER_ACTIONS:
                _handler_originals[name] = getattr(DynamoHandler, name)
                setattr(DynamoHandler, name, _serialized(_handler_originals[name]))
            for name in METHODS:
                # A missing method means moto changed under the pin: fail loudly, never run unguarded.
                original = getattr(DynamoDBBackend, name)
                _originals[name] = original
                wrapped = _item_backed_transaction(original) if name == "transact_write_items" else original
                setattr(DynamoDBBackend, name, _serialized(wrapped))
            for name, patch in (("query", _scoped_query), ("all_items", _scoped_all_items)):
                original = getattr(Table, name)
                _table_originals[name] = original
                setattr(Table, name, patch(original))
            _module_copy = models.copy
            models.copy = _CopyDuringTransaction()  # type: ignore[assignment]
            if table_module.copy is not copy:
                raise RuntimeError("moto's DynamoDB table module changed under the pin (its copy)")
            table_module.copy = _CopyDuringQuery()  # type: ignore[assignment]
            _moto_originals["update"] = DynamoDBBackend.update_item
            DynamoDBBackend.update_item = _serialized(_plain_update_item(_moto_originals["update"]))
            _moto_originals["lex"] = ConditionExpressionParser._lex_condition_expression
            ConditionExpressionParser._lex_condition_expression = _kept_lexing(_moto_originals["lex"])
            _moto_originals["condition"] = ConditionExpressionParser.parse
            ConditionExpressionParser.parse = _kept_parsing(_moto_originals["condition"])  # type: ignore[method-assign]
            _moto_originals["parse"] = UpdateExpressionParser.__dict__["make"]
            UpdateExpressionParser.make = classmethod(  # type: ignore[method-assign]
                functools.lru_cache(maxsize=1024)(_moto_originals["parse"].__func__)
            )
            if responses_module.dynamo_to_dict is not utilities.dynamo_to_dict:
                raise RuntimeError("moto's DynamoDB responses changed under the pin (dynamo_to_dict)")
            _moto_originals["to_dict"] = utilities.dynamo_to_dict
            utilities.dynamo_to_dict = responses_module.dynamo_to_dict = _quick_results(
                _moto_originals["to_dict"]
            )
            _moto_originals["structure"] = BaseJSONSerializer._serialize_type_structure
            BaseJSONSerializer._serialize_type_structure = _direct_attribute_values(  # type: ignore[method-assign]
                _moto_originals["structure"]
            )
        _installed += 1


def uninstall() -> None:
    """Undo one ``install``; the last one puts moto's own code back."""
    global _installed, _module_copy
    import moto.dynamodb.models as models
    import moto.dynamodb.models.table as table_module
    import moto.dynamodb.models.utilities as utilities
    import moto.dynamodb.responses as responses_module
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.responses import DynamoHandler

    with _install_lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed == 0:
            for name, original in _handler_originals.items():
                setattr(DynamoHandler, name, original)
            _handler_originals.clear()
            for name, original in _originals.items():
                setattr(DynamoDBBackend, name, original)
            _originals.clear()
            for name, original in _table_originals.items():
                setattr(Table, name, original)
            _table_originals.clear()
            models.copy = _module_copy  # type: ignore[assignment]
            table_module.copy = copy  # moto's table module imports the standard one
            _module_copy = None
            BaseJSONSerializer._serialize_type_structure = _moto_originals.pop(  # type: ignore[method-assign]
                "structure"
            )
            UpdateExpressionParser.make = _moto_originals.pop("parse")  # type: ignore[method-assign]
            ConditionExpressionParser._lex_condition_expression = _moto_originals.pop("lex")
            ConditionExpressionParser.parse = _moto_originals.pop("condition")  # type: ignore[method-assign]
            utilities.dynamo_to_dict = responses_module.dynamo_to_dict = _moto_originals.pop("to_dict")
            _moto_originals.pop("update")


def is_installed() -> bool:
    return _installed > 0


@contextmanager
def serialized_dynamodb() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()
