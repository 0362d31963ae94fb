from django.urls import path

from vetline.profiles import views

app_name = "profiles"

urlpatterns = [
    path("", views.my_profiles, name="mine"),
    path("accounts/<int:account_id>/", views.edit_profile, name="edit"),
    path("accounts/<int:account_id>/screen/", views.screen_preview, name="screen"),
    path("inbox/", views.inbox, name="inbox"),
    path("drift/", views.drift_list, name="drifts"),
    path("drift/<int:pk>/", views.drift_detail, name="drift"),
    path("drift/<int:pk>/acknowledge/", views.drift_acknowledge, name="drift_acknowledge"),
    path("drift/<int:pk>/resolve/", views.drift_resolve, name="drift_resolve"),
    path("photos/<str:sha256>/", views.photo, name="photo"),
    path("<int:pk>/", views.review, name="review"),
    path("<int:pk>/submit/", views.submit_profile, name="submit"),
    path("<int:pk>/withdraw/", views.withdraw_profile, name="withdraw"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/revisions/<int:number>/", views.revision_detail, name="revision"),
]
