"""TLS for `wss://` and https: the server's SSL context, and a self-signed pair for local use.

    python -m server.tls --host myserver.local --out-dir certs/

writes `certs/cert.pem` and `certs/key.pem`; start the server with `--certfile
certs/cert.pem --keyfile certs/key.pem` and give clients `--ca-file certs/cert.pem`
(the self-signed certificate is its own authority).
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import ssl
import sys
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), str(keyfile))
    return context


def _subject_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_self_signed(cert_path: Path, key_path: Path, hosts: Sequence[str], days: int = 365) -> None:
    """A P-256 key and a certificate valid for `hosts` (names or IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_subject_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.tls",
        description="Create a self-signed certificate and key for serving wss:// locally.",
    )
    parser.add_argument("--host", action="append", default=None,
                        help="name or IP address clients connect to (repeatable; default: localhost and 127.0.0.1)")
    parser.add_argument("--out-dir", type=Path, default=Path("certs"), help="where to write cert.pem and key.pem")
    parser.add_argument("--days", type=int, default=365, help="validity in days")
    args = parser.parse_args(argv)
    hosts = args.host or ["localhost", "127.0.0.1"]
    cert, key = args.out_dir / "cert.pem", args.out_dir / "key.pem"
    make_self_signed(cert, key, hosts, args.days)
    print(f"wrote {cert} and {key} for {', '.join(hosts)}\n"
          f"server: python -m server --certfile {cert} --keyfile {key}\n"
          f"client: python -m client --server-url wss://{hosts[0]}:8765 --ca-file {cert} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
