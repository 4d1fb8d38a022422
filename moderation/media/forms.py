from __future__ import annotations

from django import forms
from django.conf import settings

from workbench.forms import NulCheckedForm


class VideoUploadForm(NulCheckedForm, forms.Form):
    # Wide enough for a long title (walked: ~20 characters shown of a 90-character title); held to the page's width.
    title = forms.CharField(
        max_length=500,
        required=False,
        help_text="Defaults to the file name.",
        widget=forms.TextInput(attrs={"size": 80, "class": "upload-title"}),
    )
    file = forms.FileField(
        label="Video file",
        error_messages={"required": "Choose a video file to upload.", "empty": "The chosen file is empty."},
    )

    def clean_file(self):  # type: ignore[no-untyped-def]
        upload = self.cleaned_data["file"]
        limit = int(settings.WORKBENCH_UPLOAD_MAX_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(f"This file is larger than the upload limit of {limit // (1024 * 1024)} MB.")
        return upload
