from django.urls import path

from vetline.policy import views

app_name = "policy"
urlpatterns = [
    path("", views.policy_list, name="list"),
    path("new/", views.policy_import, name="import"),
    path("<slug:name>/", views.policy_detail, name="detail"),
    path("<slug:name>/edit/", views.policy_edit, name="edit"),
    path("<slug:name>/test/", views.policy_test, name="test"),
    path("<slug:name>/default/", views.make_default, name="make_default"),
    path("<slug:name>/events/", views.add_event, name="add_event"),
    path("<slug:name>/bad-domains/", views.import_domains, name="import_domains"),
    path("<slug:name>/rules/<str:rule_id>/draft/", views.rule_draft, name="rule_draft"),
    path("<slug:name>/versions/<int:number>/", views.version_detail, name="version"),
    path("<slug:name>/versions/<int:number>/export/", views.export_yaml, name="export"),
]
