from __future__ import annotations

from django import forms
from django.conf import settings

from training.models import PreferenceDataset


class DatasetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: PreferenceDataset) -> str:  # type: ignore[override]
        return f"#{obj.pk} {obj.name} ({obj.pair_count} pairs)"


class TrainingJobStartForm(forms.Form):
    dataset = DatasetChoiceField(queryset=PreferenceDataset.objects.filter(pair_count__gt=0), empty_label=None)
    base_model = forms.CharField(
        required=False,
        max_length=500,
        help_text="A local folder or a hub id. Empty: the tiny local Llama (no download).",
    )
    max_steps = forms.IntegerField(min_value=1, max_value=100_000, initial=4)

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["base_model"].initial = settings.TRAINING_BASE_MODEL
