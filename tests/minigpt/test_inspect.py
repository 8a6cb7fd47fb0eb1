"""`minigpt inspect` and inspect_next: the odds of the next token at each step of generate."""

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from minigpt.checkpoint import evaluated_weights, load_checkpoint, saved_config
from minigpt.cli.main import main
from minigpt.config import Config, ModelConfig, apply_values
from minigpt.errors import ConfigError
from minigpt.inspection import inspect_next, readable_token
from minigpt.model import Model
from minigpt.service.run import Run
from minigpt.tokenizer import CharTokenizer, Tokenizer, tokenizer_from_state

pytestmark = pytest.mark.trains

PROMPT = "the cat sat on mat number 3.\nthe cat"
CONTEXT = 48  # the run's context_length: PROMPT fits, twice PROMPT does not


@pytest.fixture
def run_dir(corpus_file: Path, tmp_path: Path, tiny_config: Callable[..., Config]) -> Path:
    """A run directory whose model.ckpt holds a char model (context 48) trained for 6 steps."""
    path = tmp_path / "run"
    values = {"train.max_iters": 6, "model.context_length": CONTEXT}
    run = Run.start(tiny_config(corpus_file, **values), path)
    while not run.done:
        run.advance()
    run.close()
    return path


def inspect_json(run_dir: Path, capsys: pytest.CaptureFixture, *args: str) -> dict:
    """`minigpt inspect --json` on run_dir with every candidate listed, parsed."""
    argv = ["inspect", "--run-dir", str(run_dir), "--json", "--top", "1000"]
    assert main([*argv, "--prompt", PROMPT, *args]) == 0
    return json.loads(capsys.readouterr().out)


def load_model(run_dir: Path) -> tuple[Model, Tokenizer]:
    """The weights the run evaluated (eval mode) and its tokenizer, by hand from model.ckpt."""
    ckpt = run_dir / "model.ckpt"
    state = load_checkpoint(ckpt)
    tokenizer = tokenizer_from_state(state["tokenizer"])
    model = Model(saved_config(state, ckpt).model, tokenizer.vocab_size)
    model.load_state_dict(evaluated_weights(state))
    return model.eval(), tokenizer


def stage(result: dict, key: str) -> list[float]:
    """One stage's probabilities over the whole vocabulary, in candidate order."""
    return [c[key] for c in result["candidates"]]


STAGES = ("prob", "prob_temperature", "prob_top_k", "prob_top_p")


def test_every_stage_is_a_distribution_sorted_by_raw_probability(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """Candidates come likeliest first and each stage sums to 1 over the whole vocabulary."""
    result = inspect_json(run_dir, capsys, "--temperature", "0.7", "--top-k", "5", "--top-p", "0.8")
    probs = stage(result, "prob")
    assert len(probs) == load_model(run_dir)[1].vocab_size
    assert probs == sorted(probs, reverse=True)
    for key in STAGES:
        assert sum(stage(result, key)) == pytest.approx(1, abs=1e-5)
    assert result["step"] == 6 and result["attention"] is None


def test_top_k_leaves_exactly_k_tokens(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """After top-k (and top-p off) exactly k tokens keep a chance, the k likeliest."""
    for k in (1, 3, 7):
        result = inspect_json(run_dir, capsys, "--top-k", str(k), "--top-p", "1")
        kept = [p > 0 for p in stage(result, "prob_top_k")]
        assert kept == [True] * k + [False] * (len(kept) - k)
        assert stage(result, "prob_top_p") == stage(result, "prob_top_k")


def test_top_p_keeps_the_smallest_set_reaching_p(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """The nucleus is the likeliest tokens whose chances first reach p, renormalised."""
    for p in (0.3, 0.6, 0.9):
        result = inspect_json(run_dir, capsys, "--temperature", "1.5", "--top-p", str(p))
        before = stage(result, "prob_top_k")  # top-k is off: the temperature distribution
        after = stage(result, "prob_top_p")
        m = sum(q > 0 for q in after)
        assert all(q > 0 for q in after[:m])  # the kept tokens are the likeliest ones
        assert sum(before[:m]) >= p - 1e-6 and sum(before[: m - 1]) < p
        assert after[:m] == pytest.approx([q / sum(before[:m]) for q in before[:m]], abs=1e-6)


def test_temperature_one_equals_the_raw_softmax(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """At temperature 1 with no filters every stage is the raw softmax."""
    result = inspect_json(run_dir, capsys, "--temperature", "1", "--top-k", "0", "--top-p", "1")
    for key in STAGES[1:]:
        assert stage(result, key) == stage(result, "prob")
    assert result["entropy_bits"] == result["entropy_bits_raw"]


def test_temperature_zero_puts_all_mass_on_the_argmax(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """Greedy decoding: every stage after the raw softmax is one-hot on its argmax."""
    result = inspect_json(run_dir, capsys, "--temperature", "0", "--top-k", "3")
    for key in STAGES[1:]:
        assert stage(result, key) == [1.0] + [0.0] * (len(result["candidates"]) - 1)
    assert result["entropy_bits"] == 0


def test_numbers_equal_a_forward_pass_by_hand(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """prob and prob_temperature are softmax(model(x) at the position [/ T]); entropy in bits."""
    result = inspect_json(run_dir, capsys, "--temperature", "0.5", "--position", "10")
    model, tokenizer = load_model(run_dir)
    x = torch.tensor([tokenizer.encode(PROMPT)])
    with torch.no_grad():
        logits = model(x)[0][0, 10]  # (vocab,)
    raw, tempered = F.softmax(logits, dim=-1), F.softmax(logits / 0.5, dim=-1)
    ids = [c["id"] for c in result["candidates"]]
    assert stage(result, "prob") == pytest.approx(raw[ids].tolist(), abs=1e-6)
    assert stage(result, "prob_temperature") == pytest.approx(tempered[ids].tolist(), abs=1e-6)
    bits = -sum(p * math.log2(p) for p in tempered.tolist() if p > 0)
    assert result["entropy_bits"] == pytest.approx(bits, abs=1e-4)


def test_position_gives_the_odds_after_that_many_tokens(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """--position N equals inspecting the first N + 1 tokens alone; the next token is marked."""
    at = inspect_json(run_dir, capsys, "--position", "4")
    argv = ["inspect", "--run-dir", str(run_dir), "--json", "--top", "1000"]
    assert main([*argv, "--prompt", PROMPT[:5]]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert at["position"] == 4 and alone["position"] == 4
    assert stage(at, "prob") == pytest.approx(stage(alone, "prob"), abs=1e-6)
    assert (at["next_token"], at["next_id"]) == ("a", at["prompt_ids"][5])
    assert alone["next_token"] is None


def test_whitespace_and_stray_bytes_read_visibly(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """A newline reads "↵", a space "␣", a byte that is no whole character "<0xE4>"."""
    result = inspect_json(run_dir, capsys)
    assert result["prompt_tokens"][:4] == ["t", "h", "e", "␣"]
    assert "↵" in result["prompt_tokens"]
    assert readable_token(" 你\n".encode()) == "␣你↵"
    assert readable_token("你".encode()[:2] + b"\t") == "<0xE4><0xBD>⇥"
    assert readable_token(b"\x00") == "<0x00>"


def test_attention_is_causal_with_rows_summing_to_one(run_dir: Path) -> None:
    """Every block and head: zero above the diagonal, each row sums to 1; so does the mean."""
    model, tokenizer = load_model(run_dir)
    result = inspect_next(model, tokenizer, PROMPT, attention=True)
    assert result.attention is not None and result.attention_mean is not None
    T = len(result.prompt_ids)
    assert len(result.attention) == 2 and len(result.attention[0]) == 2  # blocks, heads
    for matrix in [m for block in result.attention for m in block] + result.attention_mean:
        assert len(matrix) == T and all(len(row) == T for row in matrix)
        for q, row in enumerate(matrix):
            assert all(w == 0 for w in row[q + 1 :])
            assert sum(row) == pytest.approx(1, abs=1e-5)


def test_explicit_attention_gives_the_fused_logits() -> None:
    """The explicit path that keeps the weights computes what the fused kernel does."""
    torch.manual_seed(0)
    model = Model(ModelConfig(context_length=16, d_model=32, num_heads=4, num_blocks=3), 50).eval()
    x = torch.randint(0, 50, (2, 16))
    weights: list[torch.Tensor] = []
    with torch.no_grad():
        fused, _ = model(x)
        explicit, _ = model(x, attention=weights)
    assert torch.allclose(fused, explicit, atol=1e-5)
    assert [w.shape for w in weights] == [(2, 4, 16, 16)] * 3


def test_json_attention_is_the_head_asked_for(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    """--attention 1:0 gives block 1 head 0, and 0:mean the mean of block 0's heads."""
    model, tokenizer = load_model(run_dir)
    direct = inspect_next(model, tokenizer, PROMPT, attention=True)
    assert direct.attention is not None and direct.attention_mean is not None
    head = inspect_json(run_dir, capsys, "--attention", "1:0")["attention"]
    assert (head["block"], head["head"]) == (1, 0)
    assert torch.allclose(torch.tensor(head["weights"]), torch.tensor(direct.attention[1][0]))
    mean = inspect_json(run_dir, capsys, "--attention", "0:mean")["attention"]
    assert mean["head"] == "mean"
    assert torch.allclose(torch.tensor(mean["weights"]), torch.tensor(direct.attention_mean[0]))


def test_long_prompt_is_cropped_to_the_context(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """A prompt past context_length keeps its last CONTEXT tokens and says how many went."""
    result = inspect_json(run_dir, capsys, "--prompt", PROMPT * 2)
    assert result["cropped"] == 2 * len(PROMPT) - CONTEXT
    kept = (PROMPT * 2)[-CONTEXT:]
    assert "".join(result["prompt_tokens"]) == kept.replace(" ", "␣").replace("\n", "↵")


def test_text_output_draws_bars_entropy_and_the_attention_matrix(
    run_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    """The text table has a bar and percentage per stage, marks the prompt's own next token,
    prints the entropy, and draws the asked-for matrix with visibly labelled rows."""
    argv = ["inspect", "--run-dir", str(run_dir), "--prompt", "the cat", "--top", "1000"]
    assert main([*argv, "--top-k", "2", "--attention", "0:1", "--position", "2"]) == 0
    out = capsys.readouterr().out
    assert "entropy " in out and " bits at temperature 1 " in out
    table, matrix = out.split("attention, block 0 head 1")
    rows = [line for line in table.splitlines() if line.count("%") == 4]
    assert len(rows) == load_model(run_dir)[1].vocab_size
    assert "█" in rows[0]
    marked = [line for line in rows if "◀ next in the prompt" in line]
    assert len(marked) == 1 and marked[0].startswith("␣ ")
    assert "\n  3 ␣        " in matrix  # the row of token 3, a space, labelled visibly


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "the dog"], "characters not in this model's vocabulary: 'd', 'g'"),
        (["--attention", "2:0"], "--attention '2:0': expected BLOCK:HEAD or BLOCK:mean"),
        (["--attention", "0:x"], "BLOCK 0..1 and HEAD 0..1"),
        (["--position", "99"], "position 99 is outside the prompt's"),
        (["--top-p", "0"], "sample.top_p"),
    ],
)
def test_bad_input_is_one_error_line(
    run_dir: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    """Unknown characters, a bad block:head, position or setting: one line, exit 2."""
    assert main(["inspect", "--run-dir", str(run_dir), "--prompt", PROMPT, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigpt: error: ") and message in err and err.count("\n") == 1


def test_no_checkpoint_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A run directory without model.ckpt is reported in one line, exit 2."""
    assert main(["inspect", "--run-dir", str(tmp_path), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert err == f"minigpt: error: no checkpoint at {tmp_path / 'model.ckpt'}\n"


def test_inspect_leaves_the_model_in_training_mode() -> None:
    """inspect_next runs in eval mode and gives the model back as it found it."""
    model = Model(ModelConfig(context_length=8, d_model=16, num_heads=2, num_blocks=1), 5)
    tokenizer = CharTokenizer("abcde")
    first = inspect_next(model, tokenizer, "abc")
    assert model.training
    assert inspect_next(model, tokenizer, "abc") == first  # no dropout: eval mode


@pytest.mark.parametrize(
    ("setting", "value"),
    [("temperature", -1.0), ("temperature", math.inf), ("top_k", -1), ("top_p", 0), ("top_p", 1.5)],
)
def test_settings_follow_the_sample_configs_rules(setting: str, value: float) -> None:
    """inspect_next refuses a setting [sample] refuses, with the config's own message."""
    model = Model(ModelConfig(context_length=8, d_model=16, num_heads=2, num_blocks=1), 5)
    with pytest.raises(ConfigError) as refused:
        apply_values(Config(), {f"sample.{setting}": value})
    settings: dict[str, Any] = {setting: value}  # whichever keyword this case names
    with pytest.raises(ConfigError) as error:
        inspect_next(model, CharTokenizer("abcde"), "abc", **settings)
    assert str(error.value) == str(refused.value)
