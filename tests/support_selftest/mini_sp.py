"""A minimal SAML SP (Starlette + python3-saml) used only to prove the test IdP works.

It validates strictly: signed Response and signed Assertion (RSA-SHA256 or better), the
InResponseTo of SP-initiated logins, and optionally encrypted assertions. /acs answers with
<pre id="result">{json}</pre>: nameid, nameid_format, attributes, relay_state,
in_response_to and whether the assertion came encrypted.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from support.certs import KeyPair, shared_key_pair


class MiniSP:
    def __init__(self, idp_metadata_xml: str, *, want_encrypted_assertions: bool = False) -> None:
        self.idp = OneLogin_Saml2_IdPMetadataParser.parse(idp_metadata_xml)["idp"]
        self.want_encrypted_assertions = want_encrypted_assertions
        self.key_pair: KeyPair = shared_key_pair("deskgate selftest SP")
        self.base_url = ""  # known once the server runs: serve_app(sp.app) as sp.base_url
        self.outstanding_requests: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/metadata", self.metadata),
                Route("/login", self.login),
                Route("/acs", self.acs, methods=["POST"]),
            ]
        )

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/metadata"

    def settings(self) -> dict[str, Any]:
        return {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": self.entity_id,
                "assertionConsumerService": {
                    "url": f"{self.base_url}/acs",
                    "binding": C.BINDING_HTTP_POST,
                },
                "NameIDFormat": C.NAMEID_EMAIL_ADDRESS,
                "x509cert": self.key_pair.cert_pem,
                "privateKey": self.key_pair.key_pem,
            },
            "idp": self.idp,
            "security": {
                "authnRequestsSigned": True,
                "wantMessagesSigned": True,
                "wantAssertionsSigned": True,
                "wantAssertionsEncrypted": self.want_encrypted_assertions,
                "wantNameId": True,
                "requestedAuthnContext": False,
                "signatureAlgorithm": C.RSA_SHA256,
                "digestAlgorithm": C.SHA256,
                "rejectDeprecatedAlgorithm": True,
            },
        }

    def metadata_xml(self) -> str:
        return OneLogin_Saml2_Auth({}, self.settings()).get_settings().get_sp_metadata().decode()

    def _auth(
        self, request: Request, post_data: dict[str, str] | None = None
    ) -> OneLogin_Saml2_Auth:
        request_data = {
            "https": "on" if request.url.scheme == "https" else "off",
            "http_host": request.url.hostname,
            "server_port": request.url.port,
            "script_name": request.url.path,
            "get_data": dict(request.query_params),
            "post_data": post_data or {},
        }
        return OneLogin_Saml2_Auth(request_data, self.settings())

    async def metadata(self, request: Request) -> Response:
        return Response(self.metadata_xml(), media_type="application/samlmetadata+xml")

    async def login(self, request: Request) -> Response:
        auth = self._auth(request)
        url = auth.login(return_to=request.query_params.get("next", "/"))
        self.outstanding_requests.add(auth.get_last_request_id())
        return RedirectResponse(url, status_code=303)

    async def acs(self, request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        auth = self._auth(request, post_data=form)
        auth.process_response()
        errors = auth.get_errors()
        in_response_to = auth.get_last_response_in_response_to()
        if not errors and in_response_to is not None:
            if in_response_to not in self.outstanding_requests:
                errors = ["unknown InResponseTo"]
            self.outstanding_requests.discard(in_response_to)
        if errors:
            text = f"{errors}: {auth.get_last_error_reason()}"
            return HTMLResponse(f'<p id="error">{html.escape(text)}</p>', status_code=400)
        result = {
            "nameid": auth.get_nameid(),
            "nameid_format": auth.get_nameid_format(),
            "attributes": auth.get_attributes(),
            "relay_state": form.get("RelayState"),
            "in_response_to": in_response_to,
            "encrypted": b"EncryptedAssertion" in base64.b64decode(form["SAMLResponse"]),
        }
        return HTMLResponse(f'<pre id="result">{html.escape(json.dumps(result))}</pre>')
