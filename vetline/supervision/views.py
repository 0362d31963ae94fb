"""Pages of the supervision desk: the review queue, an item in its conversation, the setup
(settings, populations, queues, routing), sampling plans, retroactive runs, the inspection
timeline, metrics and reports. Thin: parse, fetch through scoped selectors, call actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_http_methods, require_POST

from vetline.archive.models import ArchivedRecord
from vetline.core.errors import NotFound
from vetline.core.forms import errors_as_text
from vetline.core.views_support import run_and_flash, run_for_form
from vetline.identity.models import Person
from vetline.identity.permissions import require, require_any
from vetline.identity.roles import Perm
from vetline.supervision import actions, charts, forms, metrics, selectors
from vetline.supervision import report as report_actions
from vetline.supervision.models import (
    RetroRun,
    ReviewQueue,
    RoutingRule,
    SamplingPlan,
    SupervisionReport,
    SupervisionSettings,
)
from vetline.supervision.states import ReviewState


def _user(request: HttpRequest) -> Person:
    return request.user  # type: ignore[return-value]


def _int(value: str | None) -> int | None:
    try:
        n = int(value or "")
    except ValueError:
        return None
    return n if 0 < n < 2**63 else None


# --- Queue and items ----------------------------------------------------------------------------


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """The review queue: open items, oldest first, 50 a page."""
    user = _user(request)
    queues = list(selectors.visible_queues(user))
    queue_id = _int(request.GET.get("queue"))
    state = request.GET.get("state", "open")
    if state not in ("open", *[s.value for s in ReviewState]):
        state = "open"
    mine = request.GET.get("mine") == "1"
    page = selectors.queue_page(
        user, queue_id=queue_id, state=state, mine=mine, page=_int(request.GET.get("page")) or 1
    )
    return render(
        request,
        "supervision/queue.html",
        {
            "queues": queues,
            "queue_id": queue_id,
            "state": state,
            "states": list(ReviewState),
            "mine": mine,
            "page": page,
            "overdue": selectors.overdue_counts(queues),
            "can_manage": user.can(Perm.SUPERVISION_MANAGE),
            "can_review": user.can(Perm.SUPERVISE),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """The person's own supervision e-mails: the digest switch and what was sent to them."""
    user = _user(request)
    require_any(user, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    if request.method == "POST":
        enabled = request.POST.get("digest_enabled") == "1"
        run_and_flash(
            request,
            lambda: actions.set_digest_preference(actor=user, enabled=enabled),
            success="Digest switched on." if enabled else "Digest switched off.",
        )
        return redirect("supervision:notifications")
    return render(
        request,
        "supervision/notifications.html",
        {
            "digest_enabled": selectors.digest_enabled(user),
            "digest_minutes": settings.VETLINE_SUPERVISION_DIGEST_MINUTES,
            "mails": list(selectors.my_notifications(user)),
            "can_manage": user.can(Perm.SUPERVISION_MANAGE),
        },
    )


class _Span:
    __slots__ = ("end", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end


def _highlight(text: str, hits: list[dict[str, Any]]) -> dict[str, Any]:
    from vetline.policy.highlight import segments

    spans = [
        _Span(int(h.get("start", 0) or 0), int(h.get("end", 0) or 0))
        for h in hits
        if isinstance(h, dict)
    ]
    order = {"info": 1, "warn": 2, "escalate": 3, "block": 4}
    segs = []
    for seg in segments(text, spans):
        covering = [hits[i] for i in seg.hits]
        top = (
            max(covering, key=lambda h: order.get(str(h.get("severity")), 0)) if covering else None
        )
        segs.append(
            {"text": seg.text, "hits": covering, "top": top, "numbers": [i + 1 for i in seg.hits]}
        )
    return {"segments": segs, "hits": hits}


@login_required
def item(request: HttpRequest, item_id: int) -> HttpResponse:
    """One review item in its conversation (every version: edits and deletions), with the
    hits highlighted and explained. Opening it is logged; it is not a review."""
    user = _user(request)
    it = selectors.get_item(user, item_id)
    record = (
        ArchivedRecord.objects.select_related("account").defer("raw_payload").get(pk=it.record_id)
    )
    if user.can(Perm.SUPERVISE):
        actions.open_item(actor=user, item=it)
    conversation = None
    if record.conversation_id and user.can(Perm.ARCHIVE_VIEW):
        from vetline.archive.search_actions import view_conversation

        try:
            conversation = view_conversation(
                actor=user, account_id=record.account_id, conversation_id=record.conversation_id
            )
        except NotFound:
            conversation = None
    versions = list(
        ArchivedRecord.objects.filter(
            account_id=record.account_id, network=record.network, remote_id=record.remote_id
        )
        .defer("raw_payload")
        .order_by("version")
    )
    can_work = selectors.can_work(user, it)
    return render(
        request,
        "supervision/item.html",
        {
            "item": it,
            "record": record,
            "versions": versions,
            "conversation": conversation,
            **_highlight(record.text or "", list(it.hits or [])),
            "evidence": list(selectors.evidence_of(it)),
            "can_work": can_work,
            "is_mine": it.assignee_id == user.pk,
            "can_manage": user.can(Perm.SUPERVISION_MANAGE),
            "assignable": list(it.queue.reviewers.all())
            if user.can(Perm.SUPERVISION_MANAGE)
            else [],
            "form": forms.DispositionForm(),
            "policy_url_name": it.policy_name,
        },
    )


def _item_action(request: HttpRequest, item_id: int, fn: Any, done: str) -> HttpResponse:
    user = _user(request)
    it = selectors.get_item(user, item_id)
    run_and_flash(request, lambda: fn(user, it), success=done)
    if selectors.visible_items(user).filter(pk=item_id).exists():
        return redirect("supervision:item", item_id)
    return redirect("supervision:queue")


@login_required
@require_POST
def item_claim(request: HttpRequest, item_id: int) -> HttpResponse:
    return _item_action(
        request, item_id, lambda u, i: actions.claim_item(actor=u, item=i), "You are reviewing it."
    )


@login_required
@require_POST
def item_release(request: HttpRequest, item_id: int) -> HttpResponse:
    return _item_action(
        request, item_id, lambda u, i: actions.release_item(actor=u, item=i), "Released."
    )


@login_required
@require_POST
def item_assign(request: HttpRequest, item_id: int) -> HttpResponse:
    assignee_id = _int(request.POST.get("assignee"))
    assignee = Person.objects.filter(pk=assignee_id).first() if assignee_id else None

    def do(u: Person, i: Any) -> None:
        require(u, Perm.SUPERVISION_MANAGE)
        if assignee is None:
            from vetline.core.errors import ValidationFailed

            raise ValidationFailed("Choose a reviewer.", field="assignee")
        actions.assign_item(actor=u, item=i, assignee=assignee)

    return _item_action(request, item_id, do, "Assigned.")


@login_required
@require_POST
def item_dispose(request: HttpRequest, item_id: int) -> HttpResponse:
    form = forms.DispositionForm(request.POST)
    if not form.is_valid():
        user = _user(request)
        selectors.get_item(user, item_id)
        messages.error(request, errors_as_text(form))
        return redirect("supervision:item", item_id)
    d = form.cleaned_data
    return _item_action(
        request,
        item_id,
        lambda u, i: actions.dispose_item(
            actor=u, item=i, disposition=d["disposition"], comment=d["comment"]
        ),
        "Disposition recorded.",
    )


@login_required
@require_POST
def bulk_false_positives(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISE)
    ids = [n for n in (_int(v) for v in request.POST.getlist("items")) if n]
    form = forms.BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
        return redirect("supervision:queue")
    run_and_flash(
        request,
        lambda: actions.bulk_dispose_false_positives(
            actor=user, item_ids=ids, reason=form.cleaned_data["reason"]
        ),
        success=lambda done: f"{len(done)} item(s) closed as false positives.",
        # Items closed or taken by someone else since the queue was shown: news for the queue.
        propagate=(),
    )
    return redirect("supervision:queue")


# --- Setup --------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest) -> HttpResponse:
    """Settings, populations, queues and routing rules."""
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    setting = SupervisionSettings.load()
    settings_form = forms.SettingsForm(
        initial={
            "policy": setting.policy,
            "flag_min_severity": setting.flag_min_severity,
            "overdue_after_days": setting.overdue_after_days,
        }
    )
    population_form = forms.PopulationForm()
    queue_form = forms.QueueForm()
    route_form = forms.RouteForm()
    status = 200
    if request.method == "POST":
        which = request.POST.get("form", "")
        done: object = None
        if which == "settings":
            settings_form = forms.SettingsForm(request.POST)
            if settings_form.is_valid():
                d = settings_form.cleaned_data
                done = run_for_form(
                    request,
                    lambda: actions.update_settings(
                        actor=user,
                        policy=d["policy"],
                        flag_min_severity=d["flag_min_severity"],
                        overdue_after_days=d["overdue_after_days"],
                    ),
                    form=settings_form,
                    success="Settings saved.",
                )
        elif which == "population":
            population_form = forms.PopulationForm(request.POST)
            if population_form.is_valid():
                d = population_form.cleaned_data
                lists = population_form.cleaned_lists()
                done = run_for_form(
                    request,
                    lambda: actions.create_population(
                        actor=user,
                        name=d["name"],
                        accounts=list(d["accounts"]),
                        people=list(d["people"]),
                        directions=d["directions"],
                        networks=d["networks"],
                        business_units=lists["business_units"],
                        record_classes=lists["record_classes"],
                    ),
                    form=population_form,
                    success="Population created.",
                )
        elif which == "queue":
            queue_form = forms.QueueForm(request.POST)
            if queue_form.is_valid():
                d = queue_form.cleaned_data
                done = run_for_form(
                    request,
                    lambda: actions.create_queue(
                        actor=user,
                        name=d["name"],
                        population=d["population"],
                        reviewers=list(d["reviewers"]),
                        escalate_to=d["escalate_to"],
                        is_default=d["is_default"],
                        sla_days=d["sla_days"],
                    ),
                    form=queue_form,
                    success="Queue created.",
                )
        elif which == "route":
            route_form = forms.RouteForm(request.POST)
            if route_form.is_valid():
                d = route_form.cleaned_data
                done = run_for_form(
                    request,
                    lambda: actions.create_routing_rule(
                        actor=user,
                        queue=d["queue"],
                        priority=d["priority"],
                        business_unit=d["business_unit"],
                        population=d["population"],
                        policy_rule_id=d["policy_rule_id"],
                        min_severity=d["min_severity"],
                    ),
                    form=route_form,
                    success="Routing rule added.",
                )
        elif which == "route_off":
            rule = RoutingRule.objects.filter(pk=_int(request.POST.get("rule")) or 0).first()
            if rule is None:
                raise NotFound("No such routing rule.")
            done = run_and_flash(
                request,
                lambda: actions.deactivate_routing_rule(actor=user, rule=rule),
                success="Routing rule switched off.",
            )
        else:
            messages.error(request, "Unknown form.")
            return redirect("supervision:manage")
        if done is not None:
            return redirect("supervision:manage")
        status = 422
    return render(
        request,
        "supervision/manage.html",
        {
            "setting": setting,
            "settings_form": settings_form,
            "population_form": population_form,
            "queue_form": queue_form,
            "route_form": route_form,
            "populations": list(selectors.populations()),
            "queues": list(
                ReviewQueue.objects.select_related("population", "escalate_to").prefetch_related(
                    "reviewers"
                )
            ),
            "routes": list(RoutingRule.objects.select_related("queue", "population")),
        },
        status=status,
    )


# --- Sampling plans ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def plans(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    form = forms.PlanForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            plan = run_for_form(
                request,
                lambda: actions.create_sampling_plan(actor=user, **d),
                form=form,
                success=lambda p: f"Plan “{p}” created.",
            )
            if plan is not None:
                return redirect("supervision:plan", plan.pk)
        status = 422
    return render(
        request,
        "supervision/plans.html",
        {
            "form": form,
            "plans": list(SamplingPlan.objects.select_related("population", "queue")),
        },
        status=status,
    )


@login_required
def plan(request: HttpRequest, plan_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    p = SamplingPlan.objects.select_related("population", "queue").filter(pk=plan_id).first()
    if p is None:
        raise NotFound("No such plan.")
    runs = [(r, metrics.sample_outcome(r)) for r in p.runs.select_related("plan")[:50]]
    return render(
        request,
        "supervision/plan.html",
        {
            "plan": p,
            "runs": runs,
            "form": forms.RunPlanForm(initial={"day": timezone.now().date()}),
        },
    )


@login_required
@require_POST
def plan_run(request: HttpRequest, plan_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    p = SamplingPlan.objects.select_related("population", "queue").filter(pk=plan_id).first()
    if p is None:
        raise NotFound("No such plan.")
    form = forms.RunPlanForm(request.POST)
    if not form.is_valid():
        messages.error(request, errors_as_text(form))
        return redirect("supervision:plan", p.pk)
    run = actions.run_sampling_plan(
        actor=user, plan=p, day=form.cleaned_data["day"], trigger="manual"
    )
    messages.success(request, f"{run.get_status_display()}: {run.note}")
    return redirect("supervision:plan", p.pk)


# --- Retroactive runs -------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def retro(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    form = forms.RetroForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            start, end = form.range()
            run = run_for_form(
                request,
                lambda: actions.start_retro_run(
                    actor=user,
                    policy=form.cleaned_data["policy"],
                    captured_from=start,
                    captured_to=end,
                ),
                form=form,
            )
            if run is not None:
                return redirect("supervision:retro_detail", run.pk)
        status = 422
    runs = list(RetroRun.objects.select_related("policy", "policy_version")[:50])
    return render(request, "supervision/retro.html", {"form": form, "runs": runs}, status=status)


@login_required
def retro_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    run = RetroRun.objects.select_related("policy", "policy_version").filter(pk=run_id).first()
    if run is None:
        raise NotFound("No such run.")
    partial = bool(getattr(request, "htmx", False))
    template = "supervision/_retro_progress.html" if partial else "supervision/retro_detail.html"
    return render(request, template, {"run": run})


# --- Inspection ---------------------------------------------------------------------------------


@login_required
def inspect(request: HttpRequest) -> HttpResponse:
    """For an employee or an account over a date range: one timeline across networks."""
    user = _user(request)
    require(user, Perm.INSPECT)
    form = forms.InspectForm(request.GET or None)
    timeline = None
    if request.GET and form.is_valid():
        d = form.cleaned_data
        start, end = forms.day_range(d["start"], d["end"])
        timeline = run_for_form(
            request,
            lambda: actions.inspect_interactions(
                actor=user, person=d["person"], account=d["account"], start=start, end=end
            ),
            form=form,
        )
    return render(
        request,
        "supervision/inspect.html",
        {"form": form, "timeline": timeline},
        status=422 if request.GET and form.errors else 200,
    )


# --- Metrics ------------------------------------------------------------------------------------


@login_required
def metrics_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require_any(user, Perm.SUPERVISE, Perm.SUPERVISION_MANAGE)
    sizes = metrics.queue_sizes(user)
    throughput = metrics.reviewer_throughput(user)
    minutes = metrics.minutes_per_period(user)
    fp = metrics.false_positive_rates(user)
    cov = metrics.coverage(user)
    from django.urls import reverse

    def rule_href(r: dict[str, Any]) -> str:
        if not r["policy"]:
            return ""
        return reverse("policy:detail", args=[r["policy"]]) + f"#rule-{r['rule_id']}"

    svg = {
        "sizes": charts.bar_chart(
            [
                charts.Bar(
                    r["queue"],
                    r["open"],
                    note=f"{r['overdue']} overdue, oldest {r['oldest_age_days']} d",
                )
                for r in sizes
            ],
            title="Open items per queue",
        ),
        "ages": charts.bar_chart(
            [charts.Bar(label, n) for label, n in metrics.age_buckets(user)],
            title="Age of open items",
        ),
        "throughput": charts.bar_chart(
            [
                charts.Bar(r["reviewer"], r["reviews"], note=f"{r['minutes']} min")
                for r in throughput
            ],
            title="Reviews per reviewer, last 30 days",
        ),
        "minutes": charts.column_chart(
            [charts.Bar(r["week"], r["minutes"]) for r in minutes],
            title="Review minutes per week",
            unit=" min",
        ),
        "per_item": charts.column_chart(
            [charts.Bar(r["week"], r["minutes_per_item"]) for r in minutes],
            title="Minutes per reviewed item, per week",
            unit=" min",
        ),
        "fp": charts.bar_chart(
            [
                charts.Bar(
                    r["rule_id"],
                    r["rate_percent"],
                    href=rule_href(r),
                    note=f"{r['false_positives']} of {r['closed']}",
                )
                for r in fp[:25]
            ],
            title="False-positive rate per rule",
            unit=" %",
            max_value=100,
        ),
        "coverage": charts.bar_chart(
            [
                charts.Bar(
                    f"{r['population']} · {r['week']}",
                    r["percent"],
                    note=f"{r['covered']} of {r['captured']}",
                )
                for r in cov
            ],
            title="Coverage: share sampled or reviewed, per population per week",
            unit=" %",
            max_value=100,
        ),
    }
    return render(
        request,
        "supervision/metrics.html",
        {"svg": {k: mark_safe(v) for k, v in svg.items()}},  # noqa: S308 - escaped in charts
    )


# --- Reports ------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def reports(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    require(user, Perm.SUPERVISION_MANAGE)
    today = timezone.now().date()
    form = forms.ReportForm(
        request.POST or None, initial={"start": today - dt.timedelta(days=30), "end": today}
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            d = form.cleaned_data
            start, end = forms.day_range(d["start"], d["end"])
            rep = run_for_form(
                request,
                lambda: report_actions.generate_report(
                    actor=user, start=start, end=end, population=d["population"]
                ),
                form=form,
                success="Report generated and archived.",
            )
            if rep is not None:
                return redirect("supervision:report", rep.pk)
        status = 422
    page = Paginator(
        SupervisionReport.objects.select_related("population", "generated_by").defer("html", "csv"),
        25,
    ).get_page(request.GET.get("page"))
    return render(
        request, "supervision/reports.html", {"form": form, "page_obj": page}, status=status
    )


def _report(request: HttpRequest, report_id: int) -> SupervisionReport:
    require(_user(request), Perm.SUPERVISION_MANAGE)
    rep = SupervisionReport.objects.filter(pk=report_id).first()
    if rep is None:
        raise NotFound("No such report.")
    return rep


@login_required
def report(request: HttpRequest, report_id: int) -> HttpResponse:
    rep = _report(request, report_id)
    return render(
        request,
        "supervision/report.html",
        {"report": rep, "document": mark_safe(rep.html)},  # noqa: S308 - rendered by our template
    )


@login_required
def report_csv(request: HttpRequest, report_id: int) -> HttpResponse:
    rep = _report(request, report_id)
    response = HttpResponse(rep.csv, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="supervision-report-{rep.pk}-{rep.period_start:%Y%m%d}.csv"'
    )
    return response
