"""The filter IR, hostile filters, and list/search parameters."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deskgate.scim import errors
from deskgate.scim.errors import InvalidFilterException, SCIMException
from deskgate.scim.filter_ir import And, Compare, CompareOp, Const, Not, Or, Present
from deskgate.scim.filters import (
    MAX_FILTER_DEPTH,
    MAX_FILTER_LENGTH,
    MAX_FILTER_NODES,
    parse_filter,
)
from deskgate.scim.query import (
    DEFAULT_COUNT,
    MAX_COUNT,
    ListQuery,
    SortKey,
    SortOrder,
    parse_list_query,
    parse_search_request,
)
from deskgate.scim.records import ResourceKind

USER, GROUP = ResourceKind.USER, ResourceKind.GROUP
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
EQ, CO, SW, EW, GT, GE, LT, LE = (
    CompareOp.EQ,
    CompareOp.CO,
    CompareOp.SW,
    CompareOp.EW,
    CompareOp.GT,
    CompareOp.GE,
    CompareOp.LT,
    CompareOp.LE,
)


def s(attr: str, op: CompareOp, value: str) -> Compare:
    """A case-insensitive string comparison."""
    return Compare(attr, op, value, case_exact=False)


def x(attr: str, op: CompareOp, value: str) -> Compare:
    """A case-exact string comparison."""
    return Compare(attr, op, value, case_exact=True)


def when(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


USER_FILTERS = [
    # every operator, on strings
    ('userName eq "bjensen@example.com"', s("userName", EQ, "bjensen@example.com")),
    ('userName ne "bjensen@example.com"', Not(s("userName", EQ, "bjensen@example.com"))),
    ('displayName co "Jen"', s("displayName", CO, "Jen")),
    ('name.familyName sw "J"', s("name.familyName", SW, "J")),
    ('name.givenName ew "ara"', s("name.givenName", EW, "ara")),
    ("title pr", Present("title")),
    ('locale gt "en"', s("locale", GT, "en")),
    ('locale ge "en"', s("locale", GE, "en")),
    ('title lt "m"', s("title", LT, "m")),
    ('title le "m"', s("title", LE, "m")),
    # case-exact attributes
    ('externalId eq "00uJl29"', x("externalId", EQ, "00uJl29")),
    ('id eq "a1"', x("id", EQ, "a1")),
    # every operator, on dates (typed, UTC, .NET's 7 fractional digits)
    (
        'meta.created gt "2011-05-13T04:42:34Z"',
        Compare("meta.created", GT, when(2011, 5, 13, 4, 42, 34), True),
    ),
    (
        'meta.created ge "2011-05-13T04:42:34+02:00"',
        Compare("meta.created", GE, when(2011, 5, 13, 2, 42, 34), True),
    ),
    (
        'meta.lastModified lt "2011-05-13"',
        Compare("meta.lastModified", LT, when(2011, 5, 13), True),
    ),
    (
        'meta.lastModified le "2011-05-13T04:42:34.1234567Z"',
        Compare("meta.lastModified", LE, when(2011, 5, 13, 4, 42, 34, 123456), True),
    ),
    (
        'meta.created eq "2011-05-13T04:42:34"',
        Compare("meta.created", EQ, when(2011, 5, 13, 4, 42, 34), True),
    ),
    (
        'meta.created ne "2011-05-13T04:42:34Z"',
        Not(Compare("meta.created", EQ, when(2011, 5, 13, 4, 42, 34), True)),
    ),
    # booleans, Entra's strings included
    ("active eq true", Compare("active", EQ, True, True)),
    ("active eq false", Compare("active", EQ, False, True)),
    ('active eq "True"', Compare("active", EQ, True, True)),
    ('active eq "False"', Compare("active", EQ, False, True)),
    ("active ne true", Not(Compare("active", EQ, True, True))),
    ("active pr", Const(True)),
    # logic and grouping
    ('title pr and userName sw "a"', And((Present("title"), s("userName", SW, "a")))),
    ("title pr or locale pr", Or((Present("title"), Present("locale")))),
    ("not (title pr)", Not(Present("title"))),
    ("not(not (title pr))", Present("title")),
    (
        'title pr and (locale eq "fr" or locale eq "de")',
        And((Present("title"), Or((s("locale", EQ, "fr"), s("locale", EQ, "de"))))),
    ),
    (
        "(title pr and locale pr) or displayName pr",
        Or((And((Present("title"), Present("locale"))), Present("displayName"))),
    ),
    (
        "title pr and locale pr and displayName pr",
        And((Present("title"), Present("locale"), Present("displayName"))),
    ),
    # canonical names: case, URN prefix, aliases
    ('USERNAME Eq "A@B.C"', s("userName", EQ, "A@B.C")),
    (f'{CORE}:userName eq "a@b.c"', s("userName", EQ, "a@b.c")),
    (f'{CORE.upper()}:name.givenName eq "Jo"', s("name.givenName", EQ, "Jo")),
    ('emails eq "a@b.c"', s("emails.value", EQ, "a@b.c")),
    ('emails.value co "@example.com"', s("emails.value", CO, "@example.com")),
    # value paths on the single work email
    ('emails[type eq "work"].value eq "a@b.c"', s("emails.value", EQ, "a@b.c")),
    ('emails[type eq "work" and value co "@x"]', s("emails.value", CO, "@x")),
    ('emails[value ew ".org"]', s("emails.value", EW, ".org")),
    ('emails[type eq "WORK"]', Present("emails.value")),
    ('emails[type eq "home"]', Const(False)),
    ("emails[primary eq true]", Present("emails.value")),
    ('emails[not (type eq "home")]', Present("emails.value")),
    ('emails[type eq "home"] or title pr', Present("title")),
    ('emails[type eq "home"] and title pr', Const(False)),
    ("emails pr", Present("emails.value")),
    ("emails.type pr", Const(True)),
    ('meta.resourceType eq "User"', Const(True)),
    ('meta.resourceType eq "Group"', Const(False)),
    # presence and null
    ("name pr", Or((Present("name.givenName"), Present("name.familyName")))),
    ("userName pr", Const(True)),
    ("meta.created pr", Const(True)),
    ("title eq null", Not(Present("title"))),
    ("title ne null", Present("title")),
    ("emails.type eq null", Const(False)),
    # numbers read as strings
    ("externalId eq 12345", x("externalId", EQ, "12345")),
    # unquoted values (Entra's docs, Microsoft's Postman suite)
    ("externalId eq jyoung", x("externalId", EQ, "jyoung")),
    ("userName sw O", s("userName", SW, "O")),
    (
        "meta.Created gt 2015-10-10T14:38:21.8617979-07:00",
        Compare("meta.created", GT, datetime(2015, 10, 10, 21, 38, 21, 861797, tzinfo=UTC), True),
    ),
    (
        "name.FamilyName eq Employee and "
        "(emails.Value co example.com or emails.Value co example.org)",
        And(
            (
                s("name.familyName", EQ, "Employee"),
                Or((s("emails.value", CO, "example.com"), s("emails.value", CO, "example.org"))),
            )
        ),
    ),
    ('userName eq "a eq b"', s("userName", EQ, "a eq b")),
]


@pytest.mark.parametrize(("expression", "expected"), USER_FILTERS, ids=[f for f, _ in USER_FILTERS])
def test_user_filters(expression, expected):
    assert parse_filter(USER, expression) == expected


GROUP_FILTERS = [
    ('displayName eq "Test SCIMv2"', s("displayName", EQ, "Test SCIMv2")),
    ('externalId eq "abc"', x("externalId", EQ, "abc")),
    ('members eq "u1"', x("members.value", EQ, "u1")),
    ('members.value eq "u1"', x("members.value", EQ, "u1")),
    ('members.value ne "u1"', Not(x("members.value", EQ, "u1"))),
    ('members.value sw "u"', x("members.value", SW, "u")),
    ("members pr", Present("members.value")),
    ('members[value eq "u1"]', x("members.value", EQ, "u1")),
    (
        'members[value eq "u1" or value eq "u2"]',
        Or((x("members.value", EQ, "u1"), x("members.value", EQ, "u2"))),
    ),
    (
        'meta.lastModified gt "2024-01-01T00:00:00Z"',
        Compare("meta.lastModified", GT, when(2024, 1, 1), True),
    ),
    (
        'urn:ietf:params:scim:schemas:core:2.0:Group:displayName co "tier"',
        s("displayName", CO, "tier"),
    ),
    ("displayName pr", Const(True)),
    ('meta.resourceType eq "group"', Const(False)),  # resourceType is caseExact
]


@pytest.mark.parametrize(
    ("expression", "expected"), GROUP_FILTERS, ids=[f for f, _ in GROUP_FILTERS]
)
def test_group_filters(expression, expected):
    assert parse_filter(GROUP, expression) == expected


def test_dates_are_timezone_aware_utc():
    compare = parse_filter(USER, 'meta.created gt "2011-05-13T06:42:34+02:00"')
    assert isinstance(compare, Compare)
    assert compare.value == datetime(2011, 5, 13, 4, 42, 34, tzinfo=timezone(timedelta(0)))
    assert compare.value.utcoffset() == timedelta(0)


HOSTILE_USER_FILTERS = [
    # unknown or unsupported attributes
    'nickName eq "x"',
    'emails.display eq "x"',
    'emails[display eq "x"]',
    'name.formatted eq "x"',
    "name.middleName pr",
    'name eq "x"',
    'password eq "x"',
    'groups.value eq "g1"',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"',
    'urn:example:custom:User:userName eq "x"',
    'urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"',
    'meta.version eq "W/1"',
    'members.value eq "u1"',
    'name[givenName eq "x"]',
    'emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq "work"]',
    'emails[type.sub eq "work"]',
    # operators on the wrong type, or values of the wrong type
    'active co "t"',
    "active gt true",
    'active eq "yes"',
    "active eq 1",
    'meta.created sw "2011"',
    'meta.created gt "yesterday"',
    "meta.created gt 20110513",
    "userName eq true",
    "userName eq 1.5",
    "userName gt null",
    "emails.type co null",
    # syntax garbage
    "",
    "   ",
    "userName",
    "userName eq",
    'userName eq "unterminated',
    'userName eq "a" and',
    'userName eq "a" or or title pr',
    '(userName eq "a"',
    'userName eq "a")',
    "((((",
    "not title pr",
    'userName === "a"',
    'userName eq "a" ; DROP TABLE agents',
    "userName eq 'single quotes'",
    'emails[type eq "work"',
    'emails[type eq "work"]]',
    'emails[type eq "work"][value eq "x"]',
    'userName eq "\x00"',
    "\x00",
    'userName eq "a\\qb"',
    "🙂 eq 1",
]


@pytest.mark.parametrize("expression", HOSTILE_USER_FILTERS)
def test_hostile_or_unsupported_filters_are_invalid_filter(expression):
    with pytest.raises(InvalidFilterException) as excinfo:
        parse_filter(USER, expression)
    body = errors.error_body(excinfo.value)
    assert (body["status"], body["scimType"]) == ("400", "invalidFilter")
    assert body["detail"]


@pytest.mark.parametrize(
    "expression",
    [
        'members[value eq "a" and value eq "b"]',  # "some member is a and b" is not expressible
        'members[not (value eq "a")]',
        'members[display eq "x"]',
        'members[value ne "a"]',
        'members.value gt "a"',
        'members.display eq "x"',
        'userName eq "a@b.c"',
        "displayName eq true",
        'emails[type eq "work"]',
    ],
)
def test_unsupported_group_filters_are_invalid_filter(expression):
    with pytest.raises(InvalidFilterException):
        parse_filter(GROUP, expression)


def _or_chain(n: int) -> str:
    return " or ".join(f'title eq "t{i}"' for i in range(n))


def test_size_limits():
    at_limit = _or_chain(MAX_FILTER_NODES - 1)  # n comparisons + the or node
    assert isinstance(parse_filter(USER, at_limit), Or)
    with pytest.raises(InvalidFilterException, match="more than"):
        parse_filter(USER, _or_chain(MAX_FILTER_NODES))

    long_value = 'title eq "' + "a" * (MAX_FILTER_LENGTH - 11) + '"'
    assert len(long_value.encode()) == MAX_FILTER_LENGTH
    assert parse_filter(USER, long_value) == s("title", EQ, "a" * (MAX_FILTER_LENGTH - 11))
    with pytest.raises(InvalidFilterException, match="longer than"):
        parse_filter(USER, long_value[:-1] + 'a"')
    with pytest.raises(InvalidFilterException, match="longer than"):
        parse_filter(USER, 'title eq "' + "é" * 2100 + '"')  # 4 KiB counted in bytes


@pytest.mark.parametrize("depth", [MAX_FILTER_DEPTH + 1, 40, 200])
def test_deep_nesting_is_refused(depth):
    expression = "not (" * depth + "title pr" + ")" * depth
    with pytest.raises(InvalidFilterException):
        parse_filter(USER, expression)


def test_nesting_at_the_limit_is_accepted():
    expression = "not (" * MAX_FILTER_DEPTH + "title pr" + ")" * MAX_FILTER_DEPTH
    assert parse_filter(USER, expression) == Present("title")  # even number of nots


def test_redundant_parentheses_do_not_count_as_nesting():
    expression = "(" * 500 + "title pr" + ")" * 500
    assert parse_filter(USER, expression) == Present("title")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_parses_or_is_invalid_filter(text):
    with contextlib.suppress(InvalidFilterException):
        parse_filter(USER, text)


_TOKENS = st.sampled_from(
    [
        "userName",
        "title",
        "emails",
        "members",
        "active",
        "meta.created",
        "[",
        "]",
        "(",
        ")",
        "and",
        "or",
        "not",
        "eq",
        "ne",
        "co",
        "pr",
        "gt",
        '"x"',
        "true",
        "null",
        "1",
        ".",
        "value",
        "type",
        "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        '"2011-05-13"',
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKENS, max_size=14), st.sampled_from([USER, GROUP]))
def test_token_soup_parses_or_is_invalid_filter(tokens, kind):
    try:
        result = parse_filter(kind, " ".join(tokens))
    except InvalidFilterException:
        return
    assert isinstance(result, Compare | Present | And | Or | Not | Const)


# ---------------------------------------------------------------------------
# the clients' own filters


def test_okta_spec_test_filters(okta_spec_steps):
    filters = [step.query["filter"] for step in okta_spec_steps if "filter" in step.query]
    assert filters == [
        'userName eq "abcdefgh@atko.com"',
        'userName eq "Runscope123Qwertyuio456@atko.com"',
        'userName eq "RUNSCOPE123QWERTYUIO456@ATKO.COM"',
        'userName eq "RUNSCOPE123QWERTYUIO456@ATKO.COM"',
    ]
    upper = parse_filter(USER, filters[-1])
    # Okta expects the upper-cased login to find the user: userName is not caseExact.
    assert upper == Compare("userName", EQ, "RUNSCOPE123QWERTYUIO456@ATKO.COM", case_exact=False)
    paging = next(step.query for step in okta_spec_steps if "count" in step.query)
    query = parse_list_query(USER, start_index=paging["startIndex"], count=paging["count"])
    assert (query.start_index, query.count, query.offset) == (1, 1, 0)


def test_okta_reference_queries(okta_doc_requests):
    gets = [r for r in okta_doc_requests if r.method == "GET" and "filter" in r.query]
    parsed = {
        r.path.split("?")[0].rsplit("/", 1)[-1]: parse_list_query(
            USER if "/Users" in r.path else GROUP,
            filter=r.query["filter"],
            start_index=r.query.get("startIndex"),
            count=r.query.get("count"),
        )
        for r in gets
    }
    assert parsed["Users"].filter == s("userName", EQ, "test.user@okta.local")
    assert parsed["Groups"].filter == s("displayName", EQ, "Test SCIMv2")
    assert (parsed["Users"].start_index, parsed["Users"].count) == (1, 100)


def test_postman_filters_and_attribute_lists(postman_requests):
    queries = [r for r in postman_requests if r.method == "GET" and "?" in r.url]
    assert len(queries) >= 8
    for request in queries:
        kind = GROUP if "/Groups" in request.url else USER
        q = request.query
        query = parse_list_query(
            kind,
            filter=q.get("filter"),
            start_index=q.get("startIndex"),
            count=q.get("count"),
            attributes=q.get("attributes"),
            excluded_attributes=q.get("excludedAttributes"),
        )
        assert isinstance(query, ListQuery), request.name
    by_name = {r.name: r for r in queries}
    assert parse_list_query(
        USER, attributes=by_name["Get user attributes"].query["attributes"]
    ).attributes == ("emails",)
    assert parse_list_query(USER, filter=by_name["Get User Filters"].query["filter"]).filter == s(
        "displayName", EQ, "BobIsAmazing"
    )


# ---------------------------------------------------------------------------
# paging, sorting, attributes


@pytest.mark.parametrize(
    ("start_index", "count", "expected"),
    [
        (None, None, (1, DEFAULT_COUNT)),
        ("1", "10", (1, 10)),
        ("0", "10", (1, 10)),
        ("-5", "10", (1, 10)),
        (7, 0, (7, 0)),
        ("3", "-1", (3, 0)),
        ("1", str(MAX_COUNT + 1), (1, MAX_COUNT)),
        ("1", "99999999999", (1, MAX_COUNT)),
        (" 2 ", "+5", (2, 5)),
        ("", "", (1, DEFAULT_COUNT)),
    ],
)
def test_paging_parameters(start_index, count, expected):
    query = parse_list_query(USER, start_index=start_index, count=count)
    assert (query.start_index, query.count) == expected
    assert query.offset == expected[0] - 1


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("start_index", "abc"),
        ("count", "1.5"),
        ("count", "ten"),
        ("start_index", True),
        ("count", "1" * 40),
    ],
)
def test_non_integer_paging_is_invalid_value(parameter, value):
    with pytest.raises(errors.InvalidValueException):
        parse_list_query(USER, **{parameter: value})


@pytest.mark.parametrize(
    ("kind", "sort_by", "expected"),
    [
        (USER, "userName", SortKey("userName", False)),
        (USER, "emails", SortKey("emails.value", False)),
        (USER, "emails.value", SortKey("emails.value", False)),
        (USER, "NAME.familyname", SortKey("name.familyName", False)),
        (USER, "meta.lastModified", SortKey("meta.lastModified", True)),
        (USER, f"{CORE}:externalId", SortKey("externalId", True)),
        (GROUP, "displayName", SortKey("displayName", False)),
        (GROUP, "meta.created", SortKey("meta.created", True)),
    ],
)
def test_sort_by_is_canonicalised(kind, sort_by, expected):
    query = parse_list_query(kind, sort_by=sort_by, sort_order="Descending")
    assert query.sort_by == expected
    assert query.sort_order is SortOrder.DESCENDING


@pytest.mark.parametrize(
    ("kind", "sort_by"),
    [
        (USER, "password"),
        (USER, "nickName"),
        (USER, "name"),
        (USER, 'emails[type eq "work"]'),
        (USER, "emails.type"),
        (GROUP, "members"),
        (GROUP, "members.value"),
        (USER, "(("),
    ],
)
def test_unsortable_attributes_are_invalid_path(kind, sort_by):
    with pytest.raises(errors.InvalidPathException) as excinfo:
        parse_list_query(kind, sort_by=sort_by)
    assert errors.error_body(excinfo.value)["scimType"] == "invalidPath"


def test_sort_order_defaults_to_ascending_and_rejects_garbage():
    assert parse_list_query(USER, sort_by="userName").sort_order is SortOrder.ASCENDING
    with pytest.raises(errors.InvalidValueException):
        parse_list_query(USER, sort_by="userName", sort_order="sideways")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("userName,emails", ("userName", "emails")),
        (" userName , name.givenName ,", ("userName", "name.givenName")),
        ('emails[type eq "work"]', ("emails",)),
        ('emails[value eq "a,b"],userName', ("emails", "userName")),
        ('emails[type eq "work"].value', ("emails.value",)),
        (["userName", "title,locale"], ("userName", "title", "locale")),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",),
        ),
        ("userName,userName", ("userName",)),
    ],
)
def test_attribute_lists(value, expected):
    assert parse_list_query(USER, attributes=value).attributes == expected
    assert parse_list_query(USER, excluded_attributes=value).excluded_attributes == expected


@pytest.mark.parametrize("value", ["user Name", "((", 'userName eq "x"', "a..b"])
def test_malformed_attribute_lists_are_invalid_path(value):
    with pytest.raises(errors.InvalidPathException):
        parse_list_query(USER, attributes=value)


def test_attributes_and_excluded_attributes_are_exclusive():
    with pytest.raises(errors.InvalidValueException):
        parse_list_query(USER, attributes="userName", excluded_attributes="emails")


def test_a_bad_filter_in_a_list_query_is_invalid_filter():
    with pytest.raises(InvalidFilterException):
        parse_list_query(USER, filter='nickName eq "x"')
    assert parse_list_query(USER, filter="  ").filter is None


def test_search_request_body():
    query = parse_search_request(
        USER,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "attributes": ["displayName", "userName"],
            "filter": 'displayName sw "smith"',
            "startIndex": 1,
            "count": 10,
            "sortBy": "userName",
            "sortOrder": "descending",
        },
    )
    assert query == ListQuery(
        filter=s("displayName", SW, "smith"),
        start_index=1,
        count=10,
        sort_by=SortKey("userName", False),
        sort_order=SortOrder.DESCENDING,
        attributes=("displayName", "userName"),
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (["not an object"], errors.InvalidValueException),
        ({"filter": 42}, InvalidFilterException),
        ({"filter": 'title eq "x" and'}, InvalidFilterException),
        ({"sortBy": 3}, errors.InvalidValueException),
        ({"count": "many"}, errors.InvalidValueException),
    ],
)
def test_invalid_search_requests(body, error):
    with pytest.raises(error):
        parse_search_request(GROUP, body)


def test_every_failure_is_a_scim_exception():
    for call in (
        lambda: parse_list_query(USER, filter="(("),
        lambda: parse_list_query(USER, count="x"),
        lambda: parse_list_query(USER, sort_by="zzz"),
    ):
        with pytest.raises(SCIMException) as excinfo:
            call()
        assert excinfo.value.status == 400
