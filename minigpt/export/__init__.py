"""Taking a model out: a checkpoint as a transformers model, a run as TensorBoard files.

`hf` writes the weights of the stock class `stock` picks (GPT2LMHeadModel from `gpt2`,
GPTNeoXForCausalLM from `gpt_neox`, PersimmonForCausalLM from `persimmon`) with the
tokenizer from `tokenizer` and the card from `model_card`; `tensorboard` writes a run's
history as event files; `folder` checks the destination and writes it whole or not at
all. Their
packages (transformers, tokenizers and safetensors, and the [export] extra's
tensorboard) are imported only inside these functions.

Built on the lesson and the run directory; it never imports the engine service.
"""
