"""Tags live on the resource's own row (``tags`` map); these update single keys of it atomically."""

from __future__ import annotations

from collections.abc import Iterable

from fleetwave_service.core import dynamo
from fleetwave_service.core.dynamo import KeyLike


def check_limit(row: dict, new_tags: dict[str, str], maximum: int, error: type[Exception]) -> None:
    """Refuse (``error``) a TagResource that would leave the row with more than ``maximum`` tags (a key
    given again takes the new value, it is not a new tag)."""
    merged = {**(row.get("tags") or {}), **new_tags}
    if len(merged) > maximum:
        raise error(f"tags: a resource can have at most {maximum} tags; this would make {len(merged)}")


def set_tags(key: KeyLike, arn: str, tags: dict[str, str]) -> bool:
    """Add or overwrite ``tags``; False when the row is gone or now belongs to another ARN."""
    if not tags:
        return True
    names = {f"#k{i}": tag for i, tag in enumerate(tags)}
    params = {f"v{i}": value for i, value in enumerate(tags.values())}
    return _update(
        key,
        arn,
        "SET " + ", ".join(f"tags.#k{i} = :v{i}" for i in range(len(tags))),
        names,
        params,
    )


def remove_tags(key: KeyLike, arn: str, tag_keys: Iterable[str]) -> bool:
    names = {f"#k{i}": tag for i, tag in enumerate(dict.fromkeys(tag_keys))}
    if not names:
        return True
    return _update(key, arn, "REMOVE " + ", ".join(f"tags.{name}" for name in names), names, {})


def _update(key: KeyLike, arn: str, expression: str, names: dict[str, str], params: dict[str, str]) -> bool:
    return dynamo.update_expression(
        key, expression, condition="arn = :arn", names=names, values={"arn": arn, **params}
    )
