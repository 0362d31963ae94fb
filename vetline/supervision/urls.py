from django.urls import path

from vetline.supervision import views

app_name = "supervision"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("notifications/", views.notifications, name="notifications"),
    path("items/<int:item_id>/", views.item, name="item"),
    path("items/<int:item_id>/claim/", views.item_claim, name="item_claim"),
    path("items/<int:item_id>/release/", views.item_release, name="item_release"),
    path("items/<int:item_id>/assign/", views.item_assign, name="item_assign"),
    path("items/<int:item_id>/disposition/", views.item_dispose, name="item_dispose"),
    path("bulk-false-positives/", views.bulk_false_positives, name="bulk"),
    path("manage/", views.manage, name="manage"),
    path("plans/", views.plans, name="plans"),
    path("plans/<int:plan_id>/", views.plan, name="plan"),
    path("plans/<int:plan_id>/run/", views.plan_run, name="plan_run"),
    path("retro/", views.retro, name="retro"),
    path("retro/<int:run_id>/", views.retro_detail, name="retro_detail"),
    path("inspect/", views.inspect, name="inspect"),
    path("metrics/", views.metrics_page, name="metrics"),
    path("reports/", views.reports, name="reports"),
    path("reports/<int:report_id>/", views.report, name="report"),
    path("reports/<int:report_id>/csv/", views.report_csv, name="report_csv"),
]
