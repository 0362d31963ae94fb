from django.urls import path

from vetline.archive import export_views

# Included by vetline.archive.urls under "export/", in the "archive" namespace.
urlpatterns = [
    path("", export_views.export_new, name="export_new"),
    path("<str:export_id>/", export_views.export_detail, name="export_detail"),
    path("<str:export_id>/download/", export_views.export_download, name="export_download"),
]
