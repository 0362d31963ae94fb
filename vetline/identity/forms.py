from __future__ import annotations

from django import forms

from vetline.identity.models import TokenScope
from vetline.identity.roles import Role

ROLE_CHOICES = [(r.value, r.label) for r in Role]


class PersonForm(forms.Form):
    email = forms.EmailField(max_length=254)
    full_name = forms.CharField(max_length=200)
    title = forms.CharField(max_length=200, required=False)
    business_unit = forms.CharField(max_length=120, required=False)
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


class OffboardForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded in the audit trail.",
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “SIEM export”.")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.READ)
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=365, initial=90, label="Expires in (days)"
    )


class PeopleFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    role = forms.ChoiceField(choices=[("", "Any role"), *ROLE_CHOICES], required=False)
    status = forms.ChoiceField(
        choices=[("active", "Active"), ("offboarded", "Offboarded"), ("all", "All")],
        required=False,
    )
