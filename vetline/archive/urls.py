from django.urls import include, path

from vetline.archive import views

app_name = "archive"
urlpatterns = [
    path("", views.record_list, name="list"),
    path("records/<int:record_id>/", views.record_detail, name="detail"),
    path("quarantine/", views.quarantine_list, name="quarantine"),
    path("search/", include("vetline.archive.search_urls")),
    path("retention/", include("vetline.archive.retention_urls")),
    path("export/", include("vetline.archive.export_urls")),
]
