from __future__ import annotations

from typing import Any

from django import forms

from vetline.core.errors import ValidationFailed
from vetline.profiles.actions import MAX_BIO, MAX_COMMENT, MAX_DISPLAY_NAME, MAX_TITLE
from vetline.profiles.models import MAX_LINKS
from vetline.profiles.photos import MAX_PHOTO_BYTES, SUPPORTED


class ProposalForm(forms.Form):
    display_name = forms.CharField(label="Display name", max_length=MAX_DISPLAY_NAME)
    title = forms.CharField(label="Title", max_length=MAX_TITLE, required=False)
    bio = forms.CharField(
        label="Headline / bio",
        max_length=MAX_BIO,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    links = forms.CharField(
        label="Links",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"One web address per line (at most {MAX_LINKS}).",
    )
    photo = forms.FileField(
        label="Photo",
        required=False,
        help_text=(
            f"{', '.join(SUPPORTED.values())}; at most {MAX_PHOTO_BYTES // (1024 * 1024)} MB. "
            "Leave empty to keep the current photo."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(SUPPORTED)}),
    )
    remove_photo = forms.BooleanField(label="Remove the photo", required=False)

    def link_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("links", "").splitlines()]

    def photo_bytes(self) -> bytes | None:
        upload: Any = self.cleaned_data.get("photo")
        if not upload:
            return None
        if upload.size > MAX_PHOTO_BYTES:
            # Refused before reading it into memory, in the same words as the action's check.
            raise ValidationFailed(
                f"The photo is too large ({upload.size / 1024 / 1024:.1f} MB); the limit is "
                f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB.",
                field="photo",
                code="photo_too_large",
            )
        return upload.read()  # type: ignore[no-any-return]


class DecisionForm(forms.Form):
    revision = forms.IntegerField(min_value=1, max_value=2**31, widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(
        label="Comment",
        max_length=MAX_COMMENT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to reject: the employee sees it.",
    )


class DriftActionForm(forms.Form):
    comment = forms.CharField(
        label="What was done",
        max_length=MAX_COMMENT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
