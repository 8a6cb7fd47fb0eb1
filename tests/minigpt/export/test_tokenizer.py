"""The exported tokenizers: AutoTokenizer encodes to minigpt's ids and decodes back exactly."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest

from minigpt.batches import prepare_data
from minigpt.config import Config
from minigpt.corpus_text import load_text
from minigpt.errors import ExportError
from minigpt.export.tokenizer import save_hf_tokenizer
from minigpt.tokenizer import ByteTokenizer, CharTokenizer, Cl100kTokenizer, Tokenizer
from tests.minigpt.export.exports import TEXT

# Whitespace runs, line ends, digits, contractions, accents, CJK, emoji (with a joiner and a
# skin tone), a combining mark, special-token text, which minigpt encodes as plain text, and
# the text of a placeholder for an unassigned cl100k id, which is text too.
AWKWARD = [
    "",
    " ",
    "  leading and trailing  ",
    "\n\n\tindented\n   \n",
    "x\r\ny\rz",
    "1 12 123 1234 12345 3.14159 1,000,000",
    "don't I'M they're we'VE",
    "café naïve e\u0301 Ünïcödé",
    "猫は3匹、你好\uff0c世界。",  # a fullwidth comma
    "🐈 👍🏽 👩‍💻 🙂🙂",
    "<|endoftext|> <|fim_prefix|>x<|fim_suffix|>",
    "\ufffd100256 \ufffd",
    "def f(x):\n    return x ** 2  # squared\n",
]


def _load(tokenizer: Tokenizer, folder: Path) -> object:
    """tokenizer exported into folder and loaded back with AutoTokenizer."""
    from transformers import AutoTokenizer

    save_hf_tokenizer(tokenizer, folder, context_length=64)
    return AutoTokenizer.from_pretrained(folder)


def _assert_round_trips(tokenizer: Tokenizer, hf: object, texts: list[str]) -> None:
    """Each text encodes to minigpt's ids (no tokens added) and decodes back to itself."""
    for text in texts:
        ids = tokenizer.encode(text)
        assert hf(text).input_ids == ids, text  # type: ignore[operator]
        assert hf.decode(ids) == text  # type: ignore[attr-defined]


def test_char_tokenizer_round_trips_and_refuses_unknown_characters(tmp_path: Path) -> None:
    """A char vocabulary over awkward text (newlines, CJK, emoji, a lone combining mark)
    exports exactly; a character outside it is refused, as minigpt refuses it."""
    tokenizer = CharTokenizer("".join(AWKWARD) + TEXT)
    hf = _load(tokenizer, tmp_path)
    _assert_round_trips(tokenizer, hf, [*AWKWARD, TEXT])
    with pytest.raises(Exception, match="UNK"):
        hf("Ω")  # type: ignore[operator]


def test_byte_tokenizer_round_trips_any_text(tmp_path: Path) -> None:
    """Byte ids are the UTF-8 bytes in transformers too, and every byte value decodes as
    minigpt decodes it (an invalid sequence as U+FFFD)."""
    tokenizer = ByteTokenizer()
    hf = _load(tokenizer, tmp_path)
    _assert_round_trips(tokenizer, hf, [*AWKWARD, TEXT, "\x00\x01\x7f"])
    every = list(range(256))
    assert hf.decode(every) == tokenizer.decode(every)  # type: ignore[attr-defined]


def test_cl100k_full_vocabulary_matches_tiktoken(tmp_path: Path) -> None:
    """cl100k_base over its full id space encodes the Python docs' text and awkward text
    to tiktoken's ids, the special tokens' ids decode to their text, and the unassigned
    ids, which a model may still sample, decode to U+FFFD as minigpt decodes them, even
    between the bytes of a split character."""
    tokenizer = Cl100kTokenizer()
    hf = _load(tokenizer, tmp_path)
    docs = load_text("builtin:python-docs")[0][:60_000]
    _assert_round_trips(tokenizer, hf, [*AWKWARD, docs])
    specials = [100257, 100258, 100259, 100260, 100276]
    assert hf.decode(specials) == tokenizer.decode(specials)  # type: ignore[attr-defined]
    assert hf.vocab_size == tokenizer.vocab_size  # type: ignore[attr-defined]
    unassigned = [100256, *range(100261, 100276)]
    cat = tokenizer.encode("猫")  # three bytes, more than one token
    assert len(cat) > 1
    for ids in (unassigned, [cat[0], 100256, *cat[1:], 100275, 100257, *cat]):
        assert hf.decode(ids) == tokenizer.decode(ids)  # type: ignore[attr-defined]
    assert "\ufffd" in tokenizer.decode(unassigned)


def test_spelled_compact_vocabulary_is_refused(tmp_path: Path) -> None:
    """A compact vocabulary of the older spelled rule has no exact Hugging Face tokenizer:
    refused in one line naming the ways out, and nothing written."""
    tokenizer = Cl100kTokenizer(np.arange(300, 400), rule="spelled")
    with pytest.raises(ExportError, match=r"train a new run.*data\.compact_vocab=false") as info:
        save_hf_tokenizer(tokenizer, tmp_path, context_length=64)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def default_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokenizer, str]:
    """The default run's tokenizer (the shipped [data] settings) and its corpus's text."""
    data = Config().data
    cache = tmp_path_factory.mktemp("cache")
    corpus = prepare_data(data.path, data.tokenizer, data.compact_vocab, 0.9, 64, cache)
    return corpus.tokenizer, load_text(data.path, cache_dir=cache)[0]


def _random_texts(count: int, seed: int) -> list[str]:
    """Short strings of ASCII, other scripts, emoji, digit and whitespace runs, mixed."""
    rng = random.Random(seed)
    pools = [
        string.ascii_letters,
        string.punctuation,
        string.digits,
        " \t\n\r\u00a0\u3000",
        "éüßøçñ—“”…",
        "猫世界你好。、",
        "привет",
        "🙂👍🏽🐈\u200d",
        *" =-_0a.",  # runs of one character: BPE's ties between equal pairs
    ]

    def piece() -> str:
        pool = rng.choice(pools)
        return "".join(rng.choice(pool) for _ in range(rng.randint(1, 8)))

    return ["".join(piece() for _ in range(rng.randint(1, 6))) for _ in range(count)]


def _made_up_words(count: int, seed: int) -> str:
    """A prompt of words no corpus has: random letter strings, capitalised or not."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choices("bcdfghjklmnpqrstvwxzaeiouy", k=rng.randint(4, 14)))
        for _ in range(count)
    ]
    return " ".join(w.capitalize() if rng.random() < 0.3 else w for w in words) + "."


def test_default_compact_vocabulary_matches_exactly(
    tmp_path: Path, default_tokenizer: tuple[Tokenizer, str]
) -> None:
    """The default run's compact vocabulary exports exactly: transformers' tokenizer gives
    minigpt's ids on the whole corpus, on 30,000 random strings and on prompts of words the
    corpus never had, and decodes them back to the same text."""
    tokenizer, corpus = default_tokenizer
    assert isinstance(tokenizer, Cl100kTokenizer) and tokenizer.rule == "restricted"
    hf = _load(tokenizer, tmp_path)
    assert hf.vocab_size == tokenizer.vocab_size  # type: ignore[attr-defined]
    assert hf(corpus).input_ids == tokenizer.encode(corpus)  # type: ignore[operator]
    prompts = [_made_up_words(40, seed) for seed in range(20)]
    prompts += ["Photosynthesis in chloroplasts; quantum chromodynamics. Ωμέγα, Ärger, 量子."]
    texts = [*AWKWARD, *prompts, *_random_texts(30_000, seed=7)]
    encoded = hf(texts).input_ids  # type: ignore[operator]
    mismatched = [t for t, ids in zip(texts, encoded, strict=True) if ids != tokenizer.encode(t)]
    assert mismatched == []
    for text in [*AWKWARD, *prompts, *texts[-200:]]:
        assert hf.decode(tokenizer.encode(text)) == text  # type: ignore[attr-defined]
