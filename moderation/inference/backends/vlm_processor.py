"""Loading a VLM's processor, including Qwen2-VL / Qwen2.5-VL on machines without torchvision.

transformers (5.x) builds a Qwen2.5-VL processor from three parts: the image processor, the tokenizer
and a *video* processor, and its video processors need torchvision. GPU nodes have torchvision (vllm
depends on it), so there ``AutoProcessor`` loads the model's own processor. A CPU worker or CI
machine has no torchvision (we never install it: it would pin its own torch), so for the Qwen-VL
family this module assembles the same processor from the parts that need no torchvision: the PIL
image processor (``Qwen2VLImageProcessorPil``) and the tokenizer with its chat template. Images
are processed exactly as by the full processor (same resize, patches, ``image_grid_thw`` and
``<|image_pad|>`` expansion); only video input is refused.

Worker-side only: transformers is imported inside the functions.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any

QWEN_VL_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def torchvision_available() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def load_processor(model_path: str) -> Any:
    """The model's processor: ``AutoProcessor``, or for Qwen-VL without torchvision the images-only build."""
    from transformers import AutoConfig, AutoProcessor

    model_type = getattr(AutoConfig.from_pretrained(model_path), "model_type", "")
    if model_type in QWEN_VL_MODEL_TYPES and not torchvision_available():
        return images_only_qwen_processor(model_path, model_type)
    return AutoProcessor.from_pretrained(model_path)


@functools.cache
def _images_only_class(model_type: str) -> type:
    """A subclass of the model's own processor whose parts are the image processor and the tokenizer."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor
    from transformers.processing_utils import ProcessorMixin

    Base: Any = Qwen2VLProcessor if model_type == "qwen2_vl" else Qwen2_5_VLProcessor

    class ImagesOnlyQwenVLProcessor(Base):  # type: ignore[misc,valid-type]
        """Qwen-VL's processor without its video processor (which needs torchvision); images only."""

        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any
        ):
            # The same token bookkeeping as the parent's __init__, minus the video processor.
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.image_token
            )
            self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.video_token
            )
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def __call__(self, *args: Any, videos: Any = None, **kwargs: Any) -> Any:
            if videos is not None:
                raise ValueError("This Qwen-VL processor was built without torchvision and takes images only.")
            return super().__call__(*args, **kwargs)

        def to_dict(self) -> dict[str, Any]:
            # Saved (e.g. beside an adapter) under the model's own processor class, so a machine with
            # torchvision loads it with AutoProcessor as usual.
            out = super().to_dict()
            out["processor_class"] = Base.__name__
            return out

    ImagesOnlyQwenVLProcessor.__name__ = ImagesOnlyQwenVLProcessor.__qualname__ = f"ImagesOnly{Base.__name__}"
    return ImagesOnlyQwenVLProcessor


def images_only_qwen_processor(model_path: str, model_type: str = "qwen2_5_vl") -> Any:
    from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_path)
    chat_template = getattr(tokenizer, "chat_template", None)
    return _images_only_class(model_type)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
    )


def build_qwen_processor(
    image_processor: Any, tokenizer: Any, chat_template: str, model_type: str = "qwen2_5_vl"
) -> Any:
    """A Qwen-VL processor from parts: the full one with its video processor when torchvision is there."""
    if torchvision_available():
        from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        cls = Qwen2VLProcessor if model_type == "qwen2_vl" else Qwen2_5_VLProcessor
        return cls(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
            chat_template=chat_template,
        )
    return _images_only_class(model_type)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=chat_template
    )
