"""SAML sign-in: validation in-process, and whole sign-ins over HTTP.

In-process, the same Okta-shaped responses go through three validators, one after the other, on
one core:

* deskgate: `deskgate.saml.acs.validate_response` (every check deskgate makes; no database);
* stock python3-saml: `OneLogin_Saml2_Response(settings, b64).is_valid(request_data)` in strict
  mode, the floor deskgate builds on (it must return True for every response);
* the bare signature check: base64-decode, parse, one `xmlsec` verify of the Assertion's
  signature with a preloaded key: the practical limit of any validator.

Over HTTP, deskgate runs under uvicorn and K clients POST fresh responses (each with a new
assertion ID, so the replay store is written every time) to `/api/v1/sso/{token}/acs/okta`;
a 303 is a completed sign-in (assertion checked, replay row, agent looked up or created by JIT,
session row, attempt row, all committed).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import gc
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import xmlsec
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from deskgate.saml.acs import validate_response
from deskgate.saml.config import IdPConfig, SPConfig
from deskgate.saml.keys import generate_sp_keypair

from bench import saml_responses
from bench.saml_responses import Audience, IdPKey
from bench.stats import Latency

SP_ORIGIN = "https://deskgate.bench.example"
ACS_PATH = "/api/v1/sso/benchtoken/acs/okta"


@dataclass(frozen=True)
class Validator:
    name: str
    key: str
    calls: int
    errors: int
    first_error: str | None
    latency: Latency
    per_second: float
    """Validations per second on one core (calls / time spent in them)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "key": self.key,
            "calls": self.calls,
            "errors": self.errors,
            "first_error": self.first_error,
            "latency": self.latency.as_dict(),
            "per_second": round(self.per_second, 1),
        }


Check = Any
"""A validator: takes a base64 response, returns True when it accepts it (or raises)."""


def _measure(
    validators: list[tuple[str, str, Check]], responses: list[str], rounds: int = 5
) -> list[Validator]:
    """Time each validator on every response, interleaved: the responses are cut into `rounds`
    chunks and every validator runs on a chunk before the next chunk starts (in a rotating
    order), so a slow minute of the machine hurts all of them alike."""
    warmup = responses[: min(50, max(1, len(responses) // 10))]
    for _, _, check in validators:
        for b64 in warmup:
            check(b64)
    durations: dict[str, list[float]] = {key: [] for _, key, _ in validators}
    errors: dict[str, list[str]] = {key: [] for _, key, _ in validators}
    size = max(1, -(-len(responses) // rounds))
    chunks = [responses[i : i + size] for i in range(0, len(responses), size)]
    for index, chunk in enumerate(chunks):
        order = validators[index % len(validators) :] + validators[: index % len(validators)]
        for _, key, check in order:
            gc.collect()
            for b64 in chunk:
                t0 = time.perf_counter()
                try:
                    reason = None if check(b64) else "returned False"
                except Exception as problem:  # a validator that raises has refused the response
                    reason = f"{type(problem).__name__}: {problem}"
                durations[key].append(time.perf_counter() - t0)
                if reason is not None:
                    errors[key].append(reason)
    results = []
    for name, key, _ in validators:
        spent = sum(durations[key])
        results.append(
            Validator(
                name=name,
                key=key,
                calls=len(durations[key]),
                errors=len(errors[key]),
                first_error=errors[key][0] if errors[key] else None,
                latency=Latency.of(durations[key]),
                per_second=len(durations[key]) / spent if spent else 0.0,
            )
        )
    return results


def in_process(count: int, *, sign_response: bool = False) -> dict[str, Any]:
    """Build `count` responses and time the three validators on them."""
    now = dt.datetime.now(dt.UTC)
    key = saml_responses.new_idp_key()
    sp_private, sp_cert = generate_sp_keypair(now, common_name="bench sp")
    audience = Audience(
        acs_url=SP_ORIGIN + ACS_PATH,
        sp_entity_id=SP_ORIGIN + "/api/v1/sso/benchtoken/metadata/okta",
    )
    built = time.perf_counter()
    responses = [
        saml_responses.build_response(
            key, audience, f"agent{i:05d}@bench.example", now, sign_response=sign_response
        )
        for i in range(count)
    ]
    build_seconds = time.perf_counter() - built

    sp = SPConfig(
        entity_id=audience.sp_entity_id,
        acs_url=audience.acs_url,
        private_key_pem=sp_private,
        certificate_pem=sp_cert,
        allow_unsolicited=True,
    )
    idp = IdPConfig(
        entity_id=saml_responses.IDP_ENTITY_ID,
        sso_url=saml_responses.IDP_SSO_URL,
        signing_certificates=(key.certificate_pem,),
    )

    def ours(b64: str) -> bool:
        # The clock is read per call, as the ACS does (the responses are valid for 10 minutes).
        return validate_response(b64, sp, idp, dt.datetime.now(dt.UTC)).name_id.endswith(
            "@bench.example"
        )

    stock_settings = OneLogin_Saml2_Settings(
        _stock_settings(audience, key), sp_validation_only=False
    )
    request_data = _request_data(audience)

    def stock(b64: str) -> bool:
        response = OneLogin_Saml2_Response(stock_settings, b64)
        valid = bool(
            response.is_valid(
                {**request_data, "post_data": {"SAMLResponse": b64}}, raise_exceptions=True
            )
        )
        return valid and response.get_nameid().endswith("@bench.example")

    bare = _bare_verifier(key)
    signatures = "2 signatures" if sign_response else "1 signature"
    results = _measure(
        [
            ("deskgate validate_response", "deskgate", ours),
            ("python3-saml is_valid (stock)", "stock", stock),
            (f"bare xmlsec verify ({signatures})", "bare", bare),
        ],
        responses,
    )
    by_key = {r.key: r for r in results}
    return {
        "responses": count,
        "response_bytes": len(base64.b64decode(responses[0])),
        "signatures_per_response": 2 if sign_response else 1,
        "build_seconds": round(build_seconds, 2),
        "validators": [r.as_dict() for r in results],
        "ratio_vs_stock": round(by_key["deskgate"].per_second / by_key["stock"].per_second, 2),
        "fraction_of_bare": round(by_key["deskgate"].per_second / by_key["bare"].per_second, 3),
    }


def _stock_settings(audience: Audience, key: IdPKey) -> dict[str, Any]:
    return {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": audience.sp_entity_id,
            "assertionConsumerService": {
                "url": audience.acs_url,
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            },
            "NameIDFormat": saml_responses.EMAIL_FORMAT,
        },
        "idp": {
            "entityId": saml_responses.IDP_ENTITY_ID,
            "singleSignOnService": {"url": saml_responses.IDP_SSO_URL},
            "x509cert": key.certificate_pem,
        },
        "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True},
    }


def _request_data(audience: Audience) -> dict[str, Any]:
    url = urllib.parse.urlsplit(audience.acs_url)
    return {
        "https": "on",
        "http_host": url.hostname,
        "server_port": 443,
        "script_name": url.path,
        "get_data": {},
    }


def _bare_verifier(key: IdPKey) -> Any:
    public_key = xmlsec.Key.from_memory(key.certificate_pem, xmlsec.KeyFormat.CERT_PEM, None)
    assertion_tag = f"{{{saml_responses.NS_SAML}}}Assertion"
    signature_tag = f"{{{saml_responses.NS_DS}}}Signature"
    parser = etree.XMLParser(resolve_entities=False, no_network=True)

    def verify(b64: str) -> bool:
        root = etree.fromstring(base64.b64decode(b64), parser)
        signatures = []
        response_signature = root.find(signature_tag)
        if response_signature is not None:
            signatures.append(response_signature)
        assertion = root.find(assertion_tag)
        signatures.append(assertion.find(signature_tag))
        xmlsec.tree.add_ids(root, ["ID"])
        for signature in signatures:
            context = xmlsec.SignatureContext()
            context.key = public_key
            context.verify(signature)  # raises on a bad signature
        return True

    return verify


# --- over HTTP --------------------------------------------------------------------------------


async def post_sign_ins(
    acs_url: str, bodies: list[bytes], concurrency: int, deadline_s: float
) -> dict[str, Any]:
    """POST each form body once with `concurrency` clients; a 303 is a sign-in."""
    import aiohttp

    durations: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    first_error: str | None = None
    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as session:

        async def client() -> None:
            nonlocal errors, first_error
            for body in queue:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    async with session.post(
                        acs_url, data=body, headers=headers, allow_redirects=False
                    ) as response:
                        text = await response.read()
                        status = response.status
                except (TimeoutError, aiohttp.ClientError) as problem:
                    status, text = 0, str(problem).encode()
                durations.append(time.perf_counter() - t0)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status != 303:
                    errors += 1
                    first_error = first_error or f"{status}: {text[:300].decode(errors='replace')}"

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    done = len(durations)
    return {
        "requests": done,
        "planned": len(bodies),
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "per_second": round(done / elapsed, 1) if elapsed else 0.0,
        "errors": errors,
        "first_error": first_error,
        "statuses": statuses,
        "latency": Latency.of(durations).as_dict(),
    }


def form_bodies(key: IdPKey, audience: Audience, count: int, users: int) -> list[bytes]:
    """`count` sign-ins spread over `users` agents (JIT creates each on its first sign-in)."""
    now = dt.datetime.now(dt.UTC)
    bodies = []
    for i in range(count):
        b64 = saml_responses.build_response(
            key, audience, f"signin{i % users:05d}@bench.example", now
        )
        bodies.append(urllib.parse.urlencode({"SAMLResponse": b64}).encode())
    return bodies
