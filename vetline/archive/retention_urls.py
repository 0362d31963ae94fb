from django.urls import path

from vetline.archive import retention_views as views

app_name = "retention"
urlpatterns = [
    path("", views.retention_index, name="index"),
    path("classes/<slug:code>/", views.record_class_edit, name="class_edit"),
    path("holds/", views.hold_place, name="hold_place"),
    path("holds/<int:hold_id>/", views.hold_detail, name="hold"),
    path("holds/<int:hold_id>/release/", views.hold_release, name="hold_release"),
    path("holds/<int:hold_id>/scope/", views.hold_scope, name="hold_scope"),
]
