"""Poisoning the training signal through `POST /v1/feedback`, against a real gateway on loopback with two user
keys: a key may rate only the responses it received (unless its role is a rater's), each response once, and
every feedback span names its rater. The attacks run while the gateway serves; the spans are read once it has
stopped (which flushes them), so no assertion waits on an export interval."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry.trace import INVALID_SPAN_CONTEXT

from serving.access.guard import ANONYMOUS, Principal
from serving.access.keys import Role
from serving.exceptions import FeedbackExistsError, FeedbackNotOwnerError
from serving.responses import RecentResponse
from serving.routes.feedback import check_rater
from serving.server import running
from serving.settings import FeedbackSettings
from serving.telemetry import attributes as a
from serving.telemetry.files import SpanRecord, read_spans
from tests.attack.conftest import AUTH, CHAT, Upstream, chat_body, gateway_config

FEEDBACK = "/v1/feedback"
REPEATS = 30
UNKNOWN_ID = "chatcmpl-forgotten-or-from-another-replica"


@dataclass
class Caller:
    """A key of the gateway under attack: its id (what spans record) and a client sending it."""

    id: str
    client: httpx.Client

    def ask(self) -> str:
        """A chat answer's response id."""
        answer = self.client.post(CHAT, json=chat_body())
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id"])

    def rate(self, response_id: str, score: float) -> httpx.Response:
        return self.client.post(FEEDBACK, json={"id": response_id, "score": score, "source": "attack"})


@dataclass
class Attack:
    """What every attack got back while the gateway ran, and the spans it left once stopped."""

    alice: str = ""
    bob: str = ""
    operator: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    """Response ids by name: whose response, and what it was used for."""
    answers: dict[str, list[httpx.Response]] = field(default_factory=dict)
    spans: list[SpanRecord] = field(default_factory=list)

    def feedback_on(self, response_id: str) -> list[SpanRecord]:
        return [
            s
            for s in self.spans
            if s.name == a.FEEDBACK_SPAN_NAME and s.attributes[a.FEEDBACK_RESPONSE_ID] == response_id
        ]

    def request_of(self, response_id: str) -> SpanRecord:
        (span,) = [
            s for s in self.spans if s.name == a.CHAT_SPAN_NAME and s.attributes.get(a.RESPONSE_ID) == response_id
        ]
        return span


def _key(admin: httpx.Client, role: str) -> tuple[str, str]:
    created = admin.post("/admin/keys", json={"role": role})
    assert created.status_code == 200, created.text
    return str(created.json()["id"]), str(created.json()["key"])


def _attack(url: str, attack: Attack) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as admin:
        (alice_id, alice_key), (bob_id, bob_key) = _key(admin, "user"), _key(admin, "user")
        operator_id, operator_key = _key(admin, "operator")
        attack.alice, attack.bob, attack.operator = alice_id, bob_id, operator_id
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {alice_key}"}, timeout=30) as alice_client,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {bob_key}"}, timeout=30) as bob_client,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {operator_key}"}, timeout=30) as op_client,
        ):
            alice, bob = Caller(alice_id, alice_client), Caller(bob_id, bob_client)
            master, operator = Caller("master", admin), Caller(operator_id, op_client)
            ids = attack.ids
            ids |= {"stolen": alice.ask(), "repeated": alice.ask(), "by-master": bob.ask(), "by-operator": alice.ask()}
            attack.answers["stolen"] = [bob.rate(ids["stolen"], 0.0), alice.rate(ids["stolen"], 0.9)]
            attack.answers["repeated"] = [alice.rate(ids["repeated"], i / REPEATS) for i in range(REPEATS)]
            attack.answers["by-master"] = [master.rate(ids["by-master"], 0.4), bob.rate(ids["by-master"], 1.0)]
            attack.answers["by-operator"] = [operator.rate(ids["by-operator"], 0.6)]
            attack.answers["unknown"] = [bob.rate(UNKNOWN_ID, 0.1), bob.rate(UNKNOWN_ID, 0.2)]


@pytest.fixture(scope="module")
def attack(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attack]:
    folder = tmp_path_factory.mktemp("feedback-abuse")
    found = Attack()
    with running(gateway_config(upstream.url, folder)) as url:
        _attack(url, found)
    found.spans = list(read_spans(folder / "traces"))
    yield found


def _refused(response: httpx.Response, status: int, code: str, *hints: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"] and error["code"] == code, error
    assert error["param"] == "id"
    for hint in hints:
        assert hint in error["message"], (hint, error["message"])
    return error


def test_a_key_cannot_rate_a_response_another_key_received(attack: Attack) -> None:
    stolen, owner = attack.answers["stolen"]
    error = _refused(stolen, 403, "feedback_not_owner", "the key that made the request", "admin or operator")
    assert error["type"] == "permission_error" and attack.bob not in error["message"]
    assert owner.status_code == 200 and owner.json()["known"] is True  # the refusal did not use up the rating
    (span,) = attack.feedback_on(attack.ids["stolen"])
    assert span.attributes[a.KEY_ID] == attack.alice and span.attributes[a.FEEDBACK_SCORE] == 0.9
    # Bob's refused posts left no span: his only feedback spans are the two on an id the gateway does not know.
    by_bob = [s for s in attack.spans if s.name == a.FEEDBACK_SPAN_NAME and s.attributes[a.KEY_ID] == attack.bob]
    assert [s.attributes[a.FEEDBACK_RESPONSE_ID] for s in by_bob] == [UNKNOWN_ID, UNKNOWN_ID]


def test_a_response_is_rated_once_and_later_posts_are_refused(attack: Attack) -> None:
    first, *later = attack.answers["repeated"]
    assert first.status_code == 200 and first.json() == {
        "id": attack.ids["repeated"],
        "object": "feedback",
        "recorded": True,
        "known": True,
    }
    assert len(later) == REPEATS - 1
    for response in later:
        _refused(response, 409, "feedback_exists", "already has feedback", "keeps the first")
    (span,) = attack.feedback_on(attack.ids["repeated"])
    assert span.attributes[a.FEEDBACK_SCORE] == 0.0  # the first post's score, never rewritten


def test_the_feedback_span_names_its_rater_and_links_its_request(attack: Attack) -> None:
    response_id = attack.ids["repeated"]
    (span,) = attack.feedback_on(response_id)
    request = attack.request_of(response_id)
    assert request.attributes[a.KEY_ID] == attack.alice
    assert span.attributes[a.KEY_ID] == attack.alice and span.attributes[a.FEEDBACK_RATER_ROLE] == "user"
    assert span.attributes[a.FEEDBACK_KNOWN] is True and span.links == ((request.trace_id, request.span_id),)


def test_the_master_key_and_an_operator_may_rate_anyone_s_response(attack: Attack) -> None:
    by_master, owner_after = attack.answers["by-master"]
    assert by_master.status_code == 200 and by_master.json()["known"] is True
    _refused(owner_after, 409, "feedback_exists")  # once per response, whoever rated it first
    (span,) = attack.feedback_on(attack.ids["by-master"])
    assert attack.request_of(attack.ids["by-master"]).attributes[a.KEY_ID] == attack.bob
    assert (span.attributes[a.KEY_ID], span.attributes[a.FEEDBACK_RATER_ROLE]) == ("master", "admin")
    (by_operator,) = attack.answers["by-operator"]
    assert by_operator.status_code == 200
    (span,) = attack.feedback_on(attack.ids["by-operator"])
    assert (span.attributes[a.KEY_ID], span.attributes[a.FEEDBACK_RATER_ROLE]) == (attack.operator, "operator")


def test_feedback_on_an_unknown_id_is_recorded_with_its_rater_for_the_label_stage(attack: Attack) -> None:
    for response in attack.answers["unknown"]:
        assert response.status_code == 200 and response.json()["known"] is False
    spans = attack.feedback_on(UNKNOWN_ID)
    assert [(s.attributes[a.KEY_ID], s.attributes[a.FEEDBACK_KNOWN], s.links) for s in spans] == [
        (attack.bob, False, ()),
        (attack.bob, False, ()),
    ]


def test_with_no_rater_roles_only_the_owner_may_rate() -> None:
    remembered = RecentResponse(INVALID_SPAN_CONTEXT, "key-alice")
    nobody = FeedbackSettings(raters=())
    with pytest.raises(FeedbackNotOwnerError, match="only the key that made the request may rate it"):
        check_rater(remembered, "chatcmpl-1", Principal("master", Role.ADMIN), nobody)
    with pytest.raises(FeedbackNotOwnerError):
        check_rater(remembered, "chatcmpl-1", Principal(ANONYMOUS, None), FeedbackSettings())
    check_rater(remembered, "chatcmpl-1", Principal("key-alice", Role.USER), nobody)
    remembered.rated = True
    with pytest.raises(FeedbackExistsError):
        check_rater(remembered, "chatcmpl-1", Principal("key-alice", Role.USER), nobody)
