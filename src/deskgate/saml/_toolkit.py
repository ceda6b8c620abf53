"""python3-saml settings built from :class:`SPConfig` (internal, cached).

Only the SP half is given to python3-saml (``sp_validation_only=True``): the
IdP certificates are passed to the verifier explicitly, and the IdP URLs are
never needed by the pieces of the toolkit we call. Building settings formats
keys and certificates, so it is cached per (hashable, frozen) ``SPConfig``;
the settings object is only read afterwards, which makes sharing it across
threads safe.
"""

from __future__ import annotations

import functools

from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from deskgate.saml.config import SPConfig

NAMEID_EMAIL = OneLogin_Saml2_Constants.NAMEID_EMAIL_ADDRESS


@functools.lru_cache(maxsize=512)
def toolkit_settings(sp: SPConfig) -> OneLogin_Saml2_Settings:
    """python3-saml settings for ``sp`` (strict mode, SHA-1 per ``sp.allow_sha1``).

    Raises:
        ValueError: python3-saml refuses the SP configuration.
    """
    try:
        return OneLogin_Saml2_Settings(
            {
                "strict": True,
                "debug": False,
                "sp": {
                    "entityId": sp.entity_id,
                    "assertionConsumerService": {
                        "url": sp.acs_url,
                        "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
                    },
                    "NameIDFormat": NAMEID_EMAIL,
                    "x509cert": sp.certificate_pem,
                    "privateKey": sp.private_key_pem,
                },
                "security": {
                    # process_signed_elements() refuses deprecated algorithms
                    # on the first Reference; _signatures checks them all.
                    "rejectDeprecatedAlgorithm": not sp.allow_sha1,
                    "wantAttributeStatement": False,
                    "requestedAuthnContext": False,
                    "allowSingleLabelDomains": True,
                },
            },
            sp_validation_only=True,
        )
    except OneLogin_Saml2_Error as exc:
        raise ValueError(f"python3-saml refused the SP configuration: {exc}") from None
