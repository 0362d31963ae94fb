from django.urls import path

from vetline.importers import views

app_name = "importers"

urlpatterns = [
    path("", views.import_new, name="new"),
    path("<str:import_id>/", views.import_detail, name="detail"),
]
