"""The pure parts of the SimpleSAMLphp fixture: PHP literals and SP metadata conversion."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from support.certs import make_key_pair
from support.simplesamlphp import IdPUser, parse_sp_metadata, php_literal

SIGNING = make_key_pair("signing")
ENCRYPTION = make_key_pair("encryption")

TWO_SPS = f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
                       xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <md:EntityDescriptor entityID="https://a.example/saml">
    <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
        protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
        <ds:X509Certificate>
          {SIGNING.cert_base64}
        </ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data>
        <ds:X509Certificate>{ENCRYPTION.cert_base64}</ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
          Location="https://a.example/saml/slo"/>
      <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
          Location="https://a.example/saml/artifact" index="0"/>
      <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
          Location="https://a.example/saml/acs" index="1" isDefault="true"/>
    </md:SPSSODescriptor>
  </md:EntityDescriptor>
  <md:EntityDescriptor entityID="https://b.example/">
    <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <md:KeyDescriptor><ds:KeyInfo><ds:X509Data>
        <ds:X509Certificate>{SIGNING.cert_base64}</ds:X509Certificate>
      </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
          Location="https://b.example/acs" index="0"/>
    </md:SPSSODescriptor>
  </md:EntityDescriptor>
</md:EntitiesDescriptor>
"""


def test_parse_sp_metadata_reads_every_sp() -> None:
    a, b = parse_sp_metadata(TWO_SPS)

    assert a["entityid"] == "https://a.example/saml"
    assert a["AssertionConsumerService"] == [
        {
            "Binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            "Location": "https://a.example/saml/acs",
            "index": 1,
            "isDefault": True,
        }
    ]
    assert a["SingleLogoutService"][0]["Location"] == "https://a.example/saml/slo"
    assert [(k["signing"], k["encryption"], k["X509Certificate"]) for k in a["keys"]] == [
        (True, False, SIGNING.cert_base64),
        (False, True, ENCRYPTION.cert_base64),
    ]
    assert a["AuthnRequestsSigned"] is True

    assert b["entityid"] == "https://b.example/"
    assert b["keys"][0]["signing"] and b["keys"][0]["encryption"]  # no use= means both
    assert b["AuthnRequestsSigned"] is False


def test_parse_sp_metadata_needs_a_post_acs() -> None:
    xml = TWO_SPS.replace("bindings:HTTP-POST", "bindings:HTTP-Redirect")
    with pytest.raises(ValueError, match="HTTP-POST AssertionConsumerService"):
        parse_sp_metadata(xml)


def test_idp_user_attributes() -> None:
    user = IdPUser(
        "carol",
        "pw",
        "carol@example.com",
        first_name="Carol",
        extra_attributes={"dept": ["support"]},
    )
    attrs = user.attributes()
    assert attrs["email"] == ["carol@example.com"]
    assert attrs["firstName"] == ["Carol"]
    assert "lastName" not in attrs
    assert attrs["dept"] == ["support"]
    assert attrs["http://schemas.microsoft.com/identity/claims/displayname"] == ["Carol"]
    assert "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname" not in attrs


@pytest.mark.skipif(shutil.which("php") is None, reason="needs php-cli")
def test_php_literal_round_trips_through_php(tmp_path: Path) -> None:
    value = {
        "quote's": ["back\\slash", "dollar $x {$y}", 'double " quote', "new\nline", "ünïcode"],
        "nested": {"flag": True, "off": False, "none": None, "n": 42},
        "list": [1, "two"],
    }
    script = tmp_path / "value.php"
    script.write_text(f"<?php return {php_literal(value)};\n")
    out = subprocess.run(
        ["php", "-r", "echo json_encode(include $argv[1]);", str(script)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out) == value
