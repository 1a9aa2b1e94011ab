"""The reference of bench/servers.py: a trivial Flask endpoint that reads the JSON body and
answers an empty card list (`gunicorn bench.trivial_app:app`)."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/cds-services/baclofen-order-sign")
def trivial():
    request.get_json()
    return jsonify({"cards": []})


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
