from django.urls import path
from notes import views

urlpatterns = [
    path("", views.hello),
    path("notes/", views.notes),
    path("login/", views.log_in),
    path("logout/", views.log_out),
    path("me/", views.me),
    path("boom/", views.boom),
    path("missing/", views.missing),
    path("forbidden/", views.forbidden),
]
