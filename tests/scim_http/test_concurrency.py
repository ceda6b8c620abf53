"""Racing clients over real HTTP: the database settles them, never a 5xx."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from deskgate.store.models import Agent, GroupMember

from scim_helpers import ScimAccount, create_group, create_user, fresh, patch_body, user_body


def race(
    count: int, action: Callable[[httpx.Client], httpx.Response], base_url: str, token: str
) -> list[httpx.Response]:
    """Run `action` in `count` threads, each with its own connection, released together."""
    barrier = threading.Barrier(count)
    responses: list[httpx.Response] = []
    errors: list[BaseException] = []

    def run() -> None:
        with httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            client.get("ServiceProviderConfig")  # connect first, so the requests really overlap
            barrier.wait()
            try:
                responses.append(action(client))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return responses


def test_two_simultaneous_posts_of_one_user_name(
    live_server: str, scim_account: ScimAccount, db: Any
) -> None:
    base = f"{live_server}{scim_account.base_path}/"
    for n in range(5):
        email = f"racer{n}@example.com"
        responses = race(
            2,
            # race() runs the lambda before the loop moves on, so the loop variables are current.
            lambda client: client.post("Users", json=user_body(email.upper() if n % 2 else email)),  # noqa: B023
            base,
            scim_account.token,
        )
        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        clash = next(r for r in responses if r.status_code == 409).json()
        assert clash["scimType"] == "uniqueness"
        count = fresh(db).scalar(
            select(func.count()).select_from(Agent).where(Agent.email_normalized == email)
        )
        assert count == 1


def test_simultaneous_member_changes_all_land(
    live_server: str, scim: Any, scim_account: ScimAccount, db: Any
) -> None:
    users = [create_user(scim, f"member{n}@example.com")["id"] for n in range(6)]
    group = create_group(scim, "Busy")
    base = f"{live_server}{scim_account.base_path}/"
    iterator = iter(users)
    lock = threading.Lock()

    def add_one(client: httpx.Client) -> httpx.Response:
        with lock:
            user_id = next(iterator)
        body = patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]})
        return client.patch(f"Groups/{group['id']}", json=body)

    responses = race(len(users), add_one, base, scim_account.token)
    assert Counter(r.status_code for r in responses) == {204: len(users)}
    rows = (
        fresh(db)
        .scalars(select(GroupMember.agent_id).where(GroupMember.group_id == group["id"]))
        .all()
    )
    assert sorted(rows) == sorted(users)
    assert scim.get(f"Groups/{group['id']}").json()["meta"]["version"] == f'W/"{1 + len(users)}"'


def test_simultaneous_patches_of_one_user_each_bump_the_version(
    live_server: str, scim: Any, scim_account: ScimAccount
) -> None:
    user = create_user(scim, "busy@example.com")
    titles = iter([f"Title {n}" for n in range(6)])
    lock = threading.Lock()

    def patch_title(client: httpx.Client) -> httpx.Response:
        with lock:
            title = next(titles)
        return client.patch(
            f"Users/{user['id']}",
            json=patch_body({"op": "replace", "path": "title", "value": title}),
        )

    responses = race(6, patch_title, f"{live_server}{scim_account.base_path}/", scim_account.token)
    assert [r.status_code for r in responses] == [200] * 6
    versions = sorted(int(r.headers["ETag"][3:-1]) for r in responses)
    assert versions == [2, 3, 4, 5, 6, 7]  # no lost update
