from django.urls import path

from vetline.archive import views

app_name = "archive"
urlpatterns = [
    path("", views.record_list, name="list"),
    path("records/<int:record_id>/", views.record_detail, name="detail"),
    path("quarantine/", views.quarantine_list, name="quarantine"),
]
