"""SPConfig / IdPConfig validation and normalisation, and time parsing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from deskgate.saml._time import humanize, parse_xs_datetime
from deskgate.saml.certs import certificate_body_b64, normalize_certificate_pem
from deskgate.saml.config import BINDING_HTTP_POST, IdPConfig


def test_idp_certificates_are_normalised_and_deduplicated(idp_key, factory):
    body = certificate_body_b64(idp_key.certificate_pem)
    wrapped = "\n   ".join(body[i : i + 50] for i in range(0, len(body), 50))
    config = IdPConfig(
        "https://idp",
        "https://idp/sso",
        (wrapped, idp_key.certificate_pem, factory.keypair("next").certificate_pem),
    )
    assert config.signing_certificates == (
        normalize_certificate_pem(idp_key.certificate_pem),
        normalize_certificate_pem(factory.keypair("next").certificate_pem),
    )
    # Equal configs hash equal: the core caches per config.
    assert hash(config) == hash(
        IdPConfig(
            "https://idp",
            "https://idp/sso",
            (idp_key.certificate_pem, factory.keypair("next").certificate_pem),
        )
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"signing_certificates": ()},
        {"signing_certificates": ["not", "a", "tuple"]},
        {"signing_certificates": ("bm90IGEgY2VydA==",)},
        {"signing_certificates": ("%%%",)},
        {"entity_id": ""},
        {"entity_id": " https://idp"},
        {"sso_url": "javascript:alert(1)"},
        {"sso_url": "https://idp/sso page"},
        {"sso_binding": "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"},
    ],
)
def test_idp_config_refuses(changes, idp_config):
    with pytest.raises(ValueError):
        dataclasses.replace(idp_config, **changes)


def test_idp_config_accepts_post_binding(idp_config):
    assert (
        dataclasses.replace(idp_config, sso_binding=BINDING_HTTP_POST).sso_binding
        == BINDING_HTTP_POST
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"clock_skew": timedelta(seconds=-1)},
        {"clock_skew": timedelta(minutes=11)},
        {"private_key_pem": "not a key"},
        {"acs_url": ""},
        {"acs_url": "/relative/acs"},
    ],
)
def test_sp_config_refuses(changes, sp_config):
    with pytest.raises(ValueError):
        dataclasses.replace(sp_config, **changes)


def test_sp_config_repr_hides_the_private_key(sp_config):
    assert "PRIVATE KEY" not in repr(sp_config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-20T21:10:42Z", datetime(2024, 5, 20, 21, 10, 42, tzinfo=UTC)),
        (
            "2024-05-20T21:10:42.468Z",
            datetime(2024, 5, 20, 21, 10, 42, 468000, tzinfo=UTC),
        ),
        (
            "2011-06-22T12:49:30.3481234Z",
            datetime(2011, 6, 22, 12, 49, 30, 348123, tzinfo=UTC),
        ),
        ("2015-08-31T08:54:06+00:00", datetime(2015, 8, 31, 8, 54, 6, tzinfo=UTC)),
        ("2015-08-31T10:54:06+02:00", datetime(2015, 8, 31, 8, 54, 6, tzinfo=UTC)),
        ("2015-08-31T08:54:06", datetime(2015, 8, 31, 8, 54, 6, tzinfo=UTC)),
    ],
)
def test_xs_datetime_parsing(text, expected):
    assert parse_xs_datetime(text) == expected


@pytest.mark.parametrize(
    "text", ["TIME", "2020-09-25T16=7:00:00+00:00", "2020-13-01T00:00:00Z", ""]
)
def test_xs_datetime_garbage(text):
    with pytest.raises(ValueError):
        parse_xs_datetime(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=1), "1 second"),
        (timedelta(seconds=59), "59 seconds"),
        (timedelta(minutes=7, seconds=5), "7 minutes"),
        (timedelta(hours=3), "3 hours"),
        (timedelta(days=-2), "2 days"),
    ],
)
def test_humanize(delta, text):
    assert humanize(delta) == text
