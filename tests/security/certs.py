"""A throw-away certificate authority and a broker certificate for the SASL_SSL tests.

Made with the ``openssl`` command line (OpenSSL 3), as PEM files Kafka reads directly
(``ssl.keystore.type=PEM``): no JKS, no keytool, no passwords on the key.  The broker's
certificate names ``127.0.0.1`` and ``localhost`` as subject alternative names, so clients
that verify the host name (kafka-python and aiokafka both do by default) accept it.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: long enough for any test run, short enough that a leaked file is soon worthless
_DAYS = "2"
_KEY = "rsa:2048"


class CertError(RuntimeError):
    """openssl is missing or one of its commands failed (the message holds its output)."""


@dataclass(frozen=True, slots=True)
class BrokerPki:
    """The files of a generated CA and one server certificate signed by it."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    #: the server's PKCS#8 key followed by its certificate and the CA's: a PEM keystore
    server_keystore: Path


def openssl_available() -> bool:
    """Whether the ``openssl`` command is on PATH."""
    return shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise CertError("openssl is not on PATH (Debian: apt-get install openssl)")
    done = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)
    if done.returncode != 0:
        raise CertError(f"openssl {' '.join(args[:2])} failed (exit {done.returncode}):\n"
                        f"{done.stdout}{done.stderr}")


def make_pki(folder: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
             ) -> BrokerPki:
    """Write a CA and a server certificate for ``hosts`` into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "broker.key", folder / "broker.csr", folder / "broker.pem"
    keystore = folder / "broker.keystore.pem"
    _openssl(
        "req", "-x509", "-newkey", _KEY, "-nodes", "-keyout", ca_key.name, "-out", ca_cert.name,
        "-days", _DAYS, "-subj", "/CN=tariffmon test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    # -nodes: OpenSSL 3 writes an unencrypted PKCS#8 key ("BEGIN PRIVATE KEY"), the form
    # Kafka's PEM keystore reads without ssl.key.password
    _openssl("req", "-newkey", _KEY, "-nodes", "-keyout", key.name, "-out", csr.name,
             "-subj", "/CN=localhost", cwd=folder)
    san = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    ext = folder / "broker.ext"
    ext.write_text(
        f"subjectAltName={san}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", csr.name, "-CA", ca_cert.name, "-CAkey", ca_key.name,
             "-CAcreateserial", "-out", cert.name, "-days", _DAYS, "-sha256",
             "-extfile", ext.name, cwd=folder)
    keystore.write_text(key.read_text() + cert.read_text() + ca_cert.read_text())
    for private in (ca_key, key, keystore):
        private.chmod(0o600)
    return BrokerPki(ca_cert=ca_cert, ca_key=ca_key, server_cert=cert, server_key=key,
                   server_keystore=keystore)
