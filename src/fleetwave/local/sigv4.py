"""SigV4 verification the way API Gateway does it for AWS_IAM methods (scope ``execute-api``).

The verifier re-signs the request with botocore's own ``SigV4Auth`` (the signing key derived once per key
pair, day and region, as SigV4 verifiers keep it) from what the caller claims to have signed: the headers
listed in ``SignedHeaders`` (values as received), the path exactly as sent, the query string decoded and
re-encoded, and a payload hash computed here from the body (a caller's ``x-amz-content-sha256`` header is
never trusted for the payload line). Errors carry the error names and the wording API Gateway uses, so
that SDKs and users see the same 403s locally as in AWS.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# API Gateway (like every SigV4 service) accepts a request dated up to 5 minutes either side of now.
MAX_SKEW = dt.timedelta(minutes=5)

MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE = "IncompleteSignatureException"
INVALID = "InvalidSignatureException"
UNRECOGNIZED = "UnrecognizedClientException"

_MISMATCH_TEXT = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


class SignatureError(Exception):
    """A request API Gateway would reject with 403 before it reaches the integration."""

    status = 403

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """What arrived on the wire. ``path`` and ``query`` are exactly as sent (still percent-encoded)."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Caller:
    """Who signed a verified request."""

    access_key: str
    signed_at: dt.datetime


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


class _Resigner(SigV4Auth):
    """botocore's signer, told to sign exactly the headers the caller listed in SignedHeaders.

    botocore would otherwise pick the headers itself (it skips user-agent, for one), and a caller such as
    curl that signed a different set would never verify.
    """

    def __init__(self, credentials: Credentials, region: str, signed: HTTPHeaders) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed

    def signature(self, string_to_sign: str, request: AWSRequest) -> str:
        # botocore derives the signing key again for every request; it changes once a day per key pair.
        key = _signing_key(self.credentials.secret_key, request.context["timestamp"][:8], self._region_name)
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, day: str, region: str) -> bytes:
    """SigV4's derived key: HMAC chain of the secret over the day, region, service and terminator."""
    key = f"AWS4{secret}".encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def query_pairs(query: str) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs in wire order. ``+`` stays a plus: SigV4 clients percent-encode spaces."""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


class SigV4Verifier:
    """Verify header-signed SigV4 requests for one region against a fixed set of key pairs."""

    def __init__(
        self,
        credentials: Mapping[str, str],
        region: str = "us-east-1",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secrets = dict(credentials)
        self._region = region
        self._clock = clock

    def verify(self, request: SignedRequest) -> Caller:
        """The caller of a correctly signed request; raises ``SignatureError`` otherwise."""
        authorization = _header(request.headers, "authorization")
        if authorization is None:
            raise SignatureError(MISSING_TOKEN, "Missing Authentication Token")
        auth = _parse_authorization(authorization)
        signed_at, timestamp = _request_time(request.headers, authorization)
        if auth.service != SERVICE:
            raise SignatureError(INVALID, f"Credential should be scoped to correct service: '{SERVICE}'. ")
        if auth.region != self._region:
            raise SignatureError(
                INVALID, f"Credential should be scoped to a valid region, not '{auth.region}'. "
            )
        if auth.terminator != "aws4_request":
            raise SignatureError(
                INVALID,
                "Credential should be scoped with a valid terminator: 'aws4_request', "
                f"not '{auth.terminator}'. ",
            )
        secret = self._secrets.get(auth.access_key)
        if secret is None:
            raise SignatureError(UNRECOGNIZED, "The security token included in the request is invalid.")
        self._check_skew(signed_at)
        if auth.scope_date != timestamp[:8]:
            raise SignatureError(
                INVALID,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.scope_date}' != '{timestamp[:8]}', from '{timestamp}'.",
            )
        if "host" not in auth.signed_headers:
            raise SignatureError(
                INVALID, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )

        canonical, string_to_sign, expected = self._resign(request, auth, secret, timestamp)
        if not hmac.compare_digest(expected, auth.signature):
            raise SignatureError(
                INVALID,
                f"{_MISMATCH_TEXT}\n\nThe Canonical String for this request should have been\n"
                f"'{canonical}'\n\n"
                f"The String-to-Sign should have been\n'{string_to_sign}'\n",
            )
        return Caller(access_key=auth.access_key, signed_at=signed_at)

    def _check_skew(self, signed_at: dt.datetime) -> None:
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC).replace(microsecond=0)
        if signed_at < now - MAX_SKEW:
            raise SignatureError(
                INVALID,
                f"Signature expired: {_iso(signed_at)} is now earlier than {_iso(now - MAX_SKEW)} "
                f"({_iso(now)} - 5 min.)",
            )
        if signed_at > now + MAX_SKEW:
            raise SignatureError(
                INVALID,
                f"Signature not yet current: {_iso(signed_at)} is still later than {_iso(now + MAX_SKEW)} "
                f"({_iso(now)} + 5 min.)",
            )

    def _resign(
        self, request: SignedRequest, auth: _Authorization, secret: str, timestamp: str
    ) -> tuple[str, str, str]:
        signed = HTTPHeaders()
        for name in auth.signed_headers:
            values = [value for key, value in request.headers if key.lower() == name]
            for value in values or [""]:
                signed[name] = value
        # Only the path of this URL is read; the payload is hashed from the body because the URL is http.
        aws_request = AWSRequest(
            method=request.method.upper(),
            url="http://fleetwave.local" + (request.path or "/"),
            data=request.body,
            params=query_pairs(request.query),
        )
        aws_request.context["timestamp"] = timestamp
        signer = _Resigner(Credentials(auth.access_key, secret), self._region, signed)
        canonical = signer.canonical_request(aws_request)
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        return canonical, string_to_sign, signer.signature(string_to_sign, aws_request)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _parse_authorization(value: str) -> _Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(
            INCOMPLETE, f"Unsupported Authorization Type; expected '{ALGORITHM}'. Authorization={value}"
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, item = part.strip().partition("=")
        if sep:
            fields[key] = item
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    if missing:
        text = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise SignatureError(INCOMPLETE, f"{text} Authorization={value}")
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise SignatureError(
            INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{fields['Credential']}'",
        )
    return _Authorization(
        access_key=scope[0],
        scope_date=scope[1],
        region=scope[2],
        service=scope[3],
        terminator=scope[4],
        signed_headers=[name.strip().lower() for name in fields["SignedHeaders"].split(";") if name.strip()],
        signature=fields["Signature"],
    )


def _request_time(headers: Sequence[tuple[str, str]], authorization: str) -> tuple[dt.datetime, str]:
    """The signing time and its SigV4 timestamp form, from X-Amz-Date or else Date."""
    amz_date = _header(headers, "x-amz-date")
    if amz_date is not None:
        try:
            signed_at = _basic_timestamp(amz_date.strip())
        except ValueError:
            raise SignatureError(
                INCOMPLETE,
                f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                "See http://en.wikipedia.org/wiki/ISO_8601",
            ) from None
        return signed_at, amz_date.strip()
    date = _header(headers, "date")
    if date is not None:
        try:
            signed_at = parsedate_to_datetime(date).astimezone(dt.UTC)
        except (TypeError, ValueError):
            raise SignatureError(INCOMPLETE, f"Date must be an RFC 1123 date. Got '{date}'.") from None
        return signed_at, _iso(signed_at)
    raise SignatureError(
        INCOMPLETE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={authorization}",
    )


@functools.lru_cache(maxsize=16)
def _basic_timestamp(text: str) -> dt.datetime:
    # strptime is a good part of a verification; every request signed in the same second has the same one.
    return dt.datetime.strptime(text, SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime(SIGV4_TIMESTAMP)
