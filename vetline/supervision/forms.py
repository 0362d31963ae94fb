"""Forms of the supervision pages. They parse input; the rules live in the actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from vetline.accounts.models import Network, SocialAccount
from vetline.identity.models import Person
from vetline.policy.models import Policy
from vetline.supervision.models import (
    Period,
    Population,
    ReviewQueue,
    SamplingMethod,
    Severity,
)
from vetline.supervision.states import Disposition


def reviewers() -> Any:
    return Person.objects.filter(
        is_active=True, role_grants__role__in=["supervisor", "compliance_officer"]
    ).distinct()


class DispositionForm(forms.Form):
    disposition = forms.ChoiceField(choices=[(d.value, d.label) for d in Disposition])
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=5000,
        help_text="Required for anything but “No issue”.",
    )


class BulkForm(forms.Form):
    reason = forms.CharField(max_length=5000, label="Why these are false positives")


class SettingsForm(forms.Form):
    policy = forms.ModelChoiceField(
        Policy.objects.all(), required=False, empty_label="The archive's default policy"
    )
    flag_min_severity = forms.TypedChoiceField(
        choices=Severity.choices, coerce=int, label="Flag from severity"
    )
    overdue_after_days = forms.IntegerField(min_value=1, max_value=365)


def _lines(value: str) -> list[str]:
    return [v.strip() for v in value.replace(",", "\n").splitlines() if v.strip()]


class PopulationForm(forms.Form):
    name = forms.CharField(max_length=120)
    accounts = forms.ModelMultipleChoiceField(SocialAccount.objects.all(), required=False)
    people = forms.ModelMultipleChoiceField(
        Person.objects.filter(is_active=True), required=False, help_text="Their accounts."
    )
    business_units = forms.CharField(required=False, max_length=2000, help_text="Comma-separated.")
    record_classes = forms.CharField(required=False, max_length=2000, help_text="Comma-separated.")
    directions = forms.MultipleChoiceField(
        choices=[("inbound", "Inbound"), ("outbound", "Outbound")],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    networks = forms.MultipleChoiceField(
        choices=Network.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def cleaned_lists(self) -> dict[str, list[str]]:
        d = self.cleaned_data
        return {
            "business_units": _lines(d["business_units"]),
            "record_classes": _lines(d["record_classes"]),
        }


class QueueForm(forms.Form):
    name = forms.CharField(max_length=120)
    population = forms.ModelChoiceField(Population.objects.all(), required=False)
    reviewers = forms.ModelMultipleChoiceField(reviewers(), required=False)
    escalate_to = forms.ModelChoiceField(
        ReviewQueue.objects.all(), required=False, help_text="Next level of the escalation chain."
    )
    is_default = forms.BooleanField(required=False, label="Default queue")
    sla_days = forms.IntegerField(min_value=1, max_value=365, initial=5, label="SLA (days)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reviewers"].queryset = reviewers()  # type: ignore[attr-defined]


class RouteForm(forms.Form):
    queue = forms.ModelChoiceField(ReviewQueue.objects.all())
    priority = forms.IntegerField(min_value=0, max_value=1_000_000, initial=100)
    business_unit = forms.CharField(required=False, max_length=120)
    population = forms.ModelChoiceField(
        Population.objects.all(), required=False, label="Account group (population)"
    )
    policy_rule_id = forms.CharField(required=False, max_length=100, label="Policy rule id")
    min_severity = forms.TypedChoiceField(
        choices=[("", "any"), *Severity.choices], coerce=int, required=False, empty_value=None
    )


class PlanForm(forms.Form):
    name = forms.CharField(max_length=120)
    population = forms.ModelChoiceField(Population.objects.all())
    queue = forms.ModelChoiceField(ReviewQueue.objects.all())
    period = forms.ChoiceField(choices=Period.choices, initial=Period.WEEKLY)
    method = forms.ChoiceField(choices=SamplingMethod.choices, initial=SamplingMethod.STATISTICAL)
    fixed_rate_percent = forms.CharField(required=False, max_length=20, label="Fixed rate (%)")
    confidence = forms.CharField(required=False, max_length=20, initial="0.95")
    tolerable_rate = forms.CharField(required=False, max_length=20, initial="0.05")
    expected_rate = forms.CharField(required=False, max_length=20, initial="0.01")


class RunPlanForm(forms.Form):
    day = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="Any day of the period."
    )


class RetroForm(forms.Form):
    policy = forms.ModelChoiceField(Policy.objects.all())
    captured_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    captured_to = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive."
    )

    def range(self) -> tuple[dt.datetime, dt.datetime]:
        d = self.cleaned_data
        return (
            dt.datetime.combine(d["captured_from"], dt.time(), tzinfo=dt.UTC),
            dt.datetime.combine(d["captured_to"] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
        )


class InspectForm(forms.Form):
    person = forms.ModelChoiceField(Person.objects.all(), required=False, label="Employee")
    account = forms.ModelChoiceField(SocialAccount.objects.all(), required=False)
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive.")

    def clean(self) -> dict[str, Any]:
        d = super().clean() or {}
        if bool(d.get("person")) == bool(d.get("account")):
            raise forms.ValidationError("Choose an employee or an account (one of them).")
        if d.get("start") and d.get("end") and d["start"] > d["end"]:
            raise forms.ValidationError("The start must not be after the end.")
        return d


class ReportForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive.")
    population = forms.ModelChoiceField(
        Population.objects.all(), required=False, empty_label="All communications"
    )


def day_range(start: dt.date, end_inclusive: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        dt.datetime.combine(end_inclusive + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC),
    )
