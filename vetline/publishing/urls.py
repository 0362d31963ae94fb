from django.urls import path

from vetline.publishing import views

app_name = "publishing"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("calendar/", views.calendar, name="calendar"),
    path("compose/", views.compose, name="compose"),
    path("screen/", views.screen, name="screen"),
    path("drafts/<int:draft_id>/", views.draft_detail, name="draft"),
    path("drafts/<int:draft_id>/edit/", views.edit, name="edit"),
    path("drafts/<int:draft_id>/submit/", views.submit, name="submit"),
    path("drafts/<int:draft_id>/withdraw/", views.withdraw, name="withdraw"),
    path("revisions/<int:revision_id>/override/", views.override, name="override"),
    path("publications/<int:publication_id>/retry/", views.retry, name="retry"),
    path("publications/<int:publication_id>/settle/", views.settle, name="settle"),
    path("unsettled/", views.unsettled, name="unsettled"),
    path("inbox/", views.inbox, name="inbox"),
    path("reviews/<int:request_id>/", views.review, name="review"),
    path("reviews/<int:request_id>/decide/", views.decide, name="decide"),
    path("freezes/", views.freezes, name="freezes"),
    path("freezes/<int:freeze_id>/", views.freeze_detail, name="freeze"),
    path(
        "freezes/<int:freeze_id>/held/<int:publication_id>/",
        views.freeze_resolve,
        name="freeze_resolve",
    ),
    path("freezes/<int:freeze_id>/lift/", views.freeze_lift, name="freeze_lift"),
    path("chains/", views.chains, name="chains"),
    path("delegations/", views.delegations, name="delegations"),
    path(
        "delegations/<int:delegation_id>/revoke/",
        views.delegation_revoke,
        name="delegation_revoke",
    ),
    path("rogue/", views.rogue_posts, name="rogue"),
    path("rogue/<int:rogue_id>/acknowledge/", views.rogue_acknowledge, name="rogue_acknowledge"),
    path("notifications/", views.notifications, name="notifications"),
    path(
        "notifications/<int:notification_id>/read/",
        views.notification_read,
        name="notification_read",
    ),
]
