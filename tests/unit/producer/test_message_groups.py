"""Short items share a message (producer/enqueue.py, group_items): as many consecutive items
as hold QUESTIONS_PER_MESSAGE questions, a long item alone, never more than
MAX_ITEMS_PER_MESSAGE items; every item in exactly one message, in send order."""

from __future__ import annotations

from evalfleet.producer.enqueue import MAX_ITEMS_PER_MESSAGE, QUESTIONS_PER_MESSAGE, group_items


def test_squad_paragraphs_go_three_to_a_message_and_coqa_stories_alone() -> None:
    squad = [(item_id, 5) for item_id in range(1, 8)]
    assert list(group_items(squad, 15)) == [[1, 2, 3], [4, 5, 6], [7]]
    coqa = [(item_id, 15) for item_id in range(1, 4)]
    assert list(group_items(coqa, 15)) == [[1], [2], [3]]


def test_a_group_ends_once_it_holds_enough_questions_whatever_the_mix() -> None:
    items = [(1, 5), (2, 12), (3, 20), (4, 3), (5, 0), (6, 1)]
    assert list(group_items(items, 15)) == [[1, 2], [3], [4, 5, 6]]


def test_one_question_items_stop_at_the_item_cap() -> None:
    items = [(item_id, 1) for item_id in range(20)]
    groups = list(group_items(items, QUESTIONS_PER_MESSAGE))
    assert [len(group) for group in groups] == [MAX_ITEMS_PER_MESSAGE, MAX_ITEMS_PER_MESSAGE, 4]
    assert [item_id for group in groups for item_id in group] == list(range(20))


def test_one_question_per_message_sends_every_item_alone() -> None:
    assert list(group_items([(1, 5), (2, 1)], 1)) == [[1], [2]]
    assert list(group_items([], 15)) == []
