"""Pure SAML 2.0 Service Provider core.

No HTTP framework, database, environment or wall clock: inputs are bytes/str
and frozen dataclasses (:mod:`deskgate.saml.config`), time comes in as a
timezone-aware ``now`` argument, outputs are frozen dataclasses or a raised
:class:`~deskgate.saml.errors.SAMLError`.

Modules:
    config      SPConfig / IdPConfig
    metadata    parse_idp_metadata, render_sp_metadata
    login       build_login_redirect (and build_login_post)
    acs         validate_response -> VerifiedAssertion
    attributes  profile_from_assertion -> AgentProfile
    keys        generate_sp_keypair
    errors      SAMLError, SAMLErrorCode, MetadataError
"""

# Importing any part of the core first takes away xmlsec's ability to open
# files or sockets (see _xmlsec_io).
from deskgate.saml import _xmlsec_io  # noqa: E402,F401  (imported for its effect)
