"""minigpt.display's probability bar and token label, which the CLI and the dashboard share."""

import pytest

from minigpt.display import cells, probability_bar, token_label


@pytest.mark.parametrize(
    ("fraction", "bar", "percent"),
    [
        (0.0, "", "   0.0%"),
        (1.0, "████████", " 100.0%"),
        (0.5, "████", "  50.0%"),
        (4 / 64, "▌", "   6.2%"),  # four eighths of the first character
        (1 / 64, "▏", "   1.6%"),  # one eighth
        (1.5, "████████", " 150.0%"),  # a bar never overflows its width
    ],
)
def test_the_bar_fills_eighths_of_its_width_then_gives_the_percentage(
    fraction: float, bar: str, percent: str
) -> None:
    """A bar is `width` characters filled to the fraction in eighths, then a percentage."""
    assert probability_bar(fraction, 8) == bar.ljust(8) + percent


# (token, align): its label at width 8
LABELS = {
    ("␣the", "<"): "␣the    ",
    ("␣the", ">"): "    ␣the",
    ("abcdefgh", "<"): "abcdefgh",
    ("abcdefghi", "<"): "abcdefg…",
    ("日本語", "<"): "日本語  ",  # three wide characters: six cells
    ("日本語日本語", ">"): " 日本語…",  # cut to seven cells, the "…" the eighth
    ("e\u0301", "<"): "e\u0301       ",  # a combining accent takes no cell
    ("", ">"): "        ",
}


@pytest.mark.parametrize(("token", "align"), LABELS)
def test_a_label_is_the_token_in_exactly_width_cells(token: str, align: str) -> None:
    """A token longer than the width is cut with "…"; any label takes exactly width cells."""
    assert token_label(token, 8, align) == LABELS[token, align]
    assert cells(LABELS[token, align]) == 8
