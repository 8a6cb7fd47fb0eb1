"""What the model has learned, measured at each eval on the model as it is then.

`probe` scores a fixed passage of the validation text token by token; `heads`
gives every attention head a previous-token score, an induction score and
its attention entropy; `embedding_map` lays the token embeddings out in two
dimensions, aligned with the previous eval's map; `views` puts them together
into one record per eval, a `LearnedEvent`. Loss by position in the context
comes from the eval batches themselves (`Trainer.estimate_loss`); the logit
lens, which reads one prompt, is part of inspection (minigpt/inspection.py).

Built on the lesson (model, tokenizer) only; the engine service computes the
records and the run directory stores them.
"""
