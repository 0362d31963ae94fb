from __future__ import annotations

from django import forms

from vetline.audit.selectors import AuditFilter


class AuditFilterForm(forms.Form):
    person = forms.CharField(required=False, max_length=200, help_text="Name, e-mail or id")
    action = forms.CharField(
        required=False,
        max_length=100,
        help_text="e.g. accounts.assignment or identity.login.failed",
    )
    object_type = forms.CharField(required=False, max_length=100, label="Object type")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "“To” must be on or after “From”.")
        return data

    def to_filter(self) -> AuditFilter:
        if not self.is_bound or not self.is_valid():
            return AuditFilter()
        d = self.cleaned_data
        return AuditFilter(
            person=d["person"].strip(),
            action=d["action"].strip(),
            object_type=d["object_type"].strip(),
            object_id=d["object_id"].strip(),
            date_from=d["date_from"],
            date_to=d["date_to"],
        )
