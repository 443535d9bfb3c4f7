"""Answer lengths, verbose answers, and the questions a fine-tune fixed and broke."""

from __future__ import annotations

from evalfleet.aggregator.diagnostics import (
    answer_words,
    compute_diagnostics,
    contains_gold,
    story_excerpt,
)
from evalfleet.aggregator.metrics import score_turn
from evalfleet.aggregator.scored import ScoredTurn


def answered(label: str, story: str, number: int, text: str, references: tuple[str, ...],
             question: str = "What?") -> ScoredTurn:  # fmt: skip
    score = score_turn(references, text)
    return ScoredTurn(
        label=label, model=label, story_key=story, story_id=1, source="wiki", turn=number,
        question=question, references=references, answer=text, error=None, em=score.em,
        f1=score.f1, prompt_tokens=1, completion_tokens=1, latency_ms=1.0,
    )  # fmt: skip


def test_a_gold_answer_inside_a_longer_answer_is_found_as_whole_words_after_normalizing() -> None:
    assert contains_gold("Based on the story, the cat was WHITE.", ["white"])
    assert contains_gold("It was in the red barn", ["The red barn!"])
    # "no" is not inside "not", nor "cat" inside "cats"
    assert not contains_gold("It is not there", ["no"])
    assert not contains_gold("cats everywhere", ["cat"])
    # A reference that normalizes to nothing never matches
    assert not contains_gold("the", ["a"])


def test_answer_length_counts_words() -> None:
    assert answer_words("  Cotton lived  in a barn. ") == 5
    assert answer_words("") == 0


def test_the_excerpt_is_the_part_of_the_story_around_the_gold_answer() -> None:
    story = " ".join(f"w{i}" for i in range(200)) + " the white kitten " + "x " * 200
    excerpt = story_excerpt(story, ["white kitten"], width=60)
    assert "white kitten" in excerpt
    assert excerpt.startswith("… ") and excerpt.endswith(" …")
    assert len(excerpt) <= 64
    # Nothing found: the opening of the story
    assert story_excerpt("Short story.", ["absent"]) == "Short story."


def test_verbose_answers_that_hold_the_gold_but_fail_em_are_counted_per_model() -> None:
    # Given a wordy base and a concise fine-tune on the same two questions
    refs = ("white",)
    turns = [
        answered("base", "s1", 1, "The story says that the kitten was white.", refs),
        answered("base", "s1", 2, "I don't know.", ("barn",)),
        answered("tuned", "s1", 1, "white", refs),
        answered("tuned", "s1", 2, "barn", ("barn",)),
    ]
    # When diagnosed
    diagnostics = compute_diagnostics(turns, {"s1": "The white kitten lived in a barn."})
    base, tuned = diagnostics.models
    # Then base's first answer is verbose (gold inside, EM 0); the second is just wrong
    assert (base.verbose_misses, base.verbose_share) == (1, 0.5)
    assert (tuned.verbose_misses, tuned.verbose_share) == (0, 0.0)
    # And lengths are in words
    assert base.mean_words == (8 + 3) / 2 and tuned.median_words == 1.0
    assert {b.label: b.count for b in tuned.length_bins}["1"] == 2
    assert {b.label: b.count for b in tuned.f1_bins}["1"] == 2


def test_fixed_and_broke_lists_hold_both_answers_largest_change_first() -> None:
    # Given three questions: one fixed fully, one fixed partly, one broken
    turns = [
        answered("base", "s1", 1, "nothing", ("red barn",), question="Where?"),
        answered("base", "s1", 2, "red", ("red barn",), question="Which?"),
        answered("base", "s1", 3, "Cotton", ("Cotton",), question="<script>Who?</script>"),
        answered("tuned", "s1", 1, "red barn", ("red barn",), question="Where?"),
        answered("tuned", "s1", 2, "the red barn", ("red barn",), question="Which?"),
        answered("tuned", "s1", 3, "a kitten", ("Cotton",), question="<script>Who?</script>"),
    ]
    story = "Cotton lived in a red barn near a farm house."
    # When diagnosed
    changes = compute_diagnostics(turns, {"s1": story}).changes[0]
    # Then both fixes are listed, the full one first; the break is listed with both answers
    assert (changes.reference, changes.other) == ("base", "tuned")
    assert [q.turn for q in changes.fixed] == [1, 2]
    assert changes.fixed[0].change == 100.0
    (broke,) = changes.broke
    assert (broke.reference_answer, broke.other_answer, broke.change) == (
        "Cotton", "a kitten", -100.0,
    )  # fmt: skip
    assert broke.question == "<script>Who?</script>"  # kept verbatim; renderers escape it
    assert broke.excerpt == story
    assert (changes.fixed_total, changes.broke_total) == (2, 1)


def test_the_excerpt_skips_yes_and_no_and_matches_whole_words() -> None:
    story = "Nobody knew. " + "filler " * 60 + "The cat slept in the barn. " + "more " * 60
    # "no" is not found inside "Nobody"; the next anchor (an answer) is used instead
    excerpt = story_excerpt(story, ["no", "slept in the barn."], width=80)
    assert "The cat slept in the barn." in excerpt
