"""Which agent a verified assertion signs in: the matching rule the admin chose per connection.

* ``user_name``: the NameID is the agent's userName (what SCIM provisions: Entra's
  userPrincipalName, Okta's Username). Recommended when the IdP also provisions over SCIM, since
  then sign-in and provisioning name the agent by the same identifier.
* ``email``: the email attribute (else a NameID that is an email) is the agent's contact email.

Agents are only ever looked up within the connection's account. Two live agents matching is
refused (never guessed); an agent deleted over SCIM only matches when no live agent does, and is
inactive, so the sign-in is refused as deactivated.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from deskgate.saml.attributes import AgentProfile
from deskgate.store import agents as agent_store
from deskgate.store.agents import SignInAgent
from deskgate.store.models import SignInMatch

IDP_ATTRIBUTE_HINTS: dict[str, str] = {
    SignInMatch.USER_NAME.value: (
        "Send the user's SCIM userName as the NameID: in Okta, Application username "
        "(Name ID format Unspecified or EmailAddress); in Entra ID, Unique User Identifier = "
        "user.userprincipalname."
    ),
    SignInMatch.EMAIL.value: (
        "Send the user's email as the NameID (EmailAddress format) or as an 'email' attribute: "
        "in Okta, user.email; in Entra ID, user.mail."
    ),
}
"""What the Security page tells the admin to configure in the IdP for each choice."""


@dataclass(frozen=True)
class Match:
    """The outcome: ``agent`` (None: nobody matched, JIT may create one), or a refusal."""

    key: str | None
    """The value looked up (NameID or email), for the attempt record."""
    agent: SignInAgent | None = None
    refusal: tuple[str, str] | None = None
    """(reason_code, detail for the admin)."""


def find_agent(
    db: Session, account_id: str, rule: str, name_id: str, profile: AgentProfile
) -> Match:
    if rule == SignInMatch.USER_NAME.value:
        key: str | None = name_id.strip()
        candidates = agent_store.matching_sign_in(db, account_id, user_name=key)
        what = "userName"
    else:
        key = profile.email
        if not key:
            return Match(
                key=None,
                refusal=(
                    "missing_email",
                    f"The assertion carries no email: NameID was '{name_id}' and no email attribute "
                    "was found. Send the email as NameID (EmailAddress format) or as an 'email' "
                    "attribute, or match agents by NameID = userName on the Security page.",
                ),
            )
        candidates = agent_store.matching_sign_in(db, account_id, email=key)
        what = "email"
    live = [agent for agent in candidates if agent.scim_deleted_at is None]
    if len(live) > 1:
        shown = ", ".join(f"{agent.user_name} ({agent.id})" for agent in live[:5])
        return Match(
            key=key,
            refusal=(
                "ambiguous_agent",
                f"{len(live)} agents have the {what} '{key}': {shown}. Give them distinct {what}s, "
                "deactivate the extra agent, or match agents by "
                + ("email" if what == "userName" else "NameID = userName (SCIM)")
                + " on the Security page.",
            ),
        )
    return Match(key=key, agent=live[0] if live else (candidates[0] if candidates else None))
