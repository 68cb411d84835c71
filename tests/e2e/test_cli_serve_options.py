"""``scimledger serve`` behind TLS or a proxy, under a public URL, and on its second run (issue 10; README
"CLI"): real servers on a test database, with a self-signed certificate made here by ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.cli_processes import Serving, isolated_env, open_dir

DISCOVERY = "/scim/v2/ServiceProviderConfig"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scimledger test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, private


def env_for(database_url: str, **extra: str) -> tuple[dict[str, str], Path]:
    home = open_dir("scimledger-serve-")
    return isolated_env(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(home), **extra), home


def test_serve_speaks_tls_with_the_given_certificate(database_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    env, _ = env_for(database_url)
    extra = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    with Serving(env, *extra, scheme="https", verify=trust) as serving:
        answer = httpx.get(f"{serving.url}{DISCOVERY}", verify=trust, timeout=10)
        with pytest.raises(httpx.TransportError):  # plain HTTP is not answered on that port
            httpx.get(f"http://127.0.0.1:{serving.port}{DISCOVERY}", timeout=5).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # and a client that does not trust the certificate fails
            httpx.get(f"{serving.url}{DISCOVERY}", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["meta"]["location"] == f"https://127.0.0.1:{serving.port}{DISCOVERY}"


@pytest.mark.parametrize(
    ("options", "scheme"),
    [
        pytest.param((), "https", id="trusted-by-default-from-127.0.0.1"),
        pytest.param(("--no-proxy-headers",), "http", id="off"),
        pytest.param(("--forwarded-allow-ips", "10.9.8.7"), "http", id="another-proxy"),
    ],
)
def test_proxy_headers_decide_the_scheme_of_meta_location(
    database_url: str, options: tuple[str, ...], scheme: str
) -> None:
    env, _ = env_for(database_url)
    with Serving(env, *options) as serving:
        answer = httpx.get(f"{serving.url}{DISCOVERY}", headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert answer.json()["meta"]["location"] == f"{scheme}://127.0.0.1:{serving.port}{DISCOVERY}"


def test_the_public_url_drives_meta_location(database_url: str) -> None:
    env, home = env_for(database_url, SCIMLEDGER_PUBLIC_URL="https://scim.example.com/tenant/")
    with Serving(env) as serving:
        token = json.loads((home / "demo-credentials.json").read_text())["token"]
        created = httpx.post(
            f"{serving.url}/scim/v2/Users",
            json={"userName": "ada@example.com"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert created.status_code == 201, created.text
    expected = f"https://scim.example.com/tenant/scim/v2/Users/{created.json()['id']}"
    assert created.json()["meta"]["location"] == expected
    assert created.headers["location"] == expected


def test_the_second_run_says_where_the_credentials_are_saved(database_url: str) -> None:
    env, home = env_for(database_url)
    saved = home / "demo-credentials.json"
    with Serving(env) as first:
        pass
    assert "SCIM token" in first.output() and str(saved) in first.output()
    assert saved.stat().st_mode & 0o777 == 0o600
    with Serving(env) as second:
        pass
    assert f"Demo workspace credentials (SCIM token, admin key) are saved in {saved}" in second.output()
    assert "SCIM token   :" not in second.output()  # the secrets are printed once only
