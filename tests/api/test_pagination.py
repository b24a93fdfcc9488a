"""Cursor pagination: every list, newest first, no row twice or skipped while rows arrive."""

import pytest

from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def make_endpoints(organization, n):
    return [WebhookEndpoint.objects.create(organization=organization, url=f"https://h.example.com/{i}",
                                           enabled_events=["*"]) for i in range(n)]


def walk(api, path, **params):
    ids, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        body = api.get(path, query).json()
        pages += 1
        ids += [row["id"] for row in body["data"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return ids, pages
        cursor = body["next_cursor"]


def test_a_list_is_walked_page_by_page_newest_first(api, organization):
    endpoints = make_endpoints(organization, 45)
    ids, pages = walk(api, "/v1/webhook_endpoints", limit=20)
    assert ids == [e.public_id for e in reversed(endpoints)]
    assert pages == 3


def test_the_default_page_size_applies_without_a_limit(settings, api, organization):
    settings.API_PAGE_SIZE = 7
    make_endpoints(organization, 10)
    body = api.get("/v1/webhook_endpoints").json()
    assert len(body["data"]) == 7 and body["has_more"] is True and body["object"] == "list"


def test_rows_added_while_walking_neither_repeat_nor_shift_the_pages(api, organization):
    make_endpoints(organization, 10)
    first = api.get("/v1/webhook_endpoints", {"limit": 5}).json()
    make_endpoints(organization, 3)  # newer rows arrive between pages
    second = api.get("/v1/webhook_endpoints", {"limit": 5, "cursor": first["next_cursor"]}).json()
    seen = [r["id"] for r in first["data"] + second["data"]]
    assert len(seen) == len(set(seen)) == 10 and second["has_more"] is False


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_a_bad_limit_is_refused_with_a_field_error(api, limit):
    response = api.get("/v1/webhook_endpoints", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["limit"]


@pytest.mark.parametrize("cursor", ["%%%", "bm90LWEtbnVtYmVy", "LTU", "MA", "€"])
def test_a_cursor_we_did_not_give_out_is_refused(api, cursor):
    response = api.get("/v1/webhook_endpoints", {"cursor": cursor})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"


def test_events_and_sessions_lists_are_paginated_too(api, event, ticket_type):
    from checkout import services

    for _ in range(3):
        services.create_session(event, [services.Item(ticket_type, 1)])
    for path in ("/v1/checkout/sessions", "/v1/webhook_events"):
        ids, pages = walk(api, path, limit=2)
        assert len(ids) == len(set(ids)) == 3 and pages == 2, path
    assert walk(api, "/v1/events", limit=1) == ([event.public_id], 1)


def test_a_cursor_cannot_reach_another_organizations_rows(api, organization, other_organization):
    make_endpoints(other_organization, 5)
    mine = make_endpoints(organization, 2)
    ids, _ = walk(api, "/v1/webhook_endpoints", limit=1)
    assert ids == [e.public_id for e in reversed(mine)]


def test_a_cursor_does_not_reveal_the_row_number_behind_it(api, organization):
    """Finding 6 of issue 13: cursors were base64 of a global primary key (``MTIz`` = 123)."""
    import base64

    make_endpoints(organization, 3)
    cursor = api.get("/v1/webhook_endpoints", {"limit": 1}).json()["next_cursor"]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert not decoded.isdigit() and b"cursor:" not in decoded  # encrypted, not encoded
    # The same row gives a different cursor each time: nothing to compare between two lists.
    assert api.get("/v1/webhook_endpoints", {"limit": 1}).json()["next_cursor"] != cursor


def test_a_tampered_cursor_is_a_clear_400(api, organization):
    make_endpoints(organization, 3)
    cursor = api.get("/v1/webhook_endpoints", {"limit": 1}).json()["next_cursor"]
    flipped = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    for bad in (flipped, cursor[:-3], cursor + "x", "MTIz"):  # MTIz: the old form of row 123
        response = api.get("/v1/webhook_endpoints", {"cursor": bad})
        assert response.status_code == 400, bad
        body = response.json()["error"]
        assert body["code"] == "invalid_cursor" and "next_cursor" in body["message"]
    assert api.get("/v1/webhook_endpoints", {"cursor": cursor}).status_code == 200


def test_another_organizations_cursor_is_a_clear_400(api, organization, other_organization):
    """Issue 21: docs/api.md says a cursor we did not give out (to this key) is a 400; it was a
    200 with an empty page."""
    from rest_framework.test import APIClient

    from ievents.models import ApiKey

    make_endpoints(other_organization, 3)
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKey.issue(other_organization)[1]}")
    cursor = theirs.get("/v1/webhook_endpoints", {"limit": 1}).json()["next_cursor"]
    assert theirs.get("/v1/webhook_endpoints", {"cursor": cursor}).status_code == 200  # the control: theirs
    response = api.get("/v1/webhook_endpoints", {"cursor": cursor})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_cursor" and "another organization" in error["message"]


def test_another_lists_cursor_is_a_clear_400(api, organization, event, ticket_type):
    make_endpoints(organization, 3)
    cursor = api.get("/v1/webhook_endpoints", {"limit": 1}).json()["next_cursor"]
    response = api.get("/v1/checkout/sessions", {"cursor": cursor})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_cursor"
