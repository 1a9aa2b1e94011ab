"""serve's gevent workers patch the standard library before the service is imported
(service/serving.py, ensure_monkey_patched). Patched later, urllib3 keeps the unpatched
SSLContext and every HTTPS query to a FHIR server raises RecursionError: a 500. Here the
FHIR server speaks TLS with a certificate the service does not trust: the query fails
cleanly, and the call answers 200 with a card saying the checks could not run."""
from __future__ import annotations

import datetime
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cds_spec import assert_valid_response, topics
from tests.core.builders import hook_request
from tests.fhir_server_helpers import serve_cli

HOOK = "/cds-services/baclofen-order-sign"


def self_signed(folder) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_a_call_to_an_https_fhir_server_answers_under_gevent_workers(tmp_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path))
    fhir = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    fhir.socket = context.wrap_socket(fhir.socket, server_side=True)
    threading.Thread(target=fhir.serve_forever, daemon=True).start()
    fhir_url = f"https://127.0.0.1:{fhir.server_port}"
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance"),
           "BACLOFEN_CDS_FHIR__ALLOWED_SERVERS": json.dumps([fhir_url])}
    try:
        with serve_cli([], tmp_path, env=env) as service:
            response = requests.post(f"{service}{HOOK}", json=hook_request(prefetch={}, fhir_server=fhir_url),
                                     timeout=60)
            assert response.status_code == 200, response.text
            assert_valid_response(response.json())
            assert "data-unavailable" in topics(response.json())
    finally:
        fhir.shutdown()
        fhir.server_close()
