"""The default-attribute bodies the SCIM app builds straight from records
(`deskgate.web.scim.render`) are the core's scim2-models bodies, adjusted as deskgate serves them:
compared over varied records, so that a field drifting on either side fails here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models import Context

from deskgate import scim
from deskgate.scim.records import AgentRecord, EmailEntry, GroupRecord, MemberRef, ResourceKind
from deskgate.web.scim import render

BASE_URLS = ("https://deskgate.example/scim/v2/acc1", "http://testserver/scim/v2/acc2/")
CONTEXTS = (
    Context.RESOURCE_QUERY_RESPONSE,
    Context.RESOURCE_CREATION_RESPONSE,
    Context.RESOURCE_REPLACEMENT_RESPONSE,
    Context.RESOURCE_PATCH_RESPONSE,
)

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_optional = st.none() | st.just("") | _text
_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
# Naive moments too: SQLite gives timestamps back without a zone (read as UTC).
_NAIVE_RANGE = (dt.datetime(2000, 1, 1), dt.datetime(2100, 1, 1))  # noqa: DTZ001
_times = st.datetimes(min_value=_NAIVE_RANGE[0], max_value=_NAIVE_RANGE[1]).flatmap(
    lambda moment: st.sampled_from(
        [
            moment,
            moment.replace(tzinfo=dt.UTC),
            moment.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        ]
    )
)
_email = st.builds(
    EmailEntry,
    value=_text,
    type=st.sampled_from([None, "work", "home", "Other"]),
    primary=st.sampled_from([None, False]),
    display=st.none() | _text,
)


@st.composite
def _emails(draw: Any) -> tuple[EmailEntry, ...]:
    entries = draw(st.lists(_email, max_size=3))
    if entries and draw(st.booleans()):
        index = draw(st.integers(0, len(entries) - 1))
        first = entries[index]
        entries[index] = EmailEntry(first.value, first.type, True, first.display)
    return tuple(entries)


_enterprise = st.fixed_dictionaries(
    {},
    optional={
        "employeeNumber": _text,
        "costCenter": _text,
        "organization": _text,
        "division": _text,
        "department": _text,
        "manager": st.fixed_dictionaries(
            {"value": st.just("") | _ids}, optional={"displayName": _optional}
        ),
    },
)

_agents = st.builds(
    AgentRecord,
    id=_ids,
    user_name=_text.filter(bool),
    emails=_emails(),
    first_name=_optional,
    last_name=_optional,
    display_name=_optional,
    active=st.booleans(),
    external_id=_optional,
    locale=_optional,
    title=_optional,
    enterprise=_enterprise,
    created_at=_times,
    updated_at=_times,
    version=st.integers(1, 10**9),
)

_groups = st.builds(
    GroupRecord,
    id=_ids,
    display_name=_text.filter(bool),
    external_id=_optional,
    members=st.lists(
        st.builds(MemberRef, agent_id=_ids, display=st.none() | _text), max_size=4
    ).map(tuple),
    created_at=_times,
    updated_at=_times,
    version=st.integers(1, 10**9),
)


@settings(max_examples=300, deadline=None)
@given(record=_agents, base_url=st.sampled_from(BASE_URLS), context=st.sampled_from(CONTEXTS))
def test_user_body_is_the_core_user(record: AgentRecord, base_url: str, context: Context) -> None:
    core = render.strip_derived(scim.serialize_user(record, base_url, context=context))
    assert render.user_body(record, base_url) == core


@settings(max_examples=200, deadline=None)
@given(record=_groups, base_url=st.sampled_from(BASE_URLS), context=st.sampled_from(CONTEXTS))
def test_group_body_is_the_core_group(record: GroupRecord, base_url: str, context: Context) -> None:
    core = render.strip_derived(scim.serialize_group(record, base_url, context=context))
    assert render.group_body(record, base_url) == core


@settings(max_examples=50, deadline=None)
@given(
    users=st.lists(_agents, max_size=3),
    groups=st.lists(_groups, max_size=3),
    start=st.integers(1, 100),
    extra=st.integers(0, 100),
)
def test_list_bodies_are_the_core_list_responses(
    users: list[AgentRecord], groups: list[GroupRecord], start: int, extra: int
) -> None:
    base_url = BASE_URLS[0]
    for kind, records, core_list, body in (
        (ResourceKind.USER, users, scim.user_list_response, render.user_body),
        (ResourceKind.GROUP, groups, scim.group_list_response, render.group_body),
    ):
        query = scim.parse_list_query(kind, start_index=str(start), count=str(len(records)))
        total = start - 1 + len(records) + extra
        core = render.strip_derived_list(
            core_list(records, total_results=total, query=query, base_url=base_url)  # type: ignore[operator]
        )
        resources = [body(record, base_url) for record in records]  # type: ignore[operator]
        fast = render.list_body(resources, total_results=total, start_index=query.start_index)
        assert fast == core
