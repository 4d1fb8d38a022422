from django.urls import path

from moderation.media import views

urlpatterns = [
    path("videos/", views.video_list, name="video_list"),
    path("videos/upload/", views.video_upload, name="video_upload"),
    path("videos/<int:pk>/", views.video_detail, name="video_detail"),
]
