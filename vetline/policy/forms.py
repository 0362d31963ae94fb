from __future__ import annotations

from typing import Any

from django import forms

from vetline.policy.engine import Scope

SCOPE_CHOICES = [(s.value, s.value.replace("_", " ").capitalize()) for s in Scope]
MAX_UPLOAD_BYTES = 2_000_000


class PolicyImportForm(forms.Form):
    spec_yaml = forms.CharField(
        label="Policy YAML",
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}),
    )
    file = forms.FileField(label="…or upload a YAML file", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("file")
        if upload:
            if upload.size > MAX_UPLOAD_BYTES:
                raise forms.ValidationError("The file is larger than 2 MB.")
            try:
                data["spec_yaml"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        if not (data.get("spec_yaml") or "").strip():
            raise forms.ValidationError("Paste the policy YAML or upload a file.")
        return data


class PolicyEditForm(forms.Form):
    spec_yaml = forms.CharField(
        label="Policy YAML", widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false"})
    )
    note = forms.CharField(max_length=500, label="What changed and why")
    based_on = forms.IntegerField(widget=forms.HiddenInput)


class ScreenForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=100_000, label="Text to screen"
    )
    scope = forms.ChoiceField(choices=SCOPE_CHOICES, initial=Scope.OUTBOUND_POST.value)
    rule = forms.ChoiceField(required=False, label="Rule", choices=[("", "All rules")])

    def __init__(self, *args: Any, rule_ids: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = [("", "All rules"), *((r, r) for r in rule_ids or [])]  # type: ignore[attr-defined]


class EventForm(forms.Form):
    name = forms.CharField(max_length=200, label="Event")
    keywords = forms.CharField(
        max_length=2000, required=False, help_text="Comma-separated, e.g. hurricane milton, milton"
    )
    hashtags = forms.CharField(
        max_length=2000, required=False, help_text="Comma-separated, with or without #"
    )
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class BadDomainsForm(forms.Form):
    rule = forms.ChoiceField(label="Links rule")
    file = forms.FileField(
        label="Known-bad domain list",
        help_text="One domain per line; hosts-file lines and URLs work too.",
    )

    def __init__(self, *args: Any, link_rules: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = [(r, r) for r in link_rules or []]  # type: ignore[attr-defined]

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        try:
            return str(upload.read().decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not UTF-8 text.") from exc
