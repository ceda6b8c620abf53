"""The peers deskgate is measured against: scim2-server (Python) and @boxyhq/saml-jackson (Node)."""
