"""SCIM provisioning use cases: the IdP creates, updates, deactivates and deletes the agents and
groups of one account.

* `.requests` - authentication (bearer token -> account) and the request log.
* `.users`, `.groups` - the use cases behind /Users and /Groups.
* `.roles` - admin roles from groups that grant admin.
* `.security_page` - what Manage › Security shows and the "members are admins" flag.

The SCIM core (`deskgate.scim`) turns request bodies into fields and updates; this package loads
rows through `store.scim`, calls the core, applies the result and enforces the rules that need
the database. It raises the core's SCIMException classes (the protocol's own errors) and never
commits: the web layer owns the transaction. Each takes the request's Core `Connection` (the
Security page's functions a `Session`: they run statements only, so either works).

Rules kept here:

* **userName** is the IdP's identifier for the agent, unique per account whatever the case
  (agents made by deskgate itself, the admin or JIT sign-ins, have their email as userName). A
  POST of a userName a visible agent has is 409 `uniqueness`; Okta then finds the agent with
  `filter=userName eq` and links to it. The agent's `emails` are its own, stored as sent; its
  contact email is derived from them (`deskgate.scim.records.contact_email`).
* **Deactivation** (`active: false` by PUT or PATCH) applies at once and always, even to an
  admin (the IdP is authoritative): every session of the agent is revoked.
* **DELETE /Users/{id}** deactivates the agent, revokes its sessions, removes it from every group
  and unlinks it from SCIM (`scim_deleted_at`; externalId cleared). The row stays for history and
  the web pages; SCIM answers 404 for its id (RFC 7644 §3.6) and no longer lists it. A later
  POST of the same userName creates a new agent with a new id (the old one keeps its history,
  deactivated); an admin may reactivate the old one, which makes it visible to SCIM again
  unless its userName has been taken meanwhile.
* **Groups that grant admin** (`Group.grants_admin`, set on the Security page): joining one
  promotes the agent to admin; leaving it demotes the agent unless another such group still
  holds them. The account's last active admin is never demoted this way: the demotion is
  skipped and noted in the request log.
"""

from .security_page import scim_page_context, set_group_grants_admin

__all__ = ["scim_page_context", "set_group_grants_admin"]
