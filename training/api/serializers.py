"""The training API's bodies. What a start may ask is checked where the screens' forms check it: a model source by
``model_source_checked``, the parameters, dataset kind and evaluation set by the start services themselves."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from moderation.models import ModelVersion, PolicyVersion
from training.errors import TrainingError
from training.models import EvaluationRun, PreferenceDataset, TrainingJob
from training.services import model_source_checked


class TrainingJobSerializer(serializers.ModelSerializer[TrainingJob]):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)

    class Meta:
        model = TrainingJob
        fields = [
            "id",
            "kind",
            "status",
            "dataset",
            "dataset_name",
            "base_model",
            "policy_version",
            "params",
            "step",
            "total_steps",
            "attempts",
            "error",
            "model_version",
            "cancel_requested",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields


class TrainingJobStartSerializer(serializers.Serializer[Any]):
    dataset = serializers.PrimaryKeyRelatedField(queryset=PreferenceDataset.objects.all())
    kind = serializers.ChoiceField(
        choices=TrainingJob.Kind.choices, required=False, help_text="left out: the dataset's (SFT or DPO)"
    )
    base_model = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="a folder inside the model folders or a hub id in this server's cache; left out: TRAINING_BASE_MODEL",
    )
    params = serializers.DictField(
        required=False,
        help_text="training parameters (max_steps, batch_size, learning_rate, lora_r, beta, num_generations, …); "
        "left out ones take their defaults",
    )

    def validate_base_model(self, value: str) -> str:
        return _model_source(value)

    def validate_params(self, value: dict[str, Any]) -> dict[str, Any]:
        if "guide_base_model" in value:
            value = {**value, "guide_base_model": _model_source(str(value["guide_base_model"] or ""))}
        return value


class EvaluationRunSerializer(serializers.ModelSerializer[EvaluationRun]):
    model_version_name = serializers.CharField(source="model_version.name", read_only=True)

    class Meta:
        model = EvaluationRun
        fields = [
            "id",
            "model_version",
            "model_version_name",
            "policy_version",
            "eval_set",
            "file_path",
            "eval_set_key",
            "status",
            "n_items",
            "n_decided",
            "metrics",
            "error",
            "created_at",
            "started_at",
            "heartbeat_at",
            "finished_at",
        ]
        read_only_fields = fields


class EvaluationStartSerializer(serializers.Serializer[Any]):
    model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    eval_set = serializers.ChoiceField(choices=EvaluationRun.EvalSet.choices, default=EvaluationRun.EvalSet.GOLD)
    file_path = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="a KuaiMod-format JSONL on the server, inside MEDIA_IMPORT_ROOTS (the kuaimod_file set only)",
    )
    policy_version = serializers.PrimaryKeyRelatedField(
        queryset=PolicyVersion.objects.all(), required=False, help_text="left out: the active one"
    )


def _model_source(value: str) -> str:
    try:
        return model_source_checked(value)
    except TrainingError as exc:
        raise serializers.ValidationError(str(exc)) from exc
