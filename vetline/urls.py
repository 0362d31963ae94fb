from django.contrib import admin
from django.urls import include, path

from vetline.api import api
from vetline.core import views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    # Identities are provisioned by administrators: people cannot change their e-mail address
    # themselves, so allauth's e-mail management is not exposed.
    path("auth/email/", core_views.not_available, name="account_email"),
    path("auth/", include("allauth.urls")),
    path("accounts/", include("vetline.accounts.urls")),
    path("people/", include("vetline.identity.urls")),
    path("audit/", include("vetline.audit.urls")),
    path("policies/", include("vetline.policy.urls")),
    path("archive/", include("vetline.archive.urls")),
    path("imports/", include("vetline.importers.urls")),
    path("connectors/", include("vetline.connectors.urls")),
    path("publishing/", include("vetline.publishing.urls")),
    path("profiles/", include("vetline.profiles.urls")),
    path("supervision/", include("vetline.supervision.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
