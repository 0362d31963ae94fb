from django.urls import path

from vetline.identity import views

app_name = "identity"
urlpatterns = [
    path("", views.people_list, name="people"),
    path("new/", views.person_create, name="create"),
    path("me/tokens/", views.tokens, name="tokens"),
    path("me/tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("me/signout-everywhere/", views.signout_everywhere, name="signout_everywhere"),
    path("<int:pk>/", views.person_detail, name="person"),
    path("<int:pk>/roles/", views.role_grant, name="role_grant"),
    path("<int:pk>/roles/<str:role>/revoke/", views.role_revoke, name="role_revoke"),
    path("<int:pk>/offboard/", views.offboard, name="offboard"),
    path("<int:pk>/unlock/", views.unlock, name="unlock"),
    path("<int:pk>/signout/", views.person_signout, name="signout"),
]
