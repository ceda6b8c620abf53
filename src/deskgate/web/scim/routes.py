"""Which handler serves a path under an account's SCIM base URL, and with which methods."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from deskgate.scim.errors import NotFoundException
from deskgate.web.scim import discovery, groups, users
from deskgate.web.scim.calls import Handler, WrongMethod


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    handlers: Mapping[str, Handler]


def _route(template: str, **handlers: Handler) -> _Route:
    regex = re.escape(template).replace(r"\{id\}", "(?P<id>[^/]+)")
    return _Route(re.compile(regex, re.IGNORECASE), handlers)


_SELF = discovery.not_implemented("/Me (the SCIM token stands for the IdP, not for a user)")

_ROUTES: tuple[_Route, ...] = (
    _route("Users", GET=users.list_users, POST=users.create_user),
    _route("Users/.search", POST=users.search_users),
    _route(
        "Users/{id}",
        GET=users.get_user,
        PUT=users.replace_user,
        PATCH=users.patch_user,
        DELETE=users.delete_user,
    ),
    _route("Groups", GET=groups.list_groups, POST=groups.create_group),
    _route("Groups/.search", POST=groups.search_groups),
    _route(
        "Groups/{id}",
        GET=groups.get_group,
        PUT=groups.replace_group,
        PATCH=groups.patch_group,
        DELETE=groups.delete_group,
    ),
    _route("ServiceProviderConfig", GET=discovery.service_provider_config),
    _route("Schemas", GET=discovery.list_schemas),
    _route("Schemas/{id}", GET=discovery.get_schema),
    _route("ResourceTypes", GET=discovery.list_resource_types),
    _route("ResourceTypes/{id}", GET=discovery.get_resource_type),
    _route(".search", POST=discovery.not_implemented("searching several resource types at once")),
    _route("Bulk", POST=discovery.not_implemented("bulk operations")),
    _route("Me", GET=_SELF, POST=_SELF, PUT=_SELF, PATCH=_SELF, DELETE=_SELF),
)


def dispatch(method: str, rest: str) -> tuple[Handler, dict[str, str]]:
    """The handler of `method` on `rest` (the path under the base URL, without slashes at
    either end) and its path parameters; 404 or 405 (with `Allow`) as SCIM errors."""
    for route in _ROUTES:
        match = route.pattern.fullmatch(rest)
        if match is None:
            continue
        handler = route.handlers.get(method)
        if handler is None:
            allow = ", ".join(route.handlers)
            raise WrongMethod(
                allow=allow, detail=f"{method} is not allowed on /{rest}; use {allow}."
            )
        return handler, match.groupdict()
    raise NotFoundException(
        detail=f"There is no SCIM endpoint at /{rest}. deskgate serves /Users, /Groups, "
        "/ServiceProviderConfig, /Schemas and /ResourceTypes under this base URL."
    )
