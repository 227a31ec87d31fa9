"""Questions: asking, voting rules, withdrawing, moderation, ordering."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, Invalid, NotAllowed, Space
from causerie.domain import questions as q

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def space() -> Space:
    s = Space.create(space_id="sp", host_id="host", host_name="Hana", title="Q&A", now=NOW)
    s.make_cohost("host", "co")
    return s


def asked(s: Space, qid: str, author: str = "l1", minutes: int = 0) -> q.Question:
    return q.ask(
        s,
        question_id=qid,
        author_id=author,
        author_name="Lou",
        text=f"Why {qid}?",
        now=NOW + timedelta(minutes=minutes),
    )


def test_ask_before_and_during_but_not_after() -> None:
    s = space()
    assert asked(s, "a").state is q.QuestionState.OPEN  # scheduled: questions ahead of time
    s.start("host", NOW)
    assert asked(s, "b").text == "Why b?"
    s.end("host", NOW)
    with pytest.raises(Conflict, match="closed"):
        asked(s, "c")


@pytest.mark.parametrize(("text", "message"), [("", "empty"), ("x" * 281, "too long")])
def test_bad_text(text: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        q.ask(space(), question_id="a", author_id="l", author_name="", text=text, now=NOW)


def test_html_is_kept_as_text() -> None:
    question = q.ask(
        space(), question_id="a", author_id="l", author_name="", text="<script>x</script>", now=NOW
    )
    assert question.text == "<script>x</script>" and question.author_name == "Guest"


def test_removed_people_cannot_ask_or_vote() -> None:
    s = space()
    question = asked(s, "a")
    s.removed.add("bad")
    with pytest.raises(NotAllowed):
        asked(s, "b", author="bad")
    with pytest.raises(NotAllowed):
        q.check_vote(s, question, "bad")


def test_votes_only_on_open_questions() -> None:
    s = space()
    question = asked(s, "a")
    q.check_vote(s, question, "l2")
    q.moderate(s, question, "host", "answer")
    with pytest.raises(Conflict, match="answered"):
        q.check_vote(s, question, "l2")


def test_withdraw_is_for_the_author() -> None:
    s = space()
    question = asked(s, "a", author="l1")
    with pytest.raises(NotAllowed):
        q.withdraw(question, "l2")
    q.withdraw(question, "l1")
    assert question.state is q.QuestionState.WITHDRAWN and not question.visible
    with pytest.raises(Conflict):
        q.withdraw(question, "l1")
    with pytest.raises(Conflict, match="withdrawn"):
        q.moderate(s, question, "host", "pin")


def test_moderation_by_host_and_cohost_only() -> None:
    s = space()
    question = asked(s, "a")
    with pytest.raises(NotAllowed):
        q.moderate(s, question, "l1", "pin")
    q.moderate(s, question, "co", "pin")
    assert question.pinned
    q.moderate(s, question, "host", "hide")
    assert question.state is q.QuestionState.HIDDEN and not question.pinned
    with pytest.raises(Conflict):
        q.moderate(s, question, "host", "pin")
    q.moderate(s, question, "host", "show")
    assert question.state is q.QuestionState.OPEN


def test_order_pinned_then_votes_then_age_then_answered() -> None:
    s = space()
    old, new, popular, done, pinned = (asked(s, x, minutes=i) for i, x in enumerate("abcde"))
    popular.votes, old.votes, new.votes = 5, 1, 1
    q.moderate(s, done, "host", "answer")
    q.moderate(s, pinned, "host", "pin")
    hidden = asked(s, "f")
    q.moderate(s, hidden, "host", "hide")
    order = [x.id for x in q.ordered([old, new, popular, done, pinned, hidden])]
    assert order == ["e", "c", "a", "b", "d", "f"]
