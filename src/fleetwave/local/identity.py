"""Robot identity on the local stack: a certificate authority of its own, and IoT's registry as the judge.

IoT Core signs the certificates it issues (CreateKeysAndCertificate, CreateCertificateFromCsr) with
Amazon's CA and lets a device in when its certificate is registered, ACTIVE and attached to the thing it
connects as. `fleetwave serve` does the same with its **local CA** (created on first start under
``--identity-dir``, default ``~/.fleetwave/serve/identity``, and kept): moto's IoT is made to sign what it
issues with that CA, and the broker's mTLS listener trusts the CA, then asks moto's registry (in this
process) about the certificate of every client (``registry_identity``).

Files in the identity directory (docs/robot-identity.md):

    ca.pem  ca.key          the local CA (the key never leaves this directory; 0600)
    broker.pem broker.key   the mTLS listener's server certificate (localhost, 127.0.0.1, ::1, the host)
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_IDENTITY_DIR = Path.home() / ".fleetwave" / "serve" / "identity"
CA_NAME = "Fleetwave local CA"
# Robot certificates issued locally live as long as IoT Core's (CreateKeysAndCertificate: until 2049);
# a local stack is for rehearsals, so ten years is plenty.
CERT_DAYS = 3650
ROBOT_POLICY_NAME = "fleetwave-robot-policy"
CLAIM_POLICY_NAME = "fleetwave-claim-policy"
PROVISIONING_TEMPLATE_NAME = "fleetwave-robots"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (created 0600, never world-readable for an instant)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def private_key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class LocalCA:
    """The local CA in ``directory``: loaded when it is there, created (with the broker's certificate)
    when it is not."""

    def __init__(self, directory: Path, key: Any, certificate: x509.Certificate) -> None:
        self.directory = directory
        self._key = key
        self.certificate = certificate

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_cert_file(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def broker_key_file(self) -> Path:
        return self.directory / "broker.key"

    @property
    def ca_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @classmethod
    def load_or_create(cls, directory: Path, hosts: tuple[str, ...] = ()) -> LocalCA:
        directory = Path(directory).expanduser()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_path, cert_path = directory / "ca.key", directory / "ca.pem"
        if key_path.is_file() and cert_path.is_file():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
            certificate = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_now() - datetime.timedelta(minutes=5))
                .not_valid_after(_now() + datetime.timedelta(days=CERT_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=True,
                        key_cert_sign=True,
                        crl_sign=True,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256())
            )
            _write_private(key_path, private_key_pem(key))
            cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        ca = cls(directory, key, certificate)
        ca._ensure_broker_certificate(hosts)
        return ca

    def sign(self, public_key: Any, subject: x509.Name, *, server_names: tuple[str, ...] = ()) -> str:
        """A certificate for ``public_key`` signed by this CA (PEM): a client certificate, or with
        ``server_names`` a server one."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if server_names:
            alternatives: list[x509.GeneralName] = []
            for name in server_names:
                try:
                    alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alternatives.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return (
            builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")
        )

    def _ensure_broker_certificate(self, hosts: tuple[str, ...]) -> None:
        names = tuple(
            dict.fromkeys(
                ("localhost", "127.0.0.1", "::1", *[h for h in hosts if h not in ("", "0.0.0.0", "::")])
            )
        )
        if self.broker_cert_file.is_file() and self.broker_key_file.is_file():
            current = x509.load_pem_x509_certificate(self.broker_cert_file.read_bytes())
            try:
                san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                covered = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
                    str(v) for v in san.get_values_for_type(x509.IPAddress)
                }
            except x509.ExtensionNotFound:
                covered = set()
            if current.issuer == self.certificate.subject and covered >= set(names):
                return
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fleetwave local broker")])
        _write_private(self.broker_key_file, private_key_pem(key))
        self.broker_cert_file.write_text(self.sign(key.public_key(), subject, server_names=names))


def certificate_id(der: bytes) -> str:
    """IoT's certificate id: the SHA-256 of the certificate's DER encoding."""
    return hashlib.sha256(der).hexdigest()


# --- moto's IoT issues certificates signed by the local CA ------------------------------------------------
_install_lock = threading.Lock()
_originals: dict[str, Any] = {}


def install_signer(ca: LocalCA) -> None:
    """Make moto's IoT sign the certificates it issues with ``ca`` (as IoT Core signs with Amazon's CA),
    with the requester's public key (moto gives a certificate from a CSR a key of its own), and number them
    as IoT does (the SHA-256 of the DER form). Undone by ``uninstall_signer``."""
    from moto.core.config import default_user_config
    from moto.iot.models import IoTBackend

    with _install_lock:
        if _originals:
            uninstall_signer_locked(IoTBackend, default_user_config)
        _originals["_generate_certificate_pem"] = IoTBackend.__dict__["_generate_certificate_pem"]
        _originals["create_certificate_from_csr"] = IoTBackend.__dict__["create_certificate_from_csr"]
        _originals["iot_config"] = default_user_config.get("iot")
        default_user_config["iot"] = {"use_valid_cert": True}

        def generate(self: Any, domain_name: str, subject: x509.Name, key: Any = None) -> str:
            key = key or ec.generate_private_key(ec.SECP256R1())
            return ca.sign(key.public_key(), subject)

        def from_csr(self: Any, csr: str, set_as_active: bool) -> Any:
            request = x509.load_pem_x509_csr(csr.encode("utf-8"))
            if not request.is_signature_valid:
                from moto.iot.exceptions import InvalidRequestException

                raise InvalidRequestException("the certificate signing request's signature is not valid")
            pem = ca.sign(request.public_key(), request.subject)
            return self.register_certificate(
                pem, ca_certificate_pem=None, set_as_active=set_as_active, status="INACTIVE"
            )

        IoTBackend._generate_certificate_pem = generate  # type: ignore[method-assign]
        IoTBackend.create_certificate_from_csr = from_csr  # type: ignore[method-assign]


def uninstall_signer() -> None:
    from moto.core.config import default_user_config
    from moto.iot.models import IoTBackend

    with _install_lock:
        uninstall_signer_locked(IoTBackend, default_user_config)


def uninstall_signer_locked(backend_class: Any, config: Any) -> None:
    if not _originals:
        return
    backend_class._generate_certificate_pem = _originals.pop("_generate_certificate_pem")
    backend_class.create_certificate_from_csr = _originals.pop("create_certificate_from_csr")
    previous = _originals.pop("iot_config")
    if previous is None:
        config.pop("iot", None)
    else:
        config["iot"] = previous


# --- who a certificate is: IoT's registry (moto's, in this process) ---------------------------------------
@dataclass(frozen=True)
class Identity:
    """What a connected client may do: ``robot`` (its own topics, by ``thing``), ``claim`` (provisioning
    only), ``service`` (the stack's own clients: everything)."""

    kind: str
    thing: str | None = None
    certificate_id: str | None = None


class Refused(Exception):
    """A client certificate the registry does not admit; the message says why (logged by the broker)."""


def registry_identity(account_id: str, region: str, der: bytes, client_id: str) -> Identity:
    """The identity of a client that presented certificate ``der`` and connects as ``client_id``, by IoT
    Core's rules: the certificate is registered and ACTIVE; with the claim policy attached it may only
    provision; with the robot policy attached it is the robot whose thing it is attached to, and that
    thing's name must be the client id (``iot:Connection.Thing.IsAttached``)."""
    from moto.iot.models import iot_backends

    backend = iot_backends[account_id][region]
    cert_id = certificate_id(der)
    certificate = backend.certificates.get(cert_id)
    if certificate is None:
        raise Refused(f"certificate {cert_id[:12]} is not registered")
    if certificate.status != "ACTIVE":
        raise Refused(f"certificate {cert_id[:12]} is {certificate.status}")
    policies = {policy.name for policy in backend.list_principal_policies(certificate.arn)}
    if CLAIM_POLICY_NAME in policies:
        return Identity("claim", None, cert_id)
    if ROBOT_POLICY_NAME not in policies:
        raise Refused(f"certificate {cert_id[:12]} has no robot policy attached")
    things = set(backend.list_principal_things(certificate.arn))
    if client_id not in things:
        attached = ", ".join(sorted(things)) or "no thing"
        raise Refused(
            f"certificate {cert_id[:12]} is attached to {attached}, not to {client_id!r} (the client id)"
        )
    return Identity("robot", client_id, cert_id)


# --- the `fleetwave serve` component ---------------------------------------------------------------------
class LocalIdentity:
    """`fleetwave serve` hook component: the local CA loaded (or created), moto's IoT signing with it, and
    the robot and claim policies in the registry (the stack's RobotPolicy and ClaimPolicy)."""

    name = "identity"

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self.ca: LocalCA | None = None

    @property
    def directory(self) -> Path:
        configured = self._runtime.config.identity_dir
        return Path(configured).expanduser() if configured else DEFAULT_IDENTITY_DIR

    def start(self) -> None:
        config = self._runtime.config
        self.ca = LocalCA.load_or_create(self.directory, hosts=(config.host,))
        install_signer(self.ca)
        iot = self._runtime.aws.client("iot")
        existing = {policy["policyName"] for policy in iot.list_policies().get("policies", [])}
        for name, document in policy_documents(config.region, config.account_id).items():
            if name not in existing:
                iot.create_policy(policyName=name, policyDocument=json.dumps(document))

    def stop(self) -> None:
        uninstall_signer()

    def identify(self, der: bytes, client_id: str) -> Identity:
        config = self._runtime.config
        return registry_identity(config.account_id, config.region, der, client_id)

    def certificate_active(self, certificate_id: str) -> bool:
        """Whether a certificate is still registered and ACTIVE (a dictionary lookup in moto)."""
        from moto.iot.models import iot_backends

        config = self._runtime.config
        certificate = iot_backends[config.account_id][config.region].certificates.get(certificate_id)
        return certificate is not None and certificate.status == "ACTIVE"


def policy_documents(region: str, account_id: str) -> dict[str, dict[str, Any]]:
    """The robot and claim policies as the stack defines them, for this account and region."""
    from fleetwave_service.engine.iot_policies import claim_policy, robot_policy

    def arn(resource: str) -> str:
        return f"arn:aws:iot:{region}:{account_id}:{resource}"

    return {
        ROBOT_POLICY_NAME: robot_policy(arn),
        CLAIM_POLICY_NAME: claim_policy(arn, PROVISIONING_TEMPLATE_NAME),
    }


def create_component(runtime: Any) -> LocalIdentity | None:
    """`fleetwave serve` hook (fleetwave.local.runtime): robot identity, unless mTLS is off."""
    if runtime.config.mqtts_port is None:
        return None
    return LocalIdentity(runtime)
