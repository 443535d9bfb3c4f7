"""Short items share a message (producer/enqueue.py, group_items): one model's consecutive
items until they hold EVALFLEET_QUESTIONS_PER_MESSAGE questions, a long item alone, never more than
MAX_ITEMS_PER_MESSAGE items; every item in exactly one message, the models alternating."""

from __future__ import annotations

from evalfleet.producer.enqueue import MAX_ITEMS_PER_MESSAGE, group_items


def side_by_side(questions: list[int]) -> list[tuple[int, str, int]]:
    """Items as create_run makes them: story by story, the two models side by side."""
    return [
        (2 * index + offset, label, count)
        for index, count in enumerate(questions)
        for offset, label in enumerate(("base", "finetuned"), start=1)
    ]


def test_squad_paragraphs_go_three_to_a_message_of_one_model_and_the_models_alternate() -> None:
    items = side_by_side([5] * 4)  # base 1 3 5 7, finetuned 2 4 6 8
    assert list(group_items(items, 15)) == [[1, 3, 5], [2, 4, 6], [7], [8]]


def test_coqa_stories_go_alone_in_send_order() -> None:
    assert list(group_items(side_by_side([15, 20]), 15)) == [[1], [2], [3], [4]]


def test_a_group_ends_once_it_holds_enough_questions_whatever_the_mix() -> None:
    items = [(1, "a", 5), (2, "a", 12), (3, "a", 20), (4, "a", 3), (5, "a", 0), (6, "a", 1)]
    assert list(group_items(items, 15)) == [[1, 2], [3], [4, 5, 6]]


def test_one_question_items_stop_at_the_item_cap() -> None:
    items = [(item_id, "a", 1) for item_id in range(20)]
    groups = list(group_items(items, 15))
    assert [len(group) for group in groups] == [MAX_ITEMS_PER_MESSAGE, MAX_ITEMS_PER_MESSAGE, 4]
    assert [item_id for group in groups for item_id in group] == list(range(20))


def test_one_question_per_message_sends_every_item_alone() -> None:
    assert list(group_items(side_by_side([5]), 1)) == [[1], [2]]
    assert list(group_items([], 15)) == []
