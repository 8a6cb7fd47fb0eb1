"""minigpt export --hf: transformers' GPT-2, or for rotary positions GPT-NeoX, or Persimmon
with qk_norm, computes what minigpt computes, token for token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from minigpt.checkpoint import evaluated_model, load_checkpoint, saved_config
from minigpt.cli.main import main
from minigpt.config import apply_values
from minigpt.events import EvalEvent
from minigpt.export import gpt2
from minigpt.export.model_card import model_card
from minigpt.model import Block, Model
from minigpt.rundir.layout import RunDir
from minigpt.tokenizer import Tokenizer, tokenizer_from_state
from tests.minigpt.export.exports import TEXT, train_run, write_corpus

if TYPE_CHECKING:
    from transformers import (
        GPT2LMHeadModel,
        GPTNeoXForCausalLM,
        PersimmonForCausalLM,
        PreTrainedTokenizerBase,
    )

    Exported = GPT2LMHeadModel | GPTNeoXForCausalLM | PersimmonForCausalLM

pytestmark = pytest.mark.trains

# Long enough for a 64-token prompt; two blocks, so a block's weights landing in another's
# place would show; a learning rate that moves every weight well away from its start.
RUN: dict[str, object] = {
    "model.context_length": 64,
    "model.num_blocks": 2,
    "train.learning_rate": 3e-3,
    "train.warmup_iters": 5,
    "train.max_iters": 100,  # enough for the greedy text to be more than spaces
    "train.eval_interval": 50,
    "train.checkpoint_interval": 50,
}
PROMPT = "the cat sat on m"  # ASCII: one token a character for char and byte
NEW_TOKENS = 48  # with a 16-token prompt, the whole context: transformers' GPT-2 stops there
COMPACT = {"data.tokenizer": "cl100k_base", "data.compact_vocab": True}  # the default run's
LESSONS = {"model.position": "learned", "model.qk_norm": False}  # the lesson's positions
# Each run an export reproduces: each tokenizer; the lesson's learned positions as GPT-2,
# with squared ReLU too (byte); the default model (rotary, qk_norm) as Persimmon; rotary
# without qk_norm as GPT-NeoX, with the default activation and squared ReLU.
KINDS: dict[str, dict[str, object]] = {
    "char": {"data.tokenizer": "char"} | LESSONS,
    "byte": {"data.tokenizer": "byte", "model.activation": "relu2"} | LESSONS,
    "compact": COMPACT,
    "rotary": COMPACT | {"model.qk_norm": False},
    "rotary-relu2": {
        "data.tokenizer": "char",
        "model.qk_norm": False,
        "model.activation": "relu2",
    },
}
# The class AutoModelForCausalLM loads each export as.
CLASSES = {
    "char": "GPT2LMHeadModel",
    "byte": "GPT2LMHeadModel",
    "compact": "PersimmonForCausalLM",
    "rotary": "GPTNeoXForCausalLM",
    "rotary-relu2": "GPTNeoXForCausalLM",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """A run of each of KINDS, trained 100 steps and exported: kind -> (run, out)."""
    root = tmp_path_factory.mktemp("export-hf")
    corpus = write_corpus(root)
    runs = {}
    for kind, values in KINDS.items():
        run = train_run(root / kind, corpus, fork_server=None, **RUN, **values)
        out = root / f"{kind}-hf"
        assert main(["export", "--run-dir", str(run), "--hf", str(out)]) == 0
        runs[kind] = (run, out)
    return runs


def _minigpt(run: Path) -> tuple[Tokenizer, Model, dict]:
    """The tokenizer and model `minigpt sample` builds from the run's checkpoint, and the
    checkpoint."""
    ckpt = RunDir(run).model_ckpt
    state = load_checkpoint(ckpt)
    tokenizer, model = evaluated_model(state, saved_config(state, ckpt).model, ckpt)
    return tokenizer, model.eval(), state


def _transformers(out: Path, kind: str) -> tuple[PreTrainedTokenizerBase, Exported]:
    """The exported tokenizer and model, as transformers loads them: the kind's class."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GPT2LMHeadModel,
        GPTNeoXForCausalLM,
        PersimmonForCausalLM,
    )

    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert isinstance(model, (GPT2LMHeadModel, GPTNeoXForCausalLM, PersimmonForCausalLM))
    assert type(model).__name__ == CLASSES[kind]
    return AutoTokenizer.from_pretrained(out), model


@pytest.mark.parametrize("kind", KINDS)
def test_logits_agree_at_every_position_of_a_64_token_prompt(
    exported: dict[str, tuple[Path, Path]], kind: str
) -> None:
    """The exported model's logits (its kind's class's, CLASSES) equal minigpt's within 1e-4
    at each of 64 positions, for weights trained far enough that attention and the
    feed-forward count."""
    run, out = exported[kind]
    tokenizer, model, _ = _minigpt(run)
    for block in model.blocks:  # the layers that start at zero: would a mix-up show?
        assert isinstance(block, Block)
        assert block.attention.proj.weight.abs().max() > 0.05
        assert block.feed_forward.down.weight.abs().max() > 0.05
    _, hf = _transformers(out, kind)
    x = torch.tensor([tokenizer.encode(TEXT[40:])[:64]])
    assert x.shape == (1, 64)
    with torch.no_grad():
        ours, theirs = model(x)[0], hf(x).logits
    assert theirs.shape == ours.shape
    assert (ours - theirs).abs().max().item() < 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_continuation_equals_minigpt_sample_at_temperature_0(
    exported: dict[str, tuple[Path, Path]], kind: str, capsys: pytest.CaptureFixture
) -> None:
    """transformers' greedy generate continues a prompt with the tokens minigpt's generate
    gives at temperature 0, and decodes to the text `minigpt sample --temperature 0` prints."""
    run, out = exported[kind]
    tokenizer, model, _ = _minigpt(run)
    hf_tokenizer, hf = _transformers(out, kind)
    prompt = PROMPT
    x = torch.tensor([hf_tokenizer(prompt).input_ids])
    assert x[0].tolist() == tokenizer.encode(prompt) and x.shape[1] <= 16
    prompt_tokens = x.shape[1]
    with torch.no_grad():
        theirs = hf.generate(x, max_new_tokens=NEW_TOKENS, do_sample=False)[0].tolist()
    ours = model.generate(x, NEW_TOKENS, temperature=0)[0].tolist()
    assert theirs == ours
    assert len(set(ours[prompt_tokens:])) > 3  # a continuation, not one token repeated
    args = ["sample", "--run-dir", str(run), "--prompt", prompt, "--temperature", "0"]
    assert main([*args, "--max-new-tokens", str(NEW_TOKENS)]) == 0
    printed = capsys.readouterr().out
    continuation = hf_tokenizer.decode(theirs[prompt_tokens:])
    assert isinstance(continuation, str)  # one sequence of ids decodes to one text
    assert printed == prompt + continuation + "\n"


def test_the_exported_weights_are_the_running_average(
    exported: dict[str, tuple[Path, Path]],
) -> None:
    """With train.ema_decay on, the export holds the averaged weights sampling uses, not the
    optimizer's, in a file as readable as the export's other files."""
    from safetensors.torch import load_file

    run, out = exported["char"]
    state = load_checkpoint(RunDir(run).model_ckpt)
    exported_embedding = load_file(out / "model.safetensors")["transformer.wte.weight"]
    assert torch.equal(exported_embedding, state["average"]["token_embedding.weight"])
    assert not torch.equal(exported_embedding, state["model"]["token_embedding.weight"])
    modes = {(out / name).stat().st_mode for name in ("model.safetensors", "config.json")}
    assert len(modes) == 1


def test_generation_config_and_model_card_describe_the_run(
    exported: dict[str, tuple[Path, Path]],
) -> None:
    """generation_config.json holds the run's sampling settings; README.md names the run,
    its data, its step, and its last eval's val loss and bits per byte."""
    from transformers import GenerationConfig

    run, out = exported["byte"]
    generation = GenerationConfig.from_pretrained(out)
    assert (generation.do_sample, generation.temperature) == (True, 1.0)
    assert (generation.top_k, generation.top_p, generation.max_length) == (0, 1.0, 64)
    evals = [e for e in RunDir(run).read_metrics() if isinstance(e, EvalEvent)]
    last = evals[-1]
    assert last.step == 100 and last.val_loss is not None and last.val_bpb is not None
    card = (out / "README.md").read_text(encoding="utf-8")
    for fact in (
        f"`{run}`, checkpoint `model.ckpt` at step 100",
        f"`{run.parent / 'corpus.txt'}`",
        "byte, 256 tokens",
        f"{last.val_loss:.4f} at step 100's eval ({last.val_bpb:.3f} bits per byte)",
        'tokenizer = "byte"',
    ):
        assert fact in card


@pytest.mark.parametrize(
    ("kind", "activation"), [("byte", "squared ReLU"), ("rotary", "ReLU"), ("compact", "ReLU")]
)
def test_the_model_card_names_the_class_it_loads_as(
    exported: dict[str, tuple[Path, Path]], kind: str, activation: str
) -> None:
    """README.md names the stock class the folder loads as, its model_type as a tag, and
    the feed-forward's activation."""
    _, out = exported[kind]
    card = (out / "README.md").read_text(encoding="utf-8")
    model_type = json.loads((out / "config.json").read_text(encoding="utf-8"))["model_type"]
    assert f"exported as transformers'\n`{CLASSES[kind]}` (the same network: " in card
    assert f"tags: [minigpt-tui, {model_type}]" in card
    assert f", {activation} feed-forward |" in card


def test_the_model_card_keeps_the_runs_webhook_to_itself(
    exported: dict[str, tuple[Path, Path]],
) -> None:
    """A run's notify.url, whose path is often a secret, is blank in its card's config."""
    run, _ = exported["byte"]
    ckpt = RunDir(run).model_ckpt
    state = load_checkpoint(ckpt)
    secret = {"notify.url": "https://ntfy.sh/secret-topic"}
    config = apply_values(saved_config(state, ckpt), secret)
    card = model_card(ckpt, state, config, tokenizer_from_state(state["tokenizer"]), gpt2)
    assert "secret-topic" not in card and '\nurl = ""' in card
