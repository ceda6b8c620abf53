"""The reference semantics of the filter IR, checked against scim2-models' own matcher.

For random filters over the whitelisted attributes, evaluating the IR on a
record must agree with ``ScimFilter.match`` on the SCIM resource shown for that
record: the IR (and so a faithful SQL translation) means what the filter means.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models import EnterpriseUser, Group, ScimFilter, User

from deskgate.scim import responses
from deskgate.scim.errors import SCIMException
from deskgate.scim.evaluate import matches, sort_value
from deskgate.scim.filters import parse_filter
from deskgate.scim.query import SortKey
from deskgate.scim.records import MemberRef, ResourceKind

BASE_URL = "https://deskgate.example/scim/v2"
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
T1 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def agent_records(make_agent):
    return [
        make_agent(),
        make_agent(
            id="a2",
            email="Bob.Smith@Example.org",
            first_name="Bob",
            last_name=None,
            display_name=None,
            active=False,
            external_id="EXT-2",
            locale=None,
            title=None,
            enterprise={},
            created_at=T1,
            updated_at=T1,
            version=1,
        ),
        make_agent(
            id="a3",
            email="zed@example.com",
            first_name=None,
            last_name="Zed",
            display_name="Z",
            title="agent",
            locale="fr",
            created_at=T0,
            updated_at=T1,
        ),
    ]


STRING_ATTRS = [
    "userName",
    "displayName",
    "name.givenName",
    "name.familyName",
    "title",
    "locale",
    "externalId",
    "id",
    "emails.value",
    "emails",
    "emails.type",
]
VALUES = [
    "jane.doe@example.com",
    "JANE",
    "bob",
    "example",
    ".org",
    "Z",
    "agent",
    "fr",
    "en",
    "ext-2",
    "EXT-2",
    "a2",
    "Doe",
    "Support lead",
    "work",
    "WORK",
    "",
    "zed@example.com",
]
DATES = ["2024-05-01T09:30:00Z", "2024-05-20T00:00:00Z", "2024-06-01T12:00:00Z"]


def _quote(value: str) -> str:
    return ScimFilter.quote(value)


comparison = st.one_of(
    st.builds(
        lambda a, o, v: f"{a} {o} {_quote(v)}",
        st.sampled_from(STRING_ATTRS),
        st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"]),
        st.sampled_from(VALUES),
    ),
    st.builds(
        lambda a, o, v: f"{a} {o} {_quote(v)}",
        st.sampled_from(["meta.created", "meta.lastModified"]),
        st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le"]),
        st.sampled_from(DATES),
    ),
    st.builds(
        lambda o, v: f"active {o} {v}",
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["true", "false"]),
    ),
    st.builds(
        lambda a: f"{a} pr", st.sampled_from([*STRING_ATTRS, "name", "active", "meta.created"])
    ),
    st.builds(lambda a: f"{a} eq null", st.sampled_from(["title", "locale", "externalId"])),
    st.builds(
        lambda inner: f"emails[{inner}]",
        st.sampled_from(
            [
                'type eq "work"',
                'type eq "home"',
                'value co "example"',
                "primary eq true",
                'type eq "work" and value ew ".org"',
                'not (value sw "jane")',
            ]
        ),
    ),
)

filters = st.recursive(
    comparison,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=5,
)


@pytest.fixture(scope="module")
def agents(agent_records):
    return [(record, responses.to_scim_user(record, BASE_URL)) for record in agent_records]


@settings(max_examples=150, deadline=None)
@given(expression=filters)
def test_user_filters_mean_what_scim2_models_says(agents, expression):
    try:
        reference = ScimFilter[User[EnterpriseUser]](expression)
    except SCIMException:
        return  # e.g. an EmailStr value scim2-models cannot coerce; nothing to compare with
    parsed = parse_filter(ResourceKind.USER, expression)
    for record, resource in agents:
        assert matches(parsed, record) == reference.match(resource), (expression, record.id)


group_filters = st.recursive(
    st.one_of(
        st.builds(
            lambda o, v: f"members.value {o} {_quote(v)}",
            st.sampled_from(["eq", "ne", "co", "sw", "ew"]),
            st.sampled_from(["u1", "u", "2", "U1"]),
        ),
        st.builds(
            lambda v: f'members[value eq {_quote(v)} or value eq "u9"]',
            st.sampled_from(["u1", "u3"]),
        ),
        st.builds(
            lambda o, v: f"displayName {o} {_quote(v)}",
            st.sampled_from(["eq", "ne", "co", "sw", "gt", "le"]),
            st.sampled_from(["tier 1", "Tier", "z"]),
        ),
        st.just("members pr"),
        st.just("externalId pr"),
    ),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def groups(make_group):
    records = [
        make_group(),
        make_group(id="g2", display_name="Zeta", external_id="x", members=(MemberRef("u3"),)),
        make_group(id="g3", members=()),
    ]
    return [(record, responses.to_scim_group(record, BASE_URL)) for record in records]


@settings(max_examples=80, deadline=None)
@given(expression=group_filters)
def test_group_filters_mean_what_scim2_models_says(groups, expression):
    reference = ScimFilter[Group](expression)
    parsed = parse_filter(ResourceKind.GROUP, expression)
    for record, resource in groups:
        assert matches(parsed, record) == reference.match(resource), (expression, record.id)


def test_no_filter_matches_everything(agent_records):
    assert all(matches(None, record) for record in agent_records)


@pytest.mark.parametrize(
    ("key", "descending", "expected"),
    [
        (
            SortKey("userName", False),
            False,
            ["Bob.Smith@Example.org", "jane.doe@example.com", "zed@example.com"],
        ),
        # "agent" < "Support lead" case-insensitively; no title sorts last ascending
        (
            SortKey("title", False),
            False,
            ["zed@example.com", "jane.doe@example.com", "Bob.Smith@Example.org"],
        ),
        (
            SortKey("title", False),
            True,
            ["Bob.Smith@Example.org", "jane.doe@example.com", "zed@example.com"],
        ),
    ],
)
def test_sort_values(agent_records, key, descending, expected):
    ordered = sorted(agent_records, key=lambda record: sort_value(record, key), reverse=descending)
    assert [record.email for record in ordered] == expected


def test_naive_store_timestamps_compare_as_utc(make_agent):
    # Naive on purpose: the store hands back naive UTC timestamps on SQLite.
    record = make_agent(created_at=datetime(2024, 5, 1, 9, 30))  # noqa: DTZ001
    after = parse_filter(ResourceKind.USER, 'meta.created gt "2024-05-01T11:00:00+02:00"')
    before = parse_filter(ResourceKind.USER, 'meta.created lt "2024-05-01T11:31:00+02:00"')
    assert matches(after, record) is True  # 09:30Z > 09:00Z
    assert matches(before, record) is True  # 09:30Z < 09:31Z
