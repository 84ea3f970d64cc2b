"""Signs every request schemathesis sends to cofre's REST facade, as a processor client must.

Loaded by schemathesis through ``SCHEMATHESIS_HOOKS=hooks`` (with this folder on
``PYTHONPATH``); ``tests/api_schemathesis.rs`` runs it against a fresh ``cofre up``.

The scheme is the one ``src/api/auth.rs`` checks and ``cofre api call`` follows
(``src/cli/api_call/signed.rs``):

* ``POST /token`` carries ``Authorization: Basic base64(apikey:secret)``;
* every other call carries ``apikey``, ``X-ClientID``, ``Authorization: Bearer <token>``,
  ``Timestamp`` (epoch milliseconds), ``X-Client-Request-Id`` (fresh for every call) and
  ``Signature`` = Base64(HMAC-SHA256(secret, apikey + request id + timestamp + body)).

The signature is made by a ``requests`` auth object, which runs after the body is
serialised, so it covers exactly the bytes sent. The bearer token is asked for once with
``POST /token`` and again shortly before it expires.

Configuration (environment):

``COFRE_ST_CLIENT_ID``, ``COFRE_ST_API_KEY``
    the API client;
``COFRE_ST_SECRET_FILE``
    a file holding its secret (never an argument or a variable);
``COFRE_ST_CA``
    the CA certificate (PEM) the facade's certificate chains to;
``COFRE_ST_TALLY``
    a file where every answer is appended as one line ``STATUS METHOD PATH-TEMPLATE``,
    so that the test can check the calls got past authentication.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests
import schemathesis

#: A token is not used in its last this many seconds.
TOKEN_MARGIN_S = 30


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: the signing hook needs it")
    return value


class Client:
    """The API client's credentials and its current bearer token."""

    def __init__(self) -> None:
        self.client_id = _setting("COFRE_ST_CLIENT_ID")
        self.api_key = _setting("COFRE_ST_API_KEY")
        with open(_setting("COFRE_ST_SECRET_FILE"), "rb") as f:
            self.secret = f.read().strip()
        self.ca = _setting("COFRE_ST_CA")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def basic(self) -> str:
        pair = self.api_key.encode() + b":" + self.secret
        return "Basic " + base64.b64encode(pair).decode()

    def token(self, origin: str) -> str:
        """A bearer token from ``origin``'s ``/token``, asked for again near its expiry."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires:
                answer = requests.post(
                    origin + "/token",
                    data=b"grant_type=client_credentials",
                    headers={
                        "Authorization": self.basic(),
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                    verify=self.ca,
                    timeout=30,
                )
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /token answered {answer.status_code}")
                grant = answer.json()
                self._token = grant["access_token"]
                lifetime = int(grant.get("expires_in", 0))
                self._expires = time.monotonic() + max(lifetime - TOKEN_MARGIN_S, 0)
            return self._token

    def signature(self, request_id: str, timestamp: str, body: bytes) -> str:
        data = self.api_key.encode() + request_id.encode() + timestamp.encode() + body
        return base64.b64encode(hmac.new(self.secret, data, hashlib.sha256).digest()).decode()


CLIENT: Client | None = None


def client() -> Client:
    global CLIENT
    if CLIENT is None:
        CLIENT = Client()
    return CLIENT


class Signed(requests.auth.AuthBase):
    """Adds the processor's authentication headers to a prepared request."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        c = client()
        body = r.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
            r.body = body
            r.headers["Content-Length"] = str(len(body))
        elif not isinstance(body, bytes):
            raise RuntimeError(f"cannot sign a body of type {type(body).__name__}")
        url = urlsplit(r.url)
        if url.path == "/token":
            r.headers["Authorization"] = c.basic()
            return r
        request_id = uuid.uuid4().hex
        timestamp = str(time.time_ns() // 1_000_000)
        r.headers["apikey"] = c.api_key
        r.headers["X-ClientID"] = c.client_id
        r.headers["Authorization"] = "Bearer " + c.token(f"{url.scheme}://{url.netloc}")
        r.headers["Timestamp"] = timestamp
        r.headers["X-Client-Request-Id"] = request_id
        r.headers["Signature"] = c.signature(request_id, timestamp, body)
        if "Idempotency-Key" in r.headers:
            # A generated key repeats across cases (hypothesis favours short values) and
            # would be refused as another request's (409): each call gets its own.
            r.headers["Idempotency-Key"] = uuid.uuid4().hex
        return r


TALLY_LOCK = threading.Lock()


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = Signed()


@schemathesis.hook
def after_call(context, case, response):
    line = f"{response.status_code} {case.operation.method.upper()} {case.operation.path}\n"
    with TALLY_LOCK, open(_setting("COFRE_ST_TALLY"), "a", encoding="utf-8") as f:
        f.write(line)
