"""Key pairs as Nova makes and checks them: SSH keys (RSA, OpenSSH format) and X.509 certificates.

Fingerprints are Nova's: the colon-separated MD5 of an SSH key's blob, the colon-separated SHA-1 of a
certificate. A key that cannot be read raises :class:`InvalidKey` with Nova's reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from novawatch.compute.errors import ComputeError

#: The comment Nova puts on the public keys it generates.
COMMENT = "Generated-by-Nova"
BITS = 2048


class InvalidKey(ComputeError):
    """A public key or certificate that cannot be read (Nova's ``InvalidKeypair``, 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Keypair data is invalid: {reason}")


def _colons(digest: str) -> str:
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def ssh_fingerprint(public_key: str) -> str:
    """The MD5 fingerprint of an OpenSSH public key line (``ssh-rsa AAAA... comment``)."""
    try:
        serialization.load_ssh_public_key(public_key.encode("utf-8"))
        blob = base64.b64decode(public_key.split(" ")[1])
    except (ValueError, IndexError, TypeError, binascii.Error, UnicodeError):
        raise InvalidKey("failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def x509_fingerprint(pem: str) -> str:
    """The SHA-1 fingerprint of a PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidKey(f"failed to generate X509 fingerprint. Error message: {exc}") from None
    return _colons(cert.fingerprint(hashes.SHA1()).hex())  # Nova's certificate fingerprint is SHA-1


def fingerprint(public_key: str, key_type: str) -> str:
    """The fingerprint of a key of ``key_type`` (``ssh`` or ``x509``)."""
    return x509_fingerprint(public_key) if key_type == "x509" else ssh_fingerprint(public_key)


def new_ssh_key() -> tuple[str, str, str]:
    """(private key in PEM, OpenSSH public key, fingerprint) of a new RSA key, as Nova generates them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=BITS)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    public = f"{public} {COMMENT}"
    return private, public, ssh_fingerprint(public)


def new_x509_cert(user_id: str, now: datetime | None = None) -> tuple[str, str, str]:
    """(PKCS#12 bundle in base64, PEM certificate, fingerprint) for ``CN=user_id``, valid ten years.

    Nova makes the same with ``openssl`` for WinRM's certificate authentication.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    start = now or datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    bundle = pkcs12.serialize_key_and_certificates(None, key, cert, None, serialization.NoEncryption())
    return base64.b64encode(bundle).decode("ascii"), pem, x509_fingerprint(pem)
