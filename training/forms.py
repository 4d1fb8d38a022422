from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from moderation.models import ModelVersion, PolicyVersion
from moderation.tagging.forms import TagExportFilterForm
from training.models import EvaluationRun, PreferenceDataset, TrainingJob
from training.tag_data import EVAL_SHARE_MAX
from workbench.forms import NulCheckedForm, TypedNumberField


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PreferenceDataset) -> str:  # type: ignore[override]
        return f"#{obj.pk} {obj.name} ({obj.get_kind_display()}: {obj.train_count or obj.pair_count} train)"


# Optional job parameters the form passes through to training_job_start (which validates them).
OPTIONAL_PARAMS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "save_steps",
    "batch_size",
    "learning_rate",
    "num_generations",
    "max_completion_length",
    "reward_correctness_weight",
    "reward_structure_weight",
    "reward_critique_weight",
    "guide_base_model",
)


class TrainingJobStartForm(NulCheckedForm, forms.Form):
    dataset = DatasetChoiceField(queryset=PreferenceDataset.objects.filter(pair_count__gt=0), empty_label=None)
    kind = forms.ChoiceField(
        choices=[("", "Same as the dataset (SFT or DPO)"), *TrainingJob.Kind.choices], required=False
    )
    base_model = forms.CharField(
        required=False,
        max_length=500,
        help_text="A local folder or a hub id. Empty: the tiny local Llama (no download).",
    )
    max_steps = forms.IntegerField(min_value=1, max_value=100_000, initial=4)
    batch_size = forms.IntegerField(min_value=1, max_value=256, required=False)
    learning_rate = TypedNumberField(required=False)
    save_steps = forms.IntegerField(min_value=1, required=False, help_text="checkpoint every N steps")
    lora_r = forms.IntegerField(min_value=1, max_value=1024, required=False)
    lora_alpha = forms.IntegerField(min_value=1, max_value=4096, required=False)
    lora_dropout = TypedNumberField(min_value=0, max_value=0.9, required=False)
    lora_target_modules = forms.CharField(required=False, help_text="comma-separated, e.g. q_proj,v_proj or all-linear")
    num_generations = forms.IntegerField(min_value=2, max_value=64, required=False, help_text="GRPO only")
    max_completion_length = forms.IntegerField(min_value=1, required=False, help_text="GRPO only")
    reward_correctness_weight = TypedNumberField(min_value=0, required=False, help_text="GRPO only")
    reward_structure_weight = TypedNumberField(min_value=0, required=False, help_text="GRPO only")
    reward_critique_weight = TypedNumberField(min_value=0, required=False, help_text="GRPO only; 0 = no guide model")
    guide_base_model = forms.CharField(required=False, help_text="GRPO critique guide model (folder or hub id)")

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["base_model"].initial = settings.TRAINING_BASE_MODEL

    @classmethod
    def initial_from(cls, job: TrainingJob) -> dict[str, Any]:
        """The form filled in from ``job``: a failed job started again after changing what failed."""
        initial: dict[str, Any] = {"dataset": job.dataset_id, "kind": job.kind, "base_model": job.base_model}
        for key, value in (job.params or {}).items():
            if key in cls.base_fields and value not in (None, ""):
                initial[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else value
        return initial

    def clean_base_model(self) -> str:
        return self._model_source("base_model")

    def clean_guide_base_model(self) -> str:
        return self._model_source("guide_base_model")

    def _model_source(self, name: str) -> str:
        from training.errors import TrainingError
        from training.services import model_source_checked

        try:
            return model_source_checked(self.cleaned_data.get(name) or "")
        except TrainingError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        params: dict[str, Any] = {"max_steps": data["max_steps"]}
        for name in OPTIONAL_PARAMS:
            if data.get(name) not in (None, ""):
                params[name] = data[name]
        return params


class EvaluationStartForm(NulCheckedForm, forms.Form):
    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.order_by("-created_at"), empty_label=None)
    eval_set = forms.ChoiceField(choices=EvaluationRun.EvalSet.choices)
    # Named for the set it belongs to: the box stood, labelled "File", under "Gold set", which needs none.
    file_path = forms.CharField(
        required=False,
        max_length=500,
        label="File (KuaiMod-format file only)",
        help_text="A KuaiMod-format JSONL on the server, inside MEDIA_IMPORT_ROOTS; the gold set needs none.",
    )
    # "Start this evaluation again" names the failed run's policy version; the start form leaves it out (the active one).
    policy_version = forms.ModelChoiceField(
        queryset=PolicyVersion.objects.all(),
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "That policy version no longer exists: start the evaluation from the list."},
    )


class TagEventsExportForm(TagExportFilterForm):
    """The tag reviewers' accept/reject/add events as a dataset (the ranker's training data)."""

    file_format = forms.ChoiceField(
        label="Format",
        choices=[("jsonl", "JSONL (one file; each row names its split)"), ("hf", "Hugging Face dataset (zip)")],
        initial="jsonl",
        error_messages={"invalid_choice": "Choose JSONL or a Hugging Face dataset."},
    )
    eval_share = TypedNumberField(
        label="Held-out share",
        min_value=0,
        max_value=EVAL_SHARE_MAX,
        initial=0,
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": str(EVAL_SHARE_MAX)}),
        help_text="of the videos, 0–0.9, kept out as the evaluation split (by reproduction cluster, as the datasets)",
        error_messages={"invalid": "Not a number: write a share such as 0.1."},
    )
