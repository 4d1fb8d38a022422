"""The SFT runner: TRL ``SFTTrainer`` with a PEFT LoRA adapter on an SFT snapshot's chat records.

Text-only base models get the records' messages with their text parts joined (their chat templates
take string content); multimodal ones keep the typed parts and the ``images`` column. Either way a
record is trained as a prompt (system + user turns, as inference serves them) and a completion (the
assistant's answer): the loss is on the answer only. Trained on the whole conversation, a small model
spends its capacity on reproducing the rubric and the video's text, which is nine tenths of the
tokens, and learns the answer format late or not at all. Worker-side only.
"""

from __future__ import annotations

from typing import Any

from training.data import flatten_messages
from training.errors import TrainingError
from training.runners import common


def sft_train(run: common.TrainRun) -> tuple[Any, Any]:
    from trl import SFTTrainer

    return common.fit(run, SFTTrainer, **sft_trainer_args(run))


def sft_trainer_args(run: common.TrainRun) -> dict[str, Any]:
    """``SFTTrainer``'s model, arguments, processing class and dataset for a job (LoRA and callbacks are
    ``common.fit``'s). Records become prompt-completion pairs (``prompt_completion``)."""
    import datasets
    from trl import SFTConfig

    max_length = run.params["max_length"]
    raw = common.job_rows(run)
    if common.is_multimodal(run.base_model):
        train_dataset = common.load_images_column(
            datasets.Dataset.from_list([{**prompt_completion(row["messages"]), "images": row["images"]} for row in raw])
        )
        model, processing_class, use_cpu = common.load_vlm_and_processor(run.base_model)
        common.check_images_fit(
            processing_class,
            [processing_class.apply_chat_template(m, tokenize=False) for m in raw["messages"]],
            max_length,
        )
    else:
        train_dataset = datasets.Dataset.from_list(
            [prompt_completion(flatten_messages(row["messages"], keep_images=False)) for row in raw]
        )
        model, processing_class, use_cpu = common.load_model_and_tokenizer(run.base_model)

    args = SFTConfig(**common.trainer_kwargs(run.output_dir, run.params, use_cpu), max_length=max_length, packing=False)
    return {"model": model, "args": args, "train_dataset": train_dataset, "processing_class": processing_class}


def prompt_completion(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A chat record as TRL's conversational prompt-completion pair: the loss is on the answer only.

    The system and user turns are the served prompt; the model is trained to write the assistant
    turn (and its end-of-turn token), not to reproduce the rubric and the video's text.
    """
    if not messages or messages[-1]["role"] != "assistant":
        raise TrainingError("An SFT record must end with the assistant's answer.")
    return {"prompt": messages[:-1], "completion": messages[-1:]}
