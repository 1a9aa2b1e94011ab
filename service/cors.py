"""CORS for browser clients such as the CDS Hooks Sandbox (preflight asks for
authorization and content-type)."""
from flask import Flask
from flask_cors import CORS

CORS_PATHS = (r"/cds-services", r"/cds-services/*", r"/openapi.json")


def install_cors(app: Flask, origins: list[str]) -> None:
    CORS(
        app,
        resources={path: {"origins": origins} for path in CORS_PATHS},
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
        max_age=600,
        # Chrome asks before a public page (the Sandbox) calls a server on the local network.
        allow_private_network=True,
    )
