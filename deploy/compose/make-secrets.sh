#!/bin/sh
# Random secrets and a self-signed TLS pair for a trial of compose.yaml (never committed).
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets tls
random() { openssl rand -hex 32; }
[ -s secrets/postgres-password ] || random > secrets/postgres-password
printf 'postgresql+psycopg://cds:%s@postgres:5432/cds\n' "$(cat secrets/postgres-password)" > secrets/store-url
[ -s secrets/patient-hash-key ] || random > secrets/patient-hash-key
[ -s secrets/admin-token ] || random > secrets/admin-token
[ -s tls/tls.key ] || openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
    -keyout tls/tls.key -out tls/tls.crt 2>/dev/null
# The containers run as other users: let them read (the folders stay private to you).
chmod 0644 secrets/* tls/*
echo "secrets in $(pwd)/secrets, certificate in $(pwd)/tls"
