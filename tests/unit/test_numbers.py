"""Casualty figures: forms, vague amounts, ranges, and what is not a count."""

from __future__ import annotations

import pytest

from services.classify.numbers import best, figures


def _best(text: str) -> dict[str, int]:
    return {str(kind): value for kind, value in best(figures(text)).items()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("At least 170 people are known to have been killed and 2,000 injured.",
         {"killed": 170, "injured": 2000}),
        ("UNHCR said 275,000 have been displaced.", {"displaced": 275000}),
        ("More than 2,000 were wounded in the clashes.", {"injured": 2000}),
        ("Scores of people were reportedly killed.", {"killed": 20}),
        ("Hundreds of thousands of people were driven from their homes.", {"displaced": 100000}),
        ("Tens of thousands fled across the border.", {"displaced": 10000}),
        ("The attacks killed at least thousands of people.", {"killed": 1000}),
        ("The death toll rose to 58 on Friday.", {"killed": 58}),
        ("Between 200 and 300 people died.", {"killed": 200}),
        ("1.5 million people have been displaced.", {"displaced": 1500000}),
        ("190 casualties have been reported, with over 1,900 wounded.",
         {"killed": 190, "injured": 1900}),
    ],
)  # fmt: skip
def test_figures(text: str, expected: dict[str, int]) -> None:
    assert _best(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Tuesday, March 21, 2017, 2:00 PM. Killings were condemned.",
        "The 2011 killings were investigated.",
        "He was killed 20 km from the town.",
        "Six years after the killings, nobody was tried.",
        "The city of 2 million people. Officials said the dead were buried.",
    ],
)
def test_not_counts(text: str) -> None:
    assert _best(text) == {}


def test_the_highest_stated_figure_wins() -> None:
    text = "Hundreds of thousands were driven from their homes. 275,000 have been displaced."
    assert _best(text) == {"displaced": 275000}
    assert _best("Officials said 20 died; aid groups put the death toll at 45.") == {"killed": 45}


def test_killed_or_injured_together_is_no_figure() -> None:
    assert _best("Dozens of civilians were killed or injured in the strike.") == {}
    assert _best("A quarter of a million people have been displaced.") == {"displaced": 250000}


def test_offsets_point_at_the_number() -> None:
    text = "Officials said 45 civilians were killed."
    (fig,) = figures(text)
    assert text[fig.start : fig.end] == "45"
    assert (fig.kind, fig.value, fig.vague) == ("killed", 45, False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Militants attacked the camp, killing at least 45 civilians and wounding 10 more.",
         {"killed": 45, "injured": 10}),
        ("Violence has now killed at least 250 and forced some 70,000 people to flee.",
         {"killed": 250, "displaced": 70000}),
        ("The number of people killed in the airstrike has risen to at least 171.",
         {"killed": 171}),
        ("The U.N. said the death toll from the attack on a U.N. compound has risen to 58.",
         {"killed": 58}),
        ("More than 100 people, including 20 children, are feared dead.", {"killed": 100}),
        ("Caritas estimated the death toll was 1,000.", {"killed": 1000}),
    ],
)  # fmt: skip
def test_which_word_a_figure_counts(text: str, expected: dict[str, int]) -> None:
    assert _best(text) == expected
