"""Forms of the publishing pages (input parsing only; every rule lives in the actions)."""

from __future__ import annotations

from typing import Any

from django import forms

from vetline.accounts.models import SocialAccount
from vetline.publishing.models import AccountGroup
from vetline.publishing.states import SettleOutcome


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,video/mp4"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class ComposeForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": 70000}),
        required=False,
        max_length=70000,
        help_text="Screened as you type: highlighted words are what a rule caught.",
    )
    accounts = forms.ModelMultipleChoiceField(
        queryset=SocialAccount.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Only the corporate accounts you are an authorized publisher of.",
    )
    links = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=20000,
        help_text="One link per line.",
    )
    attachments = MultipleFileField(required=False, help_text="Images or MP4 video.")
    alt_text = forms.CharField(required=False, max_length=1000, label="Alt text of the media")
    scheduled_for = forms.CharField(
        required=False,
        max_length=40,
        label="Publish at",
        help_text="Empty: as soon as it is approved. Otherwise ISO 8601 with a time zone, "
        "e.g. 2026-03-01T09:30+01:00.",
    )
    reply_to_record_id = forms.IntegerField(
        required=False, widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1
    )

    def __init__(self, *args: Any, accounts: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["accounts"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = accounts
        for account in accounts:
            self.fields[f"variant_{account.pk}"] = forms.CharField(
                required=False,
                max_length=70000,
                label=f"Variant for {account}",
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Optional: this network's own text instead of the main text.",
            )

    def variant_fields(self) -> list[Any]:
        return [self[name] for name in self.fields if name.startswith("variant_")]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    subject_sha256 = forms.CharField(max_length=64, widget=forms.HiddenInput)
    on_behalf_of = forms.IntegerField(
        required=False, widget=forms.HiddenInput, min_value=1, max_value=2**63 - 1
    )
    step_position = forms.IntegerField(
        required=False, widget=forms.HiddenInput, min_value=1, max_value=1000
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class SettleForm(forms.Form):
    """Settling by hand a publication whose fate is unknown (the rules are in the action)."""

    outcome = forms.ChoiceField(
        choices=[(o.value, o.label) for o in SettleOutcome], widget=forms.RadioSelect
    )
    remote_id = forms.CharField(
        required=False,
        max_length=300,
        label="Network id of the post",
        help_text="Required when it is on the network: the id in its address or the app.",
    )
    url = forms.CharField(required=False, max_length=1000, label="Web address of the post")
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="How you established it: where you looked, and when.",
    )


class FreezeForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What happened: shown on every page while the freeze lasts.",
    )
    accounts = forms.ModelMultipleChoiceField(
        queryset=SocialAccount.objects.filter(kind="corporate", is_active=True),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None chosen: every account.",
    )


class ChainForm(forms.Form):
    name = forms.CharField(max_length=120)
    subject_kind = forms.ChoiceField(
        choices=[("post", "Posts"), ("reply", "Replies to customers"), ("profile", "Profiles")]
    )
    account = forms.ModelChoiceField(
        queryset=SocialAccount.objects.filter(is_active=True),
        required=False,
        help_text="Empty (and no group): the organisation's default chain.",
    )
    group = forms.ModelChoiceField(
        queryset=AccountGroup.objects.all(),
        required=False,
        help_text="Or a group of accounts (not both).",
    )
    requires_approval = forms.BooleanField(
        required=False, initial=True, help_text="Unticked is allowed for replies only."
    )
    approval_valid_hours = forms.IntegerField(min_value=1, max_value=24 * 90, initial=72)
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=5000,
        help_text="One step per line: name | approvals | role (e.g. approver, "
        "compliance_officer) or e-mail addresses separated by commas.",
    )


class GroupForm(forms.Form):
    name = forms.CharField(max_length=120, label="Group name")
    members = forms.ModelMultipleChoiceField(
        queryset=SocialAccount.objects.filter(kind="corporate", is_active=True),
        widget=forms.CheckboxSelectMultiple,
        label="Accounts in the group",
    )


class DelegationForm(forms.Form):
    delegate = forms.EmailField(help_text="The e-mail address of the person standing in.")
    starts_at = forms.DateTimeField(help_text="e.g. 2026-03-01 09:00 (UTC)")
    ends_at = forms.DateTimeField(help_text="e.g. 2026-03-14 18:00 (UTC)")
    reason = forms.CharField(max_length=500)
