from django.urls import path

from vetline.connectors import views

app_name = "connectors"
urlpatterns = [
    path("oauth/callback/", views.oauth_callback, name="oauth_callback"),
    path("accounts/<int:account_id>/connect/", views.connect_start, name="connect_start"),
    path(
        "accounts/<int:account_id>/app-password/",
        views.connect_app_password,
        name="connect_app_password",
    ),
    path("accounts/<int:account_id>/check-access/", views.check_access, name="check_access"),
    path(
        "accounts/<int:account_id>/consent-link/",
        views.consent_link_create,
        name="consent_link_create",
    ),
    path("accounts/<int:account_id>/disconnect/", views.disconnect, name="disconnect"),
    path("accounts/<int:account_id>/capture/", views.capture_now, name="capture_now"),
    path("consent/<str:token>/", views.consent, name="consent"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/<int:alert_id>/read/", views.alert_read, name="alert_read"),
    path("sandbox/<int:account_id>/", views.sandbox_timeline, name="sandbox_timeline"),
    path("sandbox/posts/<str:remote_id>/", views.sandbox_post, name="sandbox_post"),
]
