"""Short setup steps per identity provider, shown on the Security page (and in the README)."""

from __future__ import annotations

from dataclasses import dataclass

from deskgate.store.models import IdPKind


@dataclass(frozen=True)
class Guide:
    label: str
    steps: tuple[str, ...]
    attributes: str


GUIDES: dict[str, Guide] = {
    IdPKind.OKTA: Guide(
        "Okta",
        (
            "In the Okta Admin Console open Applications › Browse App Catalog, or Create App Integration › SAML 2.0.",
            "Catalogue app: enter the SSO account token below. Custom SAML app: paste the ACS URL as "
            "“Single sign-on URL” and the SP entity ID as “Audience URI”; Name ID format EmailAddress, "
            "Application username Email.",
            "Optional, for “Login with SSO” from Okta's side: set “Initiate login URI” to the SP-initiated sign-in URL.",
            "Add attribute statements firstName = user.firstName, lastName = user.lastName, email = user.email.",
            "Assign the people (or groups) who should sign in.",
            "Open the app's Sign On tab, copy the “Metadata URL” or the IdP metadata XML, and paste it here. Save.",
        ),
        "firstName, lastName, email",
    ),
    IdPKind.ENTRA: Guide(
        "Microsoft Entra ID",
        (
            "In the Entra admin center open Enterprise applications › New application › Create your own application "
            "(non-gallery), then Single sign-on › SAML.",
            "Basic SAML Configuration: Identifier (Entity ID) = the SP entity ID; Reply URL = the ACS URL; "
            "Sign on URL = the SP-initiated sign-in URL.",
            "Attributes & Claims: keep the default givenname, surname, emailaddress and name claims; "
            "Unique User Identifier = user.mail.",
            "Assign users and groups.",
            "From “SAML Certificates” copy the App Federation Metadata Url (or download the Federation Metadata XML) and paste it here. Save.",
        ),
        "the claim URIs …/claims/givenname, …/surname, …/emailaddress, …/name",
    ),
    IdPKind.GOOGLE: Guide(
        "Google Workspace",
        (
            "In the Google Admin console open Apps › Web and mobile apps › Add app › Add custom SAML app.",
            "Download the IdP metadata on the “Google Identity Provider details” step (paste it here later).",
            "Service provider details: ACS URL = the ACS URL; Entity ID = the SP entity ID; Name ID format EMAIL, Name ID Primary email.",
            "Attribute mapping: First name → firstName, Last name → lastName, Primary email → email.",
            "Turn the app on for the right organisational units, then paste the metadata here and save.",
        ),
        "firstName, lastName, email",
    ),
    IdPKind.ONELOGIN: Guide(
        "OneLogin",
        (
            "In OneLogin open Applications › Add App › “SAML Custom Connector (Advanced)”.",
            "Configuration: Audience (EntityID) = the SP entity ID; Recipient and ACS URL = the ACS URL; "
            "ACS URL Validator = the ACS URL with dots escaped; Login URL = the SP-initiated sign-in URL.",
            "SAML signature element: Both (or Assertion). Parameters: add Email, First Name, Last Name.",
            "SSO tab: copy the Issuer URL (metadata) or download the metadata XML and paste it here. Save.",
        ),
        "User.email, User.FirstName, User.LastName (or email, firstName, lastName)",
    ),
    IdPKind.SAML: Guide(
        "Other SAML 2.0 IdP",
        (
            "Create a SAML 2.0 service provider in your IdP — or give it our SP metadata URL, which carries everything below.",
            "ACS (HTTP-POST) = the ACS URL; entity ID / audience = the SP entity ID; NameID = the user's email.",
            "Sign the response or the assertion with RSA-SHA256.",
            "Send email, firstName and lastName attributes (any of the names listed below work).",
            "Paste the IdP's metadata XML (or its metadata URL) here and save.",
        ),
        "email, firstName, lastName — or any name listed below",
    ),
}
