from __future__ import annotations

from typing import Any

from django import forms

from vetline.accounts.models import AccountKind, CredentialKind, Network
from vetline.identity.models import Person
from vetline.identity.roles import Capability


def active_people() -> Any:
    return Person.objects.filter(is_active=True).order_by("full_name")


class AccountForm(forms.Form):
    network = forms.ChoiceField(choices=Network.choices)
    handle = forms.CharField(
        max_length=200, help_text="As shown on the network, e.g. @harborpoint."
    )
    display_name = forms.CharField(max_length=200, required=False)
    kind = forms.ChoiceField(choices=AccountKind.choices, initial=AccountKind.CORPORATE)
    owner = forms.ModelChoiceField(queryset=Person.objects.none())
    business_unit = forms.CharField(max_length=120, required=False)
    publisher_cap = forms.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        help_text="Maximum authorized publishers. Leave empty for the organisation default.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = active_people()  # type: ignore[attr-defined]


class AccountEditForm(forms.Form):
    display_name = forms.CharField(max_length=200, required=False)
    owner = forms.ModelChoiceField(queryset=Person.objects.none())
    business_unit = forms.CharField(max_length=120, required=False)
    publisher_cap = forms.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        help_text="Maximum authorized publishers. Leave empty for the organisation default.",
    )
    is_active = forms.BooleanField(required=False, label="Active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = active_people()  # type: ignore[attr-defined]


class AssignmentForm(forms.Form):
    person = forms.ModelChoiceField(queryset=Person.objects.none())
    capability = forms.ChoiceField(choices=[(c.value, c.value.capitalize()) for c in Capability])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = active_people()  # type: ignore[attr-defined]


class CredentialForm(forms.Form):
    kind = forms.ChoiceField(choices=CredentialKind.choices)
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        max_length=16_384,
        help_text="Encrypted at once. It will never be shown again, to anyone.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="When the network says the token expires (optional).",
    )


class OrgSettingsForm(forms.Form):
    default_publisher_cap = forms.IntegerField(
        min_value=1,
        max_value=1000,
        help_text="Authorized publishers per corporate account unless the account sets its own.",
    )


class AccountFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    network = forms.ChoiceField(choices=[("", "All networks"), *Network.choices], required=False)
    kind = forms.ChoiceField(choices=[("", "All kinds"), *AccountKind.choices], required=False)
