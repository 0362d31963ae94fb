from django.urls import path

from vetline.archive import search_views

urlpatterns = [
    path("", search_views.search_page, name="search"),
    path("saved/", search_views.search_save, name="search_save"),
    path("saved/<int:saved_id>/delete/", search_views.search_saved_delete, name="search_delete"),
    path("conversations/<int:account_id>/", search_views.conversation, name="search_conversation"),
]
