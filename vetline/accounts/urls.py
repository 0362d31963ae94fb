from django.urls import path

from vetline.accounts import views

app_name = "accounts"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("new/", views.account_create, name="create"),
    path("settings/", views.org_settings, name="org_settings"),
    path("<int:pk>/", views.account_detail, name="detail"),
    path("<int:pk>/edit/", views.account_edit, name="edit"),
    path("<int:pk>/assignments/", views.assignment_add, name="assignment_add"),
    path(
        "<int:pk>/assignments/<int:assignment_id>/remove/",
        views.assignment_remove,
        name="assignment_remove",
    ),
    path("<int:pk>/credentials/", views.credential_set, name="credential_set"),
    path(
        "<int:pk>/credentials/<int:credential_id>/revoke/",
        views.credential_revoke,
        name="credential_revoke",
    ),
]
